//! The worker's behaviours, one file per guarantee.

mod backlog;
mod cache;
mod chaos;
mod cluster;
mod leases;
mod owner_steps;
mod poison;
mod rdb_restore;
mod redis_outage;
mod replica_wait;
mod startup;
mod store_outage;
mod ties;
mod zombie_owner;
