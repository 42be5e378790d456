//! The worker's behaviours, one file per guarantee.

mod cache_loss;
mod chaos;
mod coalescing;
mod dead_letters;
mod exactly_once;
mod memory_store;
mod redis_outage;
mod shutdown;
mod store_outage;
mod ties;
mod trimming;
