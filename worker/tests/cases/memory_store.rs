//! Worker logic against the in-memory store (fast, no store server): a batch is one store call per
//! step, an injected store outage is retried until it passes with nothing lost or doubled, a
//! shutdown during an endless outage gives up after the grace period leaving the batch pending, and a
//! store refusal (not transient) is not retried: the loop stops with the batch pending.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scoreboard_shared::shutdown::Shutdown;
use scoreboard_testkit::RedisServer;
use scoreboard_worker::store::ScoreStore;
use scoreboard_worker::store::memory::MemoryStore;
use scoreboard_worker::{StepOutcome, WorkerError};

use crate::helpers::{self, xadd_event};

#[tokio::test(flavor = "multi_thread")]
async fn one_step_writes_a_whole_batch_in_one_store_call() {
    let redis_server = RedisServer::start();
    let memory = Arc::new(MemoryStore::new());
    let store: Arc<dyn ScoreStore> = memory.clone();
    let mut redis = helpers::redis_manager(&redis_server.url());
    let mut worker = helpers::worker(&redis, &store, helpers::worker_config("w", &[])).await;
    for i in 0..12u64 {
        xadd_event(&mut redis, &format!("u{}", i % 3), None, i + 1).await;
    }

    let outcome = worker.step(&Shutdown::never()).await.expect("step");

    assert_eq!(
        outcome,
        StepOutcome::Processed {
            applied: 12,
            dead: 0,
            published: true
        }
    );
    assert_eq!(memory.calls(), 1, "one apply_batch for the whole batch");
    assert_eq!(
        helpers::store_totals(store.as_ref()).await,
        BTreeMap::from([
            ("u0".to_owned(), 1 + 4 + 7 + 10),
            ("u1".to_owned(), 2 + 5 + 8 + 11),
            ("u2".to_owned(), 3 + 6 + 9 + 12),
        ])
    );
    assert_eq!(
        helpers::board(&mut redis).await,
        helpers::store_totals(store.as_ref()).await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_outage_is_retried_until_it_passes_and_counts_each_event_once() {
    let redis_server = RedisServer::start();
    let memory = Arc::new(MemoryStore::new());
    let store: Arc<dyn ScoreStore> = memory.clone();
    let mut redis = helpers::redis_manager(&redis_server.url());
    let mut worker = helpers::worker(&redis, &store, helpers::worker_config("w", &[])).await;
    for _ in 0..5 {
        xadd_event(&mut redis, "ann", Some("Ann"), 3).await;
    }
    memory.fail_next(3);

    worker.step(&Shutdown::never()).await.expect("step");

    assert_eq!(memory.calls(), 4, "three failures, then the write");
    assert_eq!(memory.total("ann"), Some(15));
    assert_eq!(helpers::pending(&mut redis).await, 0, "acked once written");
    assert_eq!(
        helpers::drain(&mut worker, Duration::from_secs(10)).await,
        0
    );
    assert_eq!(memory.total("ann"), Some(15), "nothing applied twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_during_an_endless_outage_gives_up_and_leaves_the_batch_pending() {
    let redis_server = RedisServer::start();
    let memory = Arc::new(MemoryStore::new());
    let store: Arc<dyn ScoreStore> = memory.clone();
    let mut redis = helpers::redis_manager(&redis_server.url());
    let mut worker = helpers::worker(&redis, &store, helpers::worker_config("w", &[])).await;
    xadd_event(&mut redis, "ann", None, 3).await;
    memory.fail_next(u32::MAX);
    let (trigger, shutdown) = Shutdown::new();
    trigger.trigger();

    let started = Instant::now();
    let result = worker.step(&shutdown).await;

    assert!(matches!(result, Err(WorkerError::Abandoned)), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bounded by the grace period"
    );
    assert_eq!(memory.total("ann"), None, "nothing written");
    assert_eq!(helpers::pending(&mut redis).await, 1, "left for a reclaim");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_refusal_is_not_retried_and_stops_the_loop_with_the_batch_pending() {
    let redis_server = RedisServer::start();
    let memory = Arc::new(MemoryStore::new());
    let store: Arc<dyn ScoreStore> = memory.clone();
    let mut redis = helpers::redis_manager(&redis_server.url());
    let mut worker = helpers::worker(&redis, &store, helpers::worker_config("w", &[])).await;
    xadd_event(&mut redis, "ann", None, 3).await;
    memory.refuse_next(u32::MAX);

    let result = worker.step(&Shutdown::never()).await;

    assert!(
        matches!(&result, Err(WorkerError::Store(e)) if !e.is_transient()),
        "{result:?}"
    );
    assert_eq!(memory.calls(), 1, "a refusal is not retried");
    assert_eq!(
        helpers::pending(&mut redis).await,
        1,
        "left pending, not acked"
    );

    // The loop stops too (the binary then exits non-zero) instead of stepping on.
    xadd_event(&mut redis, "bob", None, 4).await;
    let stopped = tokio::time::timeout(Duration::from_secs(20), worker.run(Shutdown::never()))
        .await
        .expect("the loop returns instead of retrying forever");
    assert!(matches!(stopped, Err(WorkerError::Store(_))), "{stopped:?}");
    assert_eq!(memory.calls(), 2, "one refused call, then it stopped");
    assert_eq!(memory.total("ann"), None);
    assert_eq!(memory.total("bob"), None);
    assert_eq!(
        helpers::pending(&mut redis).await,
        2,
        "both left for a reclaim"
    );
}
