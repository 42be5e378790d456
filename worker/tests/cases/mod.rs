//! The worker's behaviours, one file per guarantee.

mod cache_loss;
mod chaos;
mod coalescing;
mod dead_letters;
mod entry_parsing;
mod exactly_once;
mod fatal_store_errors;
mod memory_store;
mod redis_outage;
mod shutdown;
mod startup_checks;
mod store_outage;
mod ties;
mod trimming;
