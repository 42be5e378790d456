//! Arrangements for process-level tests: a durable Redis (AOF, `appendfsync always`, as standalone
//! production runs it), the environment of a worker process, and readers of who holds which lease and
//! where each partition's cursor is.

use redis::AsyncCommands;
use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::keys::{self, PartitionKeys};
use scoreboard_testkit::RedisServer;
use scoreboard_worker::lease::holder;
use scoreboard_worker::partition::fan_out::{get, query_each};

use super::StoreUnderTest;

/// A Redis that loses nothing acknowledged on a crash: the worker's "nothing applied that Redis can
/// still lose" rests on it when there are no replicas (`docs/design.md` §5.4).
pub fn durable_redis() -> RedisServer {
    RedisServer::start_with(&[
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ])
}

/// The environment of one worker process: the store's, Redis, its id, `partitions`, a 2 s lease, short
/// blocking reads, plus `extra` (which wins).
pub fn worker_env(
    store: &StoreUnderTest,
    redis_url: &str,
    worker_id: &str,
    partitions: u16,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env = store.env();
    let partitions = partitions.to_string();
    let ours = [
        ("REDIS_URL", redis_url),
        ("WORKER_ID", worker_id),
        ("PARTITIONS", partitions.as_str()),
        ("LEASE_TTL_MS", "2000"),
        ("WORKER_BLOCK_MS", "100"),
        ("LEADERBOARD_SIZE", "10"),
        ("STORE_CONNECT_TIMEOUT_SECS", "60"),
    ];
    for (key, value) in ours.iter().chain(extra) {
        env.retain(|(k, _)| k != key);
        env.push(((*key).to_owned(), (*value).to_owned()));
    }
    env
}

/// The worker id holding each partition's lease (`None`: free).
pub async fn lease_holders(redis: &mut RedisConn, partitions: u16) -> Vec<Option<String>> {
    lease_values(redis, partitions)
        .await
        .into_iter()
        .map(|v| v.map(|v| holder(&v).to_owned()))
        .collect()
}

/// Each partition's whole lease value (`<worker>|<token>|<epoch>`; `None`: free): equal values mean
/// the same acquisition, still held.
pub async fn lease_values(redis: &mut RedisConn, partitions: u16) -> Vec<Option<String>> {
    // One GET per partition (a pipeline across partitions is CROSSSLOT on a cluster).
    query_each(redis, 0..partitions, |keys| get(keys.lease()))
        .await
        .expect("read leases")
}

/// How many partitions `worker_id` holds.
pub fn held_by(holders: &[Option<String>], worker_id: &str) -> usize {
    holders
        .iter()
        .filter(|h| h.as_deref() == Some(worker_id))
        .count()
}

/// The worker id holding the merger lease.
pub async fn merger_holder(redis: &mut RedisConn) -> Option<String> {
    let value: Option<String> = redis.get(keys::MERGER_LEASE).await.expect("read merger");
    value.map(|v| holder(&v).to_owned())
}

/// Partition `partition`'s committed cursor (`None` before its first commit).
pub async fn cursor(redis: &mut RedisConn, partition: u16) -> Option<String> {
    redis
        .get(PartitionKeys::new(partition).cursor())
        .await
        .expect("read cursor")
}

/// Queues one entry per increment for `user` (as [`super::xadd_event`] writes them), pipelined in
/// chunks so a durable Redis fsyncs once per chunk, not once per entry.
pub async fn fill(
    redis: &mut RedisConn,
    partitions: u16,
    user: &str,
    name: &str,
    increments: &[u64],
) {
    use scoreboard_shared::redis::entry::{
        FIELD_INCREMENT, FIELD_NAME, FIELD_REQUEST, FIELD_TIMESTAMP, FIELD_USER, FIELD_VERSION,
        SCHEMA_VERSION,
    };
    let stream = PartitionKeys::new(
        scoreboard_shared::partition::Partitioner::new(partitions).partition_of(user),
    )
    .updates();
    let ts = (scoreboard_testkit::token::now_secs() * 1000).to_string();
    for chunk in increments.chunks(1_000) {
        let mut pipe = redis::pipe();
        for inc in chunk {
            pipe.cmd("XADD")
                .arg(&stream)
                .arg("*")
                .arg(FIELD_VERSION)
                .arg(SCHEMA_VERSION)
                .arg(FIELD_USER)
                .arg(user)
                .arg(FIELD_INCREMENT)
                .arg(inc.to_string())
                .arg(FIELD_TIMESTAMP)
                .arg(&ts)
                .arg(FIELD_NAME)
                .arg(name)
                .arg(FIELD_REQUEST)
                .arg("req-test")
                .ignore();
        }
        let () = pipe.query_async(redis).await.expect("xadd");
    }
}
