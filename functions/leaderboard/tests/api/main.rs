//! The leaderboard function's handler tests: real function-URL events against a real `redis-server`, with
//! the partitioned layout seeded as the worker leaves it.

mod board;
mod config;
mod helpers;
mod me;
mod rejections;
mod ties;
