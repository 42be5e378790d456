//! Losing the Pub/Sub connection: the process resubscribes, re-reads `{sb}:top`, and clients converge.

use std::time::Duration;

use redis::AsyncCommands;
use scoreboard_shared::redis::keys;

use crate::helpers::{TestApp, snapshot, token};

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn killed_pubsub_connection_resubscribes_and_clients_converge() {
    let app = TestApp::spawn(&[], Some(&snapshot(1))).await;
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut client = app.connect(&token(&format!("u{i}"))).await;
        client.next_snapshot(T).await.unwrap();
        clients.push(client);
    }
    let mut conn = app.redis.connection().await;
    // Kill the subscription and, in the same transaction, publish a version nobody hears: only the
    // re-read of {sb}:top after resubscribing can deliver it.
    let json = serde_json::to_string(&snapshot(10)).unwrap();
    let (killed, (), receivers): (u64, (), u64) = redis::pipe()
        .atomic()
        .cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .set(keys::TOP, &json)
        .publish(keys::EVENTS_CHANNEL, &json)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(killed, 1, "exactly one Pub/Sub connection per process");
    assert_eq!(receivers, 0, "the publish happened while unsubscribed");
    for client in &mut clients {
        client.until_version(10, T).await;
    }
    // Live again: later publishes reach everyone through the new subscription.
    app.wait_health(|h| h["subscribed"] == true).await;
    let _: () = conn.set("unrelated", 1).await.unwrap();
    assert_eq!(app.publish(&snapshot(11)).await, 1);
    for client in &mut clients {
        assert_eq!(client.next_snapshot(T).await.unwrap().version(), Some(11));
    }
}

#[tokio::test]
async fn redis_restart_is_survived() {
    let mut app = TestApp::spawn(&[], Some(&snapshot(1))).await;
    let mut client = app.connect(&token("u1")).await;
    client.next_snapshot(T).await.unwrap();
    app.redis.restart(); // loses the data too
    app.wait_health(|h| h["subscribed"] == true).await;
    assert_eq!(app.publish(&snapshot(2)).await, 1);
    assert_eq!(client.next_snapshot(T).await.unwrap().version(), Some(2));
}
