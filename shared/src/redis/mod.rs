//! The Redis layout every component agrees on: the keys ([`keys`]), the stream entry schema ([`entry`]),
//! and how a process builds its client ([`client`]). Each Lua script lives next to the code that calls it
//! (the update path's enqueue here, the worker's commit, the leaderboard function's reads).

pub mod client;
pub mod enqueue;
pub mod entry;
pub mod keys;

pub use client::{client, connect_lazy};
