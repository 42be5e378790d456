//! A store outage with a backlog (`docs/design.md` §5.2–§5.3): two worker processes run while the store
//! is down and 5,000 events of one user queue up; the owner holds a batch it cannot write (and lets its
//! lease go, since its steps do not complete). The store comes back, and the partition's owner is
//! `kill -9`ed twice while it drains (each time right after a commit) and restarted. Exactly once by
//! watermark: the store and the partition's set end at the exact sum.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scoreboard_shared::partition::Partitioner;

use crate::helpers::*;

const P: u16 = 4;
const EVENTS: usize = 5_000;
const USER: &str = "outage-user";

#[tokio::test]
async fn mongo_a_backlog_queued_during_a_store_outage_drains_exactly_once_through_two_owner_kills()
{
    store_outage_scenario(StoreUnderTest::spawned_mongo()).await;
}

#[tokio::test]
async fn dynamodb_a_backlog_queued_during_a_store_outage_drains_exactly_once_through_two_owner_kills()
 {
    store_outage_scenario(StoreUnderTest::spawned_dynamodb()).await;
}

/// The sum of a worker's `/metrics` samples of counter `name` whose labels contain `label`.
async fn counter_total(worker: &WorkerProcess, name: &str, label: &str) -> u64 {
    let Some(metrics) = worker.metrics().await else {
        return 0;
    };
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Retries of the store stage reported by a worker's `/metrics`.
async fn store_retries(worker: &WorkerProcess) -> u64 {
    counter_total(worker, "scoreboard_worker_retries_total", "\"store\"").await
}

async fn store_outage_scenario(mut store: StoreUnderTest) {
    let server = durable_redis();
    let mut redis = redis_manager(&server.url());
    let partition = Partitioner::new(P).partition_of(USER);
    let extra = [("WORKER_BATCH_SIZE", "50")];
    let ids = ["outage-a", "outage-b"];
    let mut workers: Vec<WorkerProcess> = ids
        .iter()
        .map(|id| WorkerProcess::start(&worker_env(&store, &server.url(), id, P, &extra)))
        .collect();
    let probe = redis.clone();
    eventually(
        Duration::from_secs(60),
        "the workers to own and build every partition",
        || {
            let mut probe = probe.clone();
            async move {
                let held = lease_holders(&mut probe, P).await;
                let mut built = true;
                for partition in 0..P {
                    built &= partition_top(&mut probe, partition).await.is_some();
                }
                built && held.iter().all(Option::is_some)
            }
        },
    )
    .await;

    store.stop();
    let mut rng = StdRng::seed_from_u64(5);
    let increments: Vec<u64> = (0..EVENTS).map(|_| rng.random_range(1..=9)).collect();
    let expected: u64 = increments.iter().sum();
    fill(&mut redis, P, USER, "Outage", &increments).await;
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let mut retries = 0;
        for worker in &workers {
            retries += store_retries(worker).await;
        }
        if retries > 0 {
            break;
        }
        assert!(
            Instant::now() < until,
            "no worker retried its store write during the outage:\n{}\n{}\nmetrics:\n{:?}",
            workers[0].output_tail(30),
            workers[1].output_tail(30),
            workers[0].metrics().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        cursor(&mut redis, partition).await,
        None,
        "nothing committed while the store is down"
    );
    assert!(
        workers.iter_mut().all(WorkerProcess::is_running),
        "the workers ride the outage out"
    );

    store.restart();
    let started = Instant::now();
    for kill in 1..=2 {
        let before = cursor(&mut redis, partition).await;
        let probe = redis.clone();
        eventually(
            Duration::from_secs(60),
            &format!("the owner to commit a batch before kill {kill}"),
            || {
                let (mut probe, before) = (probe.clone(), before.clone());
                async move { cursor(&mut probe, partition).await != before }
            },
        )
        .await;
        let holder = lease_holders(&mut redis, P).await[usize::from(partition)].clone();
        let Some(owner) = workers
            .iter_mut()
            .find(|w| w.worker_id() == holder.as_deref())
        else {
            panic!("partition {partition} has no owner right after a commit: {holder:?}");
        };
        owner.kill9();
        let left = backlog(&mut redis, P).await;
        assert!(left > 0, "kill {kill} came after the backlog was drained");
        eprintln!(
            "kill {kill} of {holder:?} after {:?}: {left} entries left",
            started.elapsed()
        );
        owner.restart();
    }

    let probe = redis.clone();
    eventually(
        Duration::from_secs(90),
        "the workers to drain the backlog",
        || {
            let mut probe = probe.clone();
            async move { backlog(&mut probe, P).await == 0 }
        },
    )
    .await;
    eprintln!("drained {:?} after the store came back", started.elapsed());
    let totals = store_totals(store.connect().await.as_ref(), P).await;
    assert_eq!(totals.get(USER), Some(&expected), "each event counts once");
    assert_eq!(totals.len(), 1);
    assert_eq!(board(&mut redis, P).await.get(USER), Some(&expected));
    // One user, batches of 50: after an owner's first batch it remembers the user and reads nothing.
    let mut remembered = 0;
    for worker in &workers {
        remembered += counter_total(
            worker,
            "scoreboard_worker_user_records_total",
            "\"remembered\"",
        )
        .await;
    }
    assert!(
        remembered > 0,
        "the owners read the store for a user they had just written"
    );
}
