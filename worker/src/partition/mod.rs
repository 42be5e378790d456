//! Owned partitions (`docs/design.md` §5.2–§5.8): one owner task per leased partition reads its stream
//! from the committed cursor, applies each batch to the store exactly once by watermark, and commits
//! totals, the partition's top and the cursor in one fenced script.
//!
//! - [`owner`]: one partition's steps (start: fence the stream against Redis data loss and rebuild a
//!   missing or stale cache; step: read, apply, commit).
//! - [`apply`]: the watermark compare-and-set loop against the store, with poison isolation.
//! - [`read_cache`]: what an owner remembers of its users' records, so a batch of known users skips the
//!   store read.
//! - [`scripts`]: the fenced Lua scripts (commit, prepare, swap) and their typed outcomes.
//! - [`rebuild`]: refilling a partition's cache from the store behind a fenced `RENAME`.
//! - [`balancer`]: which partitions this worker owns (leases shared evenly among live workers).
//! - [`fan_out`]: one command per partition side by side (a pipeline across partitions is `CROSSSLOT`
//!   on a cluster).

pub mod apply;
pub mod balancer;
pub mod fan_out;
pub mod owner;
pub mod read_cache;
pub mod rebuild;
pub mod scripts;
