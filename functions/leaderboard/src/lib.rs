//! The leaderboard function: `GET /api/v1/scores/leaderboard` (the current snapshot, `ETag`/`304`) and
//! `GET /api/v1/scores/me` (the caller's rank and score), each one Redis round trip.
//!
//! - [`handler`]: the Lambda handler ([`LeaderboardService`]): routing, auth, caching headers.
//! - [`read`]: the two read scripts (`read.lua`, `me.lua`) and their typed answers.
//!
//! Ranking rule (shared with the worker's commit script): higher score first; equal scores by user id
//! ascending; ranks are positions 1, 2, 3, … in that order.

pub mod handler;
pub mod read;

pub use handler::{LEADERBOARD_PATH, LeaderboardService, ME_PATH};
pub use read::{MyRank, read_my_rank, read_snapshot};
