//! The leaderboard function: `GET /api/v1/scores/leaderboard` (the global snapshot `{sb}:top`, `ETag`/`304`;
//! merged from the partitions' tops while it is missing) and `GET /api/v1/scores/me` (the caller's global
//! rank, summed over partitions, and score).
//!
//! - [`handler`]: the Lambda handler ([`LeaderboardService`]): routing, auth, caching headers.
//! - [`config`]: `LEADERBOARD_SIZE` and `PARTITIONS`.
//! - [`read`]: the reads and their scripts (`read.lua`, `me.lua`, `above.lua`) and typed answers.
//!
//! Ranking rule (shared with the worker's commit script and merger): higher score first; equal scores by
//! user id ascending in byte order; ranks are positions 1, 2, 3, … in that order.

pub mod config;
pub mod handler;
pub mod read;

pub use config::Config;
pub use handler::{LEADERBOARD_PATH, LeaderboardService, ME_PATH};
pub use read::{MyRank, ranks_before, read_my_rank, read_snapshot};
