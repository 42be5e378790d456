//! The leaderboard function's handler tests: real function-URL events against a real `redis-server`.

mod helpers;
mod leaderboard_handler;
