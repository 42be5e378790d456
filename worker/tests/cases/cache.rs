//! The self-healing cache (`docs/design.md` §5.7–§5.8): a partition's set lost to a `FLUSHALL` while the
//! store is down is rebuilt once the store is back (the rebuild is retried, not given up), on the memory
//! store and MongoDB; a lost `{sb:p}:changed` message is healed by the merger's poll; `worker rebuild`
//! (the real binary) has every partition rebuilt by its running owner and exits 0.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use scoreboard_shared::config::{Env, RedisConfig};
use scoreboard_shared::redis::keys::PartitionKeys;
use scoreboard_shared::shutdown::Shutdown;
use scoreboard_testkit::RedisServer;
use scoreboard_worker::merger::{Merger, MergerConfig};
use scoreboard_worker::partition::balancer::Balancer;
use scoreboard_worker::store::WatermarkStore;
use scoreboard_worker::store::memory::MemoryStore;
use tokio::task::JoinHandle;

use crate::helpers::*;

const P: u16 = 2;

/// A balancer (this worker's partition owners) running in process until the returned trigger fires.
fn run_balancer(
    url: &str,
    store: &Arc<dyn WatermarkStore>,
    extra: &[(&str, &str)],
) -> (
    scoreboard_shared::shutdown::ShutdownTrigger,
    JoinHandle<Result<(), scoreboard_worker::WorkerError>>,
) {
    let config = worker_config("w1", P, extra);
    let redis_config = RedisConfig::from_env(&Env::from_pairs([
        ("REDIS_URL", url),
        ("REDIS_RESPONSE_TIMEOUT_MS", "10000"),
        ("REDIS_CONNECT_TIMEOUT_MS", "2000"),
    ]))
    .unwrap();
    let balancer = Balancer::new(config, redis_config, redis_manager(url), store.clone());
    let (trigger, shutdown) = Shutdown::new();
    (trigger, tokio::spawn(balancer.run(shutdown)))
}

async fn send(
    redis: &mut scoreboard_shared::redis::RedisConn,
    users: &[String],
    inc: u64,
    expected: &mut BTreeMap<String, u64>,
) {
    for user in users {
        xadd_event(redis, P, user, Some("Cy"), inc).await;
        *expected.entry(user.clone()).or_default() += inc;
    }
}

fn users() -> Vec<String> {
    (0..P)
        .flat_map(|partition| users_in(partition, P, "cache-", 3))
        .collect()
}

/// Waits until the store and every partition's set hold `expected` and every partition has a top.
async fn settled(
    redis: &scoreboard_shared::redis::RedisConn,
    store: &Arc<dyn WatermarkStore>,
    expected: &BTreeMap<String, u64>,
    within: Duration,
) {
    eventually(within, "store, sets and tops equal the sums", || {
        let (mut redis, store, expected) = (redis.clone(), store.clone(), expected.clone());
        async move {
            let mut built = true;
            for partition in 0..P {
                built &= partition_top(&mut redis, partition).await.is_some();
            }
            built
                && store_totals(store.as_ref(), P).await == expected
                && board(&mut redis, P).await == expected
        }
    })
    .await;
}

/// How the store goes down and comes back.
enum Outage {
    /// The memory store fails its next calls as unavailable.
    Memory(Arc<MemoryStore>),
    /// The MongoDB-protocol server is stopped and restarted.
    Mongo(StoreUnderTest),
}

