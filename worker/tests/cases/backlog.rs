//! The backlog reproduction of issue 9 (`docs/design.md` §5.3): 20,000 queued events of one user, the
//! worker binary `kill -9`ed 12 times while it drains them (each time right after it committed a batch,
//! at a random moment of the next one) and restarted. Exactly once by watermark does not depend on how
//! far behind the worker is: the store and the partition's set end at the exact sum.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scoreboard_shared::partition::Partitioner;

use crate::helpers::*;

const P: u16 = 16;
const KILLS: usize = 12;
const USER: &str = "backlog-user";

#[tokio::test]
async fn mongo_a_backlog_of_one_user_drained_through_12_kills_counts_exactly_once() {
    backlog_scenario(StoreUnderTest::mongo(), 20_000).await;
}

#[tokio::test]
async fn dynamodb_a_backlog_of_one_user_drained_through_12_kills_counts_exactly_once() {
    backlog_scenario(StoreUnderTest::dynamodb(), 20_000).await;
}

async fn backlog_scenario(store: StoreUnderTest, events: usize) {
    let server = durable_redis();
    let mut redis = redis_manager(&server.url());
    let partition = Partitioner::new(P).partition_of(USER);
    let mut rng = StdRng::seed_from_u64(9);
    let increments: Vec<u64> = (0..events).map(|_| rng.random_range(1..=9)).collect();
    let expected: u64 = increments.iter().sum();
    fill(&mut redis, P, USER, "Backlog", &increments).await;

    let env = worker_env(
        &store,
        &server.url(),
        "backlog-worker",
        P,
        // The shortest lease: each kill costs the time until the dead worker's lease expires.
        &[("WORKER_BATCH_SIZE", "250"), ("LEASE_TTL_MS", "1000")],
    );
    let started = Instant::now();
    let mut worker = WorkerProcess::start(&env);
    for kill in 1..=KILLS {
        let life = Instant::now();
        let before = cursor(&mut redis, partition).await;
        let probe = redis.clone();
        eventually(
            Duration::from_secs(30),
            &format!("life {kill} of the worker to commit a batch"),
            || {
                let (mut probe, before) = (probe.clone(), before.clone());
                async move { cursor(&mut probe, partition).await != before }
            },
        )
        .await;
        // Somewhere inside the next batch: before its read, between the store write and the commit, …
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..40))).await;
        worker.kill9();
        let left = backlog(&mut redis, P).await;
        assert!(
            left > 0,
            "kill {kill} came after the backlog was drained; the test needs a bigger backlog"
        );
        eprintln!(
            "kill {kill} after {:?}: {left} entries left after the cursor",
            life.elapsed()
        );
        worker.restart();
    }

    eprintln!("{KILLS} kills in {:?}", started.elapsed());
    let probe = redis.clone();
    eventually(
        Duration::from_secs(90),
        "the worker to drain the backlog",
        || {
            let mut probe = probe.clone();
            async move { backlog(&mut probe, P).await == 0 }
        },
    )
    .await;
    eprintln!("drained through {KILLS} kills in {:?}", started.elapsed());
    let totals = store_totals(store.connect().await.as_ref(), P).await;
    assert_eq!(
        totals.get(USER),
        Some(&expected),
        "the store counts each of {events} events once"
    );
    assert_eq!(totals.len(), 1);
    assert_eq!(
        board(&mut redis, P).await.get(USER),
        Some(&expected),
        "the partition's set holds the store's total"
    );
}
