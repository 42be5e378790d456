//! The ties rule: equal scores are ranked by user id ascending — also across the board's cut-off,
//! where plain `ZREVRANGE` would pick the largest ids.

use scoreboard_testkit::RedisServer;
use scoreboard_worker::Shutdown;

use crate::helpers::{self, StoreUnderTest, xadd_event};

#[tokio::test(flavor = "multi_thread")]
async fn equal_scores_are_ranked_by_user_id_ascending() {
    let redis_server = RedisServer::start();
    let target = StoreUnderTest::mongo();
    let store = target.connect().await;
    let mut redis = helpers::redis_manager(&redis_server.url());
    // Top 3 of: zed 90; carol, alice, bob, dave all 50.
    for (user, inc) in [
        ("carol", 50),
        ("zed", 90),
        ("alice", 50),
        ("dave", 50),
        ("bob", 50),
    ] {
        xadd_event(&mut redis, user, None, inc).await;
    }
    let config = helpers::worker_config("w", &[("LEADERBOARD_SIZE", "3")]);
    let mut worker = helpers::worker(&redis, &store, config).await;

    worker.step(&Shutdown::never()).await.unwrap();

    let snap = helpers::snapshot(&mut redis).await.expect("snapshot");
    let order: Vec<(&str, u32)> = snap
        .entries
        .iter()
        .map(|e| (e.user_id.as_str(), e.rank))
        .collect();
    assert_eq!(order, [("zed", 1), ("alice", 2), ("bob", 3)]);
    // Names default to the user id when the token had none.
    assert_eq!(snap.entries[1].name, "alice");

    // Ties above the cut-off are ordered the same way.
    xadd_event(&mut redis, "yan", None, 90).await;
    worker.step(&Shutdown::never()).await.unwrap();
    let snap = helpers::snapshot(&mut redis).await.unwrap();
    let order: Vec<&str> = snap.entries.iter().map(|e| e.user_id.as_str()).collect();
    assert_eq!(order, ["yan", "zed", "alice"]);
    assert_eq!(
        helpers::rows(&snap),
        helpers::store_top(store.as_ref(), 3).await
    );
}
