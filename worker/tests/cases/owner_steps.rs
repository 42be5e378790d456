//! One partition owner stepped by hand on a real Redis with the in-memory store: batches reach the
//! store and the partition's set, top and cursor; the stream is trimmed to the cursor; malformed and
//! misrouted entries go to the partition's DLQ while the rest applies; re-reading entries the store
//! already has (a lost commit, an older RDB) changes nothing; the merger publishes the global top.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use scoreboard_shared::redis::keys::PartitionKeys;
use scoreboard_testkit::RedisServer;
use scoreboard_worker::merger::{MergeOutcome, Merger, MergerConfig};
use scoreboard_worker::store::WatermarkStore;
use scoreboard_worker::store::memory::MemoryStore;

use crate::helpers::*;

const P: u16 = 4;

fn memory() -> (Arc<MemoryStore>, Arc<dyn WatermarkStore>) {
    let memory = Arc::new(MemoryStore::new());
    let store: Arc<dyn WatermarkStore> = memory.clone();
    (memory, store)
}

#[tokio::test]
async fn a_drained_partition_has_its_totals_top_and_cursor_and_a_trimmed_stream() {
    let server = RedisServer::start();
    let mut redis = redis_manager(&server.url());
    let (memory, store) = memory();
    let config = worker_config("w1", P, &[]);
    let users = users_in(2, P, "u", 3);
    let mut expected = 0;
    for round in 1..=5u64 {
        for user in &users {
            xadd_event(&mut redis, P, user, Some("Ann"), round).await;
        }
        expected += round;
    }
    let mut owner = owner(&server.url(), &store, &config, 2).await.unwrap();
    assert_eq!(drain(&mut owner, Duration::from_secs(20)).await, 15);
    for user in &users {
        assert_eq!(memory.score(user), Some(expected), "{user}");
    }
    let board = board(&mut redis, P).await;
    assert_eq!(board.len(), 3);
    assert!(board.values().all(|s| *s == expected), "{board:?}");
    let top = partition_top(&mut redis, 2).await.expect("partition top");
    assert_eq!(top["entries"].as_array().unwrap().len(), 3);
    assert_eq!(top["entries"][0]["name"], "Ann");
    let keys = PartitionKeys::new(2);
    let cursor: String = redis.get(keys.cursor()).await.unwrap();
    assert_eq!(cursor, owner.cursor().to_string());
    assert_eq!(top["hw"], cursor.as_str());
    let left: usize = redis.xlen(keys.updates()).await.unwrap();
    assert!(left <= 1, "trimmed to the cursor, {left} left");
    assert_eq!(backlog(&mut redis, P).await, 0);
}

#[tokio::test]
async fn malformed_and_misrouted_entries_go_to_the_dlq_and_the_rest_applies() {
    let server = RedisServer::start();
    let mut redis = redis_manager(&server.url());
    let (memory, store) = memory();
    let config = worker_config("w1", P, &[]);
    let good = users_in(1, P, "g", 1).remove(0);
    let elsewhere = users_in(3, P, "x", 1).remove(0);
    xadd_event(&mut redis, P, &good, None, 5).await;
    let malformed = xadd_raw(&mut redis, 1, &[("v", "1"), ("user", &good), ("inc", "-3")]).await;
    let misrouted = xadd_raw(
        &mut redis,
        1,
        &[
            ("v", "1"),
            ("user", &elsewhere),
            ("inc", "2"),
            ("ts", "1"),
            ("req", "r"),
        ],
    )
    .await;
    xadd_event(&mut redis, P, &good, None, 7).await;
    let mut owner = owner(&server.url(), &store, &config, 1).await.unwrap();
    drain(&mut owner, Duration::from_secs(20)).await;
    assert_eq!(memory.score(&good), Some(12));
    assert_eq!(
        memory.score(&elsewhere),
        None,
        "a misrouted entry is never applied"
    );
    let letters = scoreboard_worker::dlq::list(&mut redis, 0..P)
        .await
        .unwrap();
    let events: Vec<_> = letters.iter().map(|l| l.fields["event"].clone()).collect();
    assert_eq!(events, [malformed, misrouted]);
    assert!(
        letters[0].fields["reason"].starts_with("malformed"),
        "{letters:?}"
    );
    assert!(
        letters[1].fields["reason"].starts_with("wrong partition"),
        "{letters:?}"
    );
    assert_eq!(
        backlog(&mut redis, P).await,
        0,
        "the partition moved past them"
    );
}

