//! The SSE server on a real 3-master Redis Cluster (`REDIS_CLUSTER=true`): sharded Pub/Sub on `{sb}:events`
//! (`SSUBSCRIBE` on the slot's master, snapshots `SPUBLISH`ed there reach every client), and a move of that
//! slot to another master: the server gets the `sunsubscribe` push, resubscribes on the new owner and
//! re-reads `{sb}:top`, and clients have the next version within 2 s of its publish. The same over a TLS
//! cluster (`rediss://` seeds, the CA in `REDIS_CA_CERT_FILE`), as ElastiCache with in-transit encryption.

use std::time::{Duration, Instant};

use scoreboard_shared::redis::keys;
use scoreboard_testkit::RedisCluster;

use crate::helpers::{CapturedLogs, TestApp, counter, snapshot, token};

const T: Duration = Duration::from_secs(10);
/// How late a client may see a version published while the channel's slot moved.
const AFTER_A_MOVE: Duration = Duration::from_secs(2);

/// `PUBSUB SHARDNUMSUB {sb}:events` on each master: where the sharded subscribers are.
fn shard_subscribers(cluster: &RedisCluster) -> Vec<(u16, u64)> {
    cluster
        .master_ports()
        .into_iter()
        .map(|port| {
            let mut node = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
                .unwrap_or_else(|e| panic!("connect to {port}: {e}"));
            let (_, count): (String, u64) = redis::cmd("PUBSUB")
                .arg("SHARDNUMSUB")
                .arg(keys::EVENTS_CHANNEL)
                .query(&mut node)
                .expect("PUBSUB SHARDNUMSUB");
            (port, count)
        })
        .collect()
}

/// The one master with a sharded subscriber on `{sb}:events`, asserting there is exactly one subscriber.
fn subscribed_on(cluster: &RedisCluster) -> u16 {
    let subscribers = shard_subscribers(cluster);
    let on: Vec<u16> = subscribers
        .iter()
        .filter(|(_, count)| *count > 0)
        .map(|(port, _)| *port)
        .collect();
    assert_eq!(on.len(), 1, "one sharded subscription: {subscribers:?}");
    assert_eq!(
        subscribers.iter().map(|(_, count)| count).sum::<u64>(),
        1,
        "one subscriber per process: {subscribers:?}"
    );
    on[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_published_with_spublish_reach_every_client() {
    let app = TestApp::spawn_on_cluster(&[], Some(&snapshot(1))).await;
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut client = app.connect(&token(&format!("u{i}"))).await;
        assert_eq!(client.next_snapshot(T).await.unwrap().version(), Some(1));
        clients.push(client);
    }
    let slot = app.redis.key_slot(keys::EVENTS_CHANNEL);
    assert_eq!(
        subscribed_on(&app.redis),
        app.redis.master_of_slot(slot),
        "SSUBSCRIBE on the master of the channel's slot"
    );

    for version in 2..=4 {
        assert_eq!(app.publish(&snapshot(version)).await, 1, "v{version}");
        for client in &mut clients {
            assert_eq!(
                client.next_snapshot(T).await.unwrap().version(),
                Some(version)
            );
        }
    }
    assert_eq!(
        counter(&app.metrics().await, "sse_pubsub_reconnects_total"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_move_resubscribes_on_the_new_master_and_the_next_version_arrives_within_2s() {
    let logs = CapturedLogs::install();
    let app = TestApp::spawn_on_cluster(&[], Some(&snapshot(1))).await;
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut client = app.connect(&token(&format!("u{i}"))).await;
        assert_eq!(client.next_snapshot(T).await.unwrap().version(), Some(1));
        clients.push(client);
    }
    assert_eq!(app.publish(&snapshot(2)).await, 1);
    for client in &mut clients {
        assert_eq!(client.next_snapshot(T).await.unwrap().version(), Some(2));
    }
    let slot = app.redis.key_slot(keys::EVENTS_CHANNEL);
    let from = app.redis.master_of_slot(slot);
    assert_eq!(subscribed_on(&app.redis), from);
    let to = app
        .redis
        .master_ports()
        .into_iter()
        .find(|port| *port != from)
        .unwrap();

    // The move blocks this thread only; the server runs on the other worker meanwhile.
    tokio::task::block_in_place(|| app.redis.move_slot(slot, to));
    // Published at once: possibly while the server is between subscriptions, when only its re-read of
    // {sb}:top after resubscribing can deliver it.
    let published = Instant::now();
    app.publish(&snapshot(3)).await;
    for client in &mut clients {
        client.until_version(3, AFTER_A_MOVE).await;
    }
    let delivered = published.elapsed();
    assert!(
        delivered <= AFTER_A_MOVE,
        "v3 reached every client {delivered:?} after its publish"
    );

    // The server saw the sunsubscribe push and resubscribed, now on the slot's new master.
    let resubscribed = app.wait_health(|h| h["subscribed"] == true).await;
    assert_eq!(resubscribed["version"], 3, "{resubscribed}");
    assert!(counter(&app.metrics().await, "sse_pubsub_reconnects_total") >= 1);
    let text = logs.text();
    assert!(
        text.lines().any(
            |line| line.contains("Pub/Sub subscription lost; resubscribing")
                && line.contains("a slot moved")
        ),
        "the loss is logged with its cause:\n{text}"
    );
    assert_eq!(
        subscribed_on(&app.redis),
        to,
        "resubscribed on the new master"
    );

    // Live again: the next publish reaches everyone through the new subscription.
    let published = Instant::now();
    assert_eq!(app.publish(&snapshot(4)).await, 1);
    for client in &mut clients {
        assert_eq!(
            client.next_snapshot(AFTER_A_MOVE).await.unwrap().version(),
            Some(4)
        );
    }
    assert!(published.elapsed() <= AFTER_A_MOVE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_tls_cluster_clients_get_the_top_and_each_spublished_snapshot() {
    let app = TestApp::spawn_on_tls_cluster(&[], Some(&snapshot(1))).await;
    let mut client = app.connect(&token("u0")).await;
    assert_eq!(
        client.next_snapshot(T).await.unwrap().version(),
        Some(1),
        "{{sb}}:top read over TLS"
    );
    let slot = app.redis.key_slot(keys::EVENTS_CHANNEL);
    assert_eq!(
        subscribed_on(&app.redis),
        app.redis.master_of_slot(slot),
        "SSUBSCRIBE over TLS on the master of the channel's slot"
    );
    for version in 2..=3 {
        assert_eq!(app.publish(&snapshot(version)).await, 1, "v{version}");
        assert_eq!(
            client.next_snapshot(T).await.unwrap().version(),
            Some(version)
        );
    }
}
