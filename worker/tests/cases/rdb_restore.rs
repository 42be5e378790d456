//! Redis restarted from an older RDB file after the store applied later events (`docs/design.md` §5.4,
//! §5.7, §5.8), on MongoDB and the memory store: the restored stream holds entries the store already
//! applied, an old cursor, old partition sets and tops, and a last id below the store's `hw`. A new owner
//! moves the stream's id past `hw` (`XSETID`), rebuilds the partition's set from the store, re-reads the
//! old entries without applying any twice, and applies new events (their ids are above every `wm`).
//! The global version published after the restart is above every version published before it.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use scoreboard_shared::partition::StreamId;
use scoreboard_shared::redis::keys::{self, PartitionKeys};
use scoreboard_testkit::RedisServer;
use scoreboard_worker::merger::{MergeOutcome, Merger, MergerConfig};
use scoreboard_worker::partition::owner::PartitionOwner;
use scoreboard_worker::store::WatermarkStore;
use scoreboard_worker::store::memory::MemoryStore;

use crate::helpers::*;

const P: u16 = 2;

fn merger(redis: &scoreboard_shared::redis::RedisConn, server: &RedisServer) -> Merger {
    Merger::new(
        MergerConfig {
            partitions: P,
            board_size: 10,
            worker_id: "w1".into(),
            lease_ttl: Duration::from_secs(10),
            merge_interval: Duration::from_millis(10),
            merge_poll: Duration::from_secs(1),
        },
        redis.clone(),
        redis_config(&server.url()),
    )
}

async fn publish(merger: &mut Merger) -> u64 {
    assert!(merger.try_acquire().await.unwrap(), "merger lease");
    match merger.merge().await.unwrap() {
        MergeOutcome::Published { version } => version,
        other => panic!("expected a publication, got {other:?}"),
    }
}

/// Sends `inc` for every user, adding to `expected`.
async fn send(
    redis: &mut scoreboard_shared::redis::RedisConn,
    users: &[String],
    inc: u64,
    expected: &mut std::collections::BTreeMap<String, u64>,
) {
    for user in users {
        xadd_event(redis, P, user, Some("Rae"), inc).await;
        *expected.entry(user.clone()).or_default() += inc;
    }
}

async fn drain_all(owners: &mut [PartitionOwner]) -> usize {
    let mut applied = 0;
    for owner in owners {
        applied += drain(owner, Duration::from_secs(20)).await;
    }
    applied
}

async fn restored_from_an_older_rdb_applies_nothing_twice_and_new_events_once(
    store: Arc<dyn WatermarkStore>,
) {
    let mut server = RedisServer::start_with(&["--appendonly", "no", "--save", ""]);
    let url = server.url();
    let mut redis = redis_manager(&url);
    let config = worker_config("w1", P, &[]);
    let users: Vec<String> = (0..P)
        .flat_map(|partition| users_in(partition, P, "rdb-", 3))
        .collect();
    let mut expected = std::collections::BTreeMap::new();
    let mut versions = Vec::new();

    // Applied before the dump.
    send(&mut redis, &users, 1, &mut expected).await;
    let mut owners = Vec::new();
    for partition in 0..P {
        owners.push(owner(&url, &store, &config, partition).await.unwrap());
    }
    drain_all(&mut owners).await;
    let mut first = merger(&redis, &server);
    versions.push(publish(&mut first).await);
    // Queued when the dump is taken, applied after it.
    send(&mut redis, &users, 10, &mut expected).await;
    let _: () = redis::cmd("SAVE").query_async(&mut redis).await.unwrap();
    drain_all(&mut owners).await;
    versions.push(publish(&mut first).await);
    // Only after the dump.
    send(&mut redis, &users, 100, &mut expected).await;
    drain_all(&mut owners).await;
    versions.push(publish(&mut first).await);
    assert_eq!(store_totals(store.as_ref(), P).await, expected);
    let mut hw = Vec::new();
    for partition in 0..P {
        let read = store.read(partition, &[]).await.unwrap();
        hw.push(read.hw.expect("the store has a hw").entry);
    }
    drop(owners);
    drop(first);

    // Act: Redis comes back from the older dump.
    server.stop();
    server.restart();
    let mut redis = redis_manager(&url);
    let restored: usize = redis.xlen(PartitionKeys::new(0).updates()).await.unwrap();
    let restored_1: usize = redis.xlen(PartitionKeys::new(1).updates()).await.unwrap();
    assert!(
        restored + restored_1 >= users.len(),
        "the dump holds the entries queued when it was taken"
    );
    // The old owner's and merger's leases came back with the dump: gone with their process.
    for partition in 0..P {
        let _: () = redis
            .del(PartitionKeys::new(partition).lease())
            .await
            .unwrap();
    }
    let _: () = redis.del(keys::MERGER_LEASE).await.unwrap();
    let mut owners = Vec::new();
    for partition in 0..P {
        owners.push(owner(&url, &store, &config, partition).await.unwrap());
    }

    // The stream's id is at or past the store's hw, and the sets were rebuilt from the store.
    for partition in 0..P {
        let info: redis::streams::StreamInfoStreamReply = redis
            .xinfo_stream(PartitionKeys::new(partition).updates())
            .await
            .unwrap();
        let last: StreamId = info.last_generated_id.parse().unwrap();
        assert!(
            last >= hw[usize::from(partition)],
            "partition {partition}: last id {last} below hw {}",
            hw[usize::from(partition)]
        );
    }
    assert_eq!(
        board(&mut redis, P).await,
        expected,
        "rebuilt from the store"
    );
    assert_eq!(
        drain_all(&mut owners).await,
        0,
        "the restored entries were all applied before"
    );
    assert_eq!(store_totals(store.as_ref(), P).await, expected);

    // New events are applied, not skipped by wm.
    send(&mut redis, &users, 1000, &mut expected).await;
    assert_eq!(drain_all(&mut owners).await, users.len());
    assert_eq!(store_totals(store.as_ref(), P).await, expected);
    assert_eq!(board(&mut redis, P).await, expected);

    // A new merger (a restarted process) publishes above every earlier version.
    let mut second = merger(&redis, &server);
    let after = publish(&mut second).await;
    let before = *versions.iter().max().unwrap();
    assert!(
        after > before,
        "version {after} after the restore, {before} before"
    );
    let global = snapshot(&mut redis).await.unwrap();
    assert_eq!(global.version, after);
    assert_eq!(rows(&global), top_of(&expected, 10));
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_restore_from_an_older_rdb_counts_every_event_once() {
    restored_from_an_older_rdb_applies_nothing_twice_and_new_events_once(Arc::new(
        MemoryStore::new(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mongo_restore_from_an_older_rdb_counts_every_event_once() {
    let target = StoreUnderTest::mongo();
    restored_from_an_older_rdb_applies_nothing_twice_and_new_events_once(target.connect().await)
        .await;
}
