//! Redis stopped and restarted under a running owner (`docs/design.md` §5.3–§5.5), with the memory
//! store: Redis persists with AOF (`appendfsync always`), so what it acknowledged survives. The owner's
//! steps fail transiently while Redis is down and carry on once it is back (same lease, same cursor);
//! nothing is lost or counted twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use scoreboard_shared::shutdown::Shutdown;
use scoreboard_testkit::RedisServer;
use scoreboard_worker::partition::owner::{OwnerError, PartitionOwner};
use scoreboard_worker::store::WatermarkStore;
use scoreboard_worker::store::memory::MemoryStore;

use crate::helpers::*;

const P: u16 = 1;
const OUTAGE: Duration = Duration::from_millis(1500);

/// How the owner met the outage.
#[derive(Debug)]
struct Ride {
    /// Steps that failed transiently.
    failures: u32,
    /// The longest step (one that retried its commit or store write through the whole outage).
    longest: Duration,
}

/// Steps `owner` until `stop`, counting transient failures; panics on anything else.
async fn step_until(mut owner: PartitionOwner, stop: Arc<AtomicBool>) -> (PartitionOwner, Ride) {
    let mut ride = Ride {
        failures: 0,
        longest: Duration::ZERO,
    };
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let step = owner.step(&Shutdown::never()).await;
        ride.longest = ride.longest.max(started.elapsed());
        match step {
            Ok(_) => {}
            Err(error @ OwnerError::Fenced) => panic!("the lease outlives the outage: {error}"),
            Err(error) if error.is_transient() => {
                ride.failures += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("a Redis outage is transient: {error:?}"),
        }
    }
    (owner, ride)
}

async fn send(
    redis: &mut scoreboard_shared::redis::RedisConn,
    users: &[String],
    rounds: u64,
    expected: &mut BTreeMap<String, u64>,
) {
    for round in 1..=rounds {
        for user in users {
            xadd_event(redis, P, user, None, round).await;
            *expected.entry(user.clone()).or_default() += round;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_owner_rides_out_a_redis_restart_without_losing_or_doubling_events() {
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let url = server.url();
    let mut redis = redis_manager(&url);
    let memory = Arc::new(MemoryStore::new());
    let store: Arc<dyn WatermarkStore> = memory.clone();
    // A lease that outlives the outage: the same owner carries on.
    let config = worker_config("w1", P, &[("LEASE_TTL_MS", "30000")]);
    let users: Vec<String> = (0..5).map(|i| format!("outage-{i}")).collect();
    let mut expected = BTreeMap::new();
    send(&mut redis, &users, 400, &mut expected).await;
    let owner = owner(&url, &store, &config, 0).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stepping = tokio::spawn(step_until(owner, stop.clone()));

    // Act: Redis goes away while the owner drains, and comes back with its AOF.
    tokio::time::sleep(Duration::from_millis(20)).await;
    server.stop();
    tokio::time::sleep(OUTAGE).await;
    server.restart();
    // A fresh connection: the old one's first command after the restart fails (broken pipe).
    let mut redis = redis_manager(&url);
    send(&mut redis, &users, 50, &mut expected).await;

    eventually(Duration::from_secs(30), "every event applied", || {
        let store = store.clone();
        let expected = expected.clone();
        async move { store_totals(store.as_ref(), P).await == expected }
    })
    .await;
    // Give a doubled batch the time to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (owner, ride) = stepping.await.expect("the owner task");
    assert!(
        ride.failures > 0 || ride.longest >= OUTAGE,
        "the owner met the outage (steps failed, or one step retried through it): {ride:?}"
    );
    assert_eq!(store_totals(store.as_ref(), P).await, expected);
    assert_eq!(board(&mut redis, P).await, expected);
    assert_eq!(backlog(&mut redis, P).await, 0);
    let top = partition_top(&mut redis, 0).await.unwrap();
    assert_eq!(top["hw"], owner.cursor().to_string().as_str());
    for user in &users {
        assert_eq!(memory.score(user), expected.get(user).copied(), "{user}");
    }
}
