//! One command per partition, all in flight at once on one multiplexed connection. Each partition's keys
//! live in their own cluster slot (`{sb:p}`), so a pipeline across partitions is refused on a cluster
//! (`CROSSSLOT`); issued side by side instead, the commands still travel back to back to each node and
//! standalone Redis sees the same as a pipeline.

use redis::FromRedisValue;
use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::keys::PartitionKeys;

/// Runs `command(partition's keys)` for every partition in `partitions`; the answers in that order.
///
/// # Errors
/// The first Redis failure.
pub async fn query_each<T: FromRedisValue>(
    redis: &RedisConn,
    partitions: impl IntoIterator<Item = u16>,
    command: impl Fn(&PartitionKeys) -> redis::Cmd,
) -> redis::RedisResult<Vec<T>> {
    let calls = partitions.into_iter().map(|partition| {
        let command = command(&PartitionKeys::new(partition));
        let mut redis = redis.clone();
        async move { command.query_async::<T>(&mut redis).await }
    });
    futures::future::try_join_all(calls).await
}

/// `GET key` as a command to fan out.
pub fn get(key: String) -> redis::Cmd {
    let mut command = redis::cmd("GET");
    command.arg(key);
    command
}
