//! The leaderboard function's handler tests: real function-URL events against a real `redis-server`, with
//! the partitioned layout seeded as the worker leaves it; the board and `/me` reads also against a real
//! 3-master Redis Cluster, with partitions on every master.

mod board;
mod config;
mod helpers;
mod me;
mod rejections;
mod ties;
