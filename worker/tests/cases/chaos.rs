//! Chaos (issue 9): three worker processes drain updates sent through the real update handler (2,000
//! users, Zipf(1.1) popularity, a seeded RNG) while one random worker is `kill -9`ed and restarted about
//! every second. Afterwards the store's totals, the partition sets and the global top equal the sums of
//! the accepted increments exactly, and no partition was processed out of order: each user's `wm` only
//! moves forward and is the id of the last event applied to them, so it must be the id of their last
//! accepted event, and each partition's `hw` the last accepted id of the partition.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scoreboard_shared::partition::{EventId, Partitioner, StreamId};
use scoreboard_worker::store::Watermark;

use crate::helpers::*;

const P: u16 = 16;
const USERS: usize = 2_000;
const ZIPF_EXPONENT: f64 = 1.1;
const WORKERS: usize = 3;
const PRODUCERS: usize = 16;
/// How long the producers may take: 50,000 updates through the debug-built handler take about 100 s on
/// two cores alone and well over 150 s next to the rest of `make test`.
const SEND_BOUND: Duration = Duration::from_secs(360);
/// Kills happen at least this often, and for as long as updates are being sent.
const MIN_KILLS: usize = 8;
const MAX_KILLS: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_chaos_with_three_workers_and_kills_every_second_is_exact_and_in_order() {
    chaos_scenario(StoreUnderTest::mongo(), 50_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_chaos_with_three_workers_and_kills_every_second_is_exact_and_in_order() {
    // DynamoDB Local takes one HTTP call per user of a batch: 10,000 updates keep this test near the
    // MongoDB one's time (about a minute and a half on two shared cores) with the same kill cadence.
    chaos_scenario(StoreUnderTest::dynamodb(), 10_000).await;
}

/// Samples ranks `0..n` with probability proportional to `1 / (rank + 1)^s`.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                total += 1.0 / (k as f64).powf(s);
                total
            })
            .collect();
        for c in &mut cdf {
            *c /= total;
        }
        Self { cdf }
    }

    fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

async fn chaos_scenario(store: StoreUnderTest, updates: usize) {
    // Redis itself never crashes here (only workers do), so it runs without AOF: fsyncing every
    // accepted update would make the producers, not the workers, the bottleneck.
    let server = scoreboard_testkit::RedisServer::start();
    let mut redis = redis_manager(&server.url());
    let mut rng = StdRng::seed_from_u64(0x5c0e_b0a2d);
    let zipf = Zipf::new(USERS, ZIPF_EXPONENT);
    let workload: Vec<(String, u64)> = (0..updates)
        .map(|_| {
            let user = format!("zipf-{:04}", zipf.sample(&mut rng));
            (user, rng.random_range(1..=100))
        })
        .collect();

    let mut workers: Vec<WorkerProcess> = (0..WORKERS)
        .map(|i| {
            let id = format!("chaos-{i}");
            WorkerProcess::start(&worker_env(&store, &server.url(), &id, P, &[]))
        })
        .collect();

    let started = Instant::now();
    let producer = Arc::new(UpdateProducer::new(redis.clone(), P));
    let workload = Arc::new(workload);
    let tasks: Vec<_> = (0..PRODUCERS)
        .map(|t| {
            let (producer, workload) = (producer.clone(), workload.clone());
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                for (user, inc) in workload.iter().skip(t).step_by(PRODUCERS) {
                    if let Some(ok) = producer.send(user, *inc).await {
                        accepted.push(ok);
                    }
                }
                accepted
            })
        })
        .collect();

    let mut kills = 0;
    while kills < MIN_KILLS || tasks.iter().any(|t| !t.is_finished()) {
        assert!(
            kills < MAX_KILLS && started.elapsed() < SEND_BOUND,
            "the producers did not finish: {kills} kills in {:?}",
            started.elapsed()
        );
        let pause = rng.random_range(700..1_300);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let victim = rng.random_range(0..WORKERS);
        workers[victim].restart();
        kills += 1;
    }
    let mut accepted: Vec<Accepted> = Vec::with_capacity(updates);
    for task in tasks {
        accepted.extend(task.await.expect("producer task"));
    }
    eprintln!(
        "{} of {updates} updates accepted and {kills} kills in {:?}",
        accepted.len(),
        started.elapsed()
    );
    assert!(
        accepted.len() >= updates * 99 / 100,
        "only {} of {updates} accepted",
        accepted.len()
    );
    let mut expected = BTreeMap::<String, u64>::new();
    let mut last_event = BTreeMap::<String, EventId>::new();
    let mut partition_last = BTreeMap::<u16, StreamId>::new();
    for a in &accepted {
        *expected.entry(a.user.clone()).or_default() += a.increment;
        let id: EventId = a.event_id.parse().expect("event id <p>-<ms>-<seq>");
        let last = last_event.entry(a.user.clone()).or_insert(id);
        if id.entry > last.entry {
            *last = id;
        }
        let top = partition_last.entry(id.partition).or_insert(id.entry);
        *top = (*top).max(id.entry);
    }

    let probe = redis.clone();
    eventually(
        Duration::from_secs(120),
        "the workers to drain every partition",
        || {
            let mut probe = probe.clone();
            async move { backlog(&mut probe, P).await == 0 }
        },
    )
    .await;
    eprintln!("drained after {:?}", started.elapsed());
    let store = store.connect().await;
    let totals = store_totals(store.as_ref(), P).await;
    assert_eq!(totals.len(), expected.len());
    assert!(
        totals == expected,
        "store totals differ from the accepted sums"
    );
    assert!(
        board(&mut redis, P).await == expected,
        "the partition sets differ from the accepted sums"
    );
    let want_top = top_of(&expected, 10);
    let probe = redis.clone();
    eventually(
        Duration::from_secs(30),
        "the merger to publish the exact global top",
        || {
            let (mut probe, want_top) = (probe.clone(), want_top.clone());
            async move {
                snapshot(&mut probe)
                    .await
                    .is_some_and(|s| rows(&s) == want_top)
            }
        },
    )
    .await;

    // In order: every user's wm is their last accepted event, every partition's hw its last entry.
    let partitioner = Partitioner::new(P);
    for partition in partitioner.all() {
        let users: Vec<&str> = last_event
            .keys()
            .map(String::as_str)
            .filter(|u| partitioner.partition_of(u) == partition)
            .collect();
        let read = store.read(partition, &users).await.expect("read wm");
        assert_eq!(read.users.len(), users.len(), "partition {partition}");
        for record in &read.users {
            let last = last_event[&record.user_id];
            assert_eq!(last.partition, partition, "{}", record.user_id);
            assert_eq!(
                record.wm,
                Some(Watermark::new(1, last.entry)),
                "{}'s wm is not their last accepted event",
                record.user_id
            );
        }
        assert_eq!(
            read.hw,
            partition_last
                .get(&partition)
                .map(|entry| Watermark::new(1, *entry)),
            "partition {partition}'s hw is not its last accepted entry"
        );
    }
    eprintln!("checked after {:?}", started.elapsed());
    for worker in &mut workers {
        assert!(worker.is_running(), "{}", worker.output_tail(20));
    }
}
