//! `REDIS_MIN_REPLICAS` (`docs/design.md` §5.4): the owner writes nothing to the store that a failover
//! could still lose. `WAIT` only covers what the waiting connection itself wrote, so the interleaving
//! that matters is: the owner commits (its replica acknowledges), a producer appends an entry on another
//! connection, the replica stops acknowledging, the owner reads the entry. A bare `WAIT` would return at
//! once (the owner's own last write is replicated) and the store would get an entry the replica never
//! saw; the owner must hold the batch until the replica has it.

use std::sync::Arc;
use std::time::Duration;

use scoreboard_shared::shutdown::Shutdown;
use scoreboard_testkit::RedisServer;
use scoreboard_worker::partition::owner::StepOutcome;
use scoreboard_worker::store::WatermarkStore;
use scoreboard_worker::store::memory::MemoryStore;

use crate::helpers::*;

const P: u16 = 1;

/// Sends `sig` to `pid`.
fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

async fn pid_of(redis: &mut scoreboard_shared::redis::RedisConn) -> u32 {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(redis)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
        .expect("process_id")
}

#[tokio::test]
async fn an_entry_the_replica_has_not_acknowledged_is_not_applied() {
    // Arrange: a master and its replica; the owner has committed a first batch, which the replica has.
    let master = RedisServer::start();
    let replica = RedisServer::start_with(&[
        "--save",
        "",
        "--appendonly",
        "no",
        "--replicaof",
        "127.0.0.1",
        &master.port().to_string(),
    ]);
    let mut redis = redis_manager(&master.url());
    let mut replica_conn = redis_manager(&replica.url());
    let memory = Arc::new(MemoryStore::new());
    let store: Arc<dyn WatermarkStore> = memory.clone();
    let config = worker_config(
        "w1",
        P,
        &[
            ("REDIS_MIN_REPLICAS", "1"),
            ("REDIS_WAIT_TIMEOUT_MS", "200"),
        ],
    );
    eventually(Duration::from_secs(20), "the replica is in sync", || {
        let mut redis = redis.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut redis)
                .await
                .unwrap_or_default();
            info.contains("connected_slaves:1") && info.contains("state=online")
        }
    })
    .await;
    xadd_event(&mut redis, P, "early", None, 1).await;
    let mut owner = owner(&master.url(), &store, &config, 0).await.unwrap();
    assert_eq!(drain(&mut owner, Duration::from_secs(20)).await, 1);
    assert_eq!(memory.score("early"), Some(1));

    // Act: the replica stops acknowledging, then a producer appends on its own connection.
    let replica_pid = pid_of(&mut replica_conn).await;
    signal(replica_pid, "-STOP");
    xadd_event(&mut redis, P, "late", None, 5).await;
    let stepping = tokio::spawn(async move {
        let outcome = owner.step(&Shutdown::never()).await;
        (owner, outcome)
    });

    // Assert: while the replica is stopped the entry stays out of the store.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held_back = memory.score("late");
    let waiting = !stepping.is_finished();
    signal(replica_pid, "-CONT");
    assert_eq!(
        held_back, None,
        "an entry the replica had not acknowledged reached the store"
    );
    assert!(waiting, "the step waits for the replica");
    // Once it acknowledges again, the batch applies.
    let (_owner, outcome) = tokio::time::timeout(Duration::from_secs(30), stepping)
        .await
        .expect("the step finishes once the replica is back")
        .unwrap();
    assert!(
        matches!(outcome, Ok(StepOutcome::Processed { applied: 1, .. })),
        "{outcome:?}"
    );
    assert_eq!(memory.score("late"), Some(5));
}