async fn a_flushed_partition_is_rebuilt_once_the_store_is_back(mut outage: Outage) {
    let server = RedisServer::start();
    let url = server.url();
    let mut redis = redis_manager(&url);
    let store: Arc<dyn WatermarkStore> = match &outage {
        Outage::Memory(memory) => memory.clone(),
        Outage::Mongo(target) => target.connect().await,
    };
    let users = users();
    let mut expected = BTreeMap::new();
    send(&mut redis, &users, 5, &mut expected).await;
    let (stop, running) = run_balancer(&url, &store, &[("LEASE_TTL_MS", "2000")]);
    settled(&redis, &store, &expected, Duration::from_secs(20)).await;

    // Act: the store goes down, Redis loses everything, then the store comes back.
    let calls_before = match &mut outage {
        Outage::Memory(memory) => {
            memory.fail_next(6);
            memory.calls()
        }
        Outage::Mongo(target) => {
            target.stop();
            0
        }
    };
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut redis)
        .await
        .unwrap();
    // Longer than the lease (2 s): the owner is fenced and its successor's start fails meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    match &mut outage {
        Outage::Memory(memory) => assert!(
            memory.calls() >= calls_before + 6,
            "the rebuild was attempted while the store was down"
        ),
        Outage::Mongo(target) => target.restart(),
    }

    settled(&redis, &store, &expected, Duration::from_secs(30)).await;
    assert!(!running.is_finished(), "the worker rode the outage out");
    send(&mut redis, &users, 7, &mut expected).await;
    settled(&redis, &store, &expected, Duration::from_secs(20)).await;
    stop.trigger();
    running.await.unwrap().expect("the balancer stops cleanly");
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_rebuild_is_retried_after_a_store_outage_and_a_flushall() {
    a_flushed_partition_is_rebuilt_once_the_store_is_back(Outage::Memory(Arc::new(
        MemoryStore::new(),
    )))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mongo_rebuild_is_retried_after_a_store_outage_and_a_flushall() {
    a_flushed_partition_is_rebuilt_once_the_store_is_back(Outage::Mongo(
        StoreUnderTest::spawned_mongo(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_changed_message_is_healed_by_the_merger_poll() {
    const POLL: Duration = Duration::from_millis(200);
    let server = RedisServer::start();
    let url = server.url();
    let mut redis = redis_manager(&url);
    let store: Arc<dyn WatermarkStore> = Arc::new(MemoryStore::new());
    let config = worker_config("w1", P, &[]);
    let users = users();
    let mut expected = BTreeMap::new();
    send(&mut redis, &users, 5, &mut expected).await;
    for partition in 0..P {
        let mut owner = owner(&url, &store, &config, partition).await.unwrap();
        drain(&mut owner, Duration::from_secs(20)).await;
    }
    let merger = Merger::new(
        MergerConfig {
            partitions: P,
            board_size: 10,
            worker_id: "w1".into(),
            lease_ttl: Duration::from_secs(10),
            merge_interval: Duration::from_millis(10),
            merge_poll: POLL,
        },
        redis.clone(),
        redis_config(&server.url()),
    );
    let (stop, shutdown) = Shutdown::new();
    let merging = tokio::spawn(merger.run(shutdown));
    eventually(Duration::from_secs(10), "the first global top", || {
        let (mut redis, expected) = (redis.clone(), expected.clone());
        async move {
            snapshot(&mut redis)
                .await
                .is_some_and(|s| rows(&s) == top_of(&expected, 10))
        }
    })
    .await;

    // Act: partition 1's top changes and its `changed` message is lost (nothing is published).
    let key = PartitionKeys::new(1).top();
    let mut top = partition_top(&mut redis, 1).await.unwrap();
    let leader = top["entries"][0]["userId"].as_str().unwrap().to_owned();
    top["entries"][0]["score"] = serde_json::json!(1_000_000);
    top["version"] = serde_json::json!(top["version"].as_u64().unwrap() + 1);
    let _: () = redis.set(&key, top.to_string()).await.unwrap();
    let changed = Instant::now();

    eventually(
        POLL + Duration::from_secs(1),
        "the poll to merge the change",
        || {
            let (mut redis, leader) = (redis.clone(), leader.clone());
            async move {
                snapshot(&mut redis).await.is_some_and(|s| {
                    s.entries
                        .first()
                        .is_some_and(|e| e.user_id == leader && e.score == 1_000_000)
                })
            }
        },
    )
    .await;
    let healed_after = changed.elapsed();
    assert!(
        healed_after <= POLL + Duration::from_secs(1),
        "{healed_after:?}"
    );
    stop.trigger();
    merging.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_rebuild_has_every_partition_rebuilt_by_its_running_owner() {
    let server = RedisServer::start();
    let url = server.url();
    let mut redis = redis_manager(&url);
    let store: Arc<dyn WatermarkStore> = Arc::new(MemoryStore::new());
    let users = users();
    let mut expected = BTreeMap::new();
    send(&mut redis, &users, 9, &mut expected).await;
    let (stop, running) = run_balancer(&url, &store, &[]);
    settled(&redis, &store, &expected, Duration::from_secs(20)).await;
    // A drifted cache the rebuild must fix, and the versions before it.
    let mut versions = Vec::new();
    for partition in 0..P {
        let keys = PartitionKeys::new(partition);
        let user = users_in(partition, P, "cache-", 1).remove(0);
        let _: () = redis.zadd(keys.leaderboard(), &user, 1).await.unwrap();
        let top = partition_top(&mut redis, partition).await.unwrap();
        versions.push(top["version"].as_u64().unwrap());
    }

    let partitions = P.to_string();
    let run = run_subcommand(
        &["rebuild"],
        &env_pairs(&[("REDIS_URL", &url), ("PARTITIONS", &partitions)]),
        Duration::from_secs(45),
    )
    .await;

    run.assert_success("worker rebuild");
    assert!(
        run.stdout.contains(&format!("rebuilt {P} partitions")),
        "{}",
        run.stdout
    );
    assert_eq!(
        board(&mut redis, P).await,
        expected,
        "rebuilt from the store"
    );
    for partition in 0..P {
        let top = partition_top(&mut redis, partition).await.unwrap();
        assert!(
            top["version"].as_u64().unwrap() > versions[usize::from(partition)],
            "partition {partition} has a new top"
        );
    }
    assert!(!running.is_finished());
    stop.trigger();
    running.await.unwrap().expect("the balancer stops cleanly");
}
