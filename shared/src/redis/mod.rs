//! The Redis layout every component agrees on: the keys ([`keys`]), the stream entry schema ([`entry`]),
//! how a process connects, standalone or cluster ([`client`]), and subscribes ([`subscription`]). Each Lua script lives next to the code that calls it
//! (the update path's enqueue here, the worker's commit, the leaderboard function's reads).

pub mod client;
pub mod enqueue;
pub mod entry;
pub mod keys;
pub mod subscription;

pub use client::{RedisConn, connect_lazy, publish_command};
pub use subscription::{Notice, Subscription};