#[tokio::test]
async fn entries_read_again_after_the_cursor_went_back_count_once() {
    let server = RedisServer::start();
    let mut redis = redis_manager(&server.url());
    let (memory, store) = memory();
    let config = worker_config("w1", P, &[]);
    let user = users_in(0, P, "u", 1).remove(0);
    let keys = PartitionKeys::new(0);
    // Copy the entries: the owner trims them once committed.
    for inc in [3, 4, 5] {
        xadd_event(&mut redis, P, &user, None, inc).await;
    }
    let entries: redis::streams::StreamRangeReply = redis.xrange_all(keys.updates()).await.unwrap();
    let mut first = owner(&server.url(), &store, &config, 0).await.unwrap();
    drain(&mut first, Duration::from_secs(20)).await;
    assert_eq!(memory.score(&user), Some(12));
    // As after a lost commit or a restore from an older RDB: cursor gone, entries back.
    let _: () = redis.del(&[keys.cursor(), keys.lease()]).await.unwrap();
    let _: () = redis.del(keys.updates()).await.unwrap();
    for entry in &entries.ids {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(keys.updates()).arg(&entry.id);
        for (k, v) in &entry.map {
            cmd.arg(k)
                .arg(redis::from_redis_value_ref::<String>(v).unwrap());
        }
        let _: String = cmd.query_async(&mut redis).await.unwrap();
    }
    let mut second = owner(&server.url(), &store, &config, 0).await.unwrap();
    assert_eq!(
        drain(&mut second, Duration::from_secs(20)).await,
        0,
        "all filtered by wm"
    );
    assert_eq!(memory.score(&user), Some(12));
    assert_eq!(board(&mut redis, P).await.get(&user), Some(&12));
    // And a new event after them applies.
    xadd_event(&mut redis, P, &user, None, 1).await;
    assert_eq!(drain(&mut second, Duration::from_secs(20)).await, 1);
    assert_eq!(memory.score(&user), Some(13));
}

#[tokio::test]
async fn the_merger_publishes_the_exact_global_top_only_when_every_partition_is_built() {
    let server = RedisServer::start();
    let mut redis = redis_manager(&server.url());
    let (_, store) = memory();
    let config = worker_config("w1", P, &[]);
    let merger_config = MergerConfig {
        partitions: P,
        board_size: 3,
        worker_id: "w1".into(),
        lease_ttl: Duration::from_secs(5),
        merge_interval: Duration::from_millis(10),
        merge_poll: Duration::from_secs(1),
    };
    let mut merger = Merger::new(merger_config, redis.clone(), redis_config(&server.url()));
    assert!(merger.try_acquire().await.unwrap());
    assert_eq!(merger.merge().await.unwrap(), MergeOutcome::Unbuilt);

    let mut owners = Vec::new();
    for partition in 0..P {
        for (i, user) in users_in(partition, P, "m", 2).iter().enumerate() {
            xadd_event(
                &mut redis,
                P,
                user,
                None,
                u64::from(partition) * 10 + i as u64 + 1,
            )
            .await;
        }
        owners.push(
            owner(&server.url(), &store, &config, partition)
                .await
                .unwrap(),
        );
    }
    for owner in &mut owners {
        drain(owner, Duration::from_secs(20)).await;
    }
    let MergeOutcome::Published { version } = merger.merge().await.unwrap() else {
        panic!("every partition is built: the merger publishes");
    };
    let published = snapshot(&mut redis).await.unwrap();
    assert_eq!(published.version, version);
    let totals = store_totals(store.as_ref(), P).await;
    assert_eq!(rows(&published), top_of(&totals, 3));
    assert_eq!(merger.merge().await.unwrap(), MergeOutcome::Unchanged);
}
