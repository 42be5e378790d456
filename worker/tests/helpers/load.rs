//! Load through the real update handler and the exactness checks after it, shared by the chaos test
//! (standalone and cluster) and the cluster failover test: a seeded workload of 2,000 users with
//! Zipf(1.1) popularity, sent by concurrent producers that count what was accepted, and the check that
//! the store, the partition sets and `{sb}:top` equal the accepted sums exactly and that every user's
//! `wm` is their last accepted event and every partition's `hw` its last accepted entry (in order).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scoreboard_shared::partition::{EventId, Partitioner, StreamId};
use scoreboard_shared::redis::RedisConn;
use scoreboard_worker::store::Watermark;
use tokio::task::JoinHandle;

use super::{
    Accepted, StoreUnderTest, UpdateProducer, backlog, board, eventually, rows, snapshot,
    store_totals, top_of,
};

/// Distinct users of a workload.
pub const USERS: usize = 2_000;
const ZIPF_EXPONENT: f64 = 1.1;

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

/// `updates` (user, increment 1..=100) pairs over [`USERS`] users with Zipf(1.1) popularity.
pub fn zipf_workload(updates: usize, rng: &mut StdRng) -> Vec<(String, u64)> {
    let zipf = Zipf::new(USERS, ZIPF_EXPONENT);
    (0..updates)
        .map(|_| {
            let user = format!("zipf-{:04}", zipf.sample(rng));
            (user, rng.random_range(1..=100))
        })
        .collect()
}

/// A seeded RNG (each scenario names its seed, so a failure replays).
pub fn seeded(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Producers sending a workload through the real update handler, counting accepted updates as they go.
#[derive(Debug)]
pub struct Producers {
    tasks: Vec<JoinHandle<Vec<Accepted>>>,
    accepted: Arc<AtomicUsize>,
}

impl Producers {
    /// Starts `producers` tasks, each sending every `producers`-th update of `workload` in order (so a
    /// user's updates stay in order per task) as the update function on `redis` with `partitions`.
    pub fn start(
        redis: RedisConn,
        partitions: u16,
        workload: Vec<(String, u64)>,
        producers: usize,
    ) -> Self {
        let producer = Arc::new(UpdateProducer::new(redis, partitions));
        let workload = Arc::new(workload);
        let accepted = Arc::new(AtomicUsize::new(0));
        let tasks = (0..producers)
            .map(|t| {
                let (producer, workload, count) =
                    (producer.clone(), workload.clone(), accepted.clone());
                tokio::spawn(async move {
                    let mut accepted = Vec::new();
                    for (user, inc) in workload.iter().skip(t).step_by(producers) {
                        if let Some(ok) = producer.send(user, *inc).await {
                            accepted.push(ok);
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    accepted
                })
            })
            .collect();
        Self { tasks, accepted }
    }

    /// How many updates were accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Whether every producer has sent its share.
    pub fn finished(&self) -> bool {
        self.tasks.iter().all(JoinHandle::is_finished)
    }

    /// Waits for the producers; every accepted update.
    pub async fn join(self) -> Vec<Accepted> {
        let mut accepted = Vec::new();
        for task in self.tasks {
            accepted.extend(task.await.expect("producer task"));
        }
        accepted
    }
}

/// Waits (up to `drain_bound`) until every partition is drained, then asserts exactness: the store's
/// totals, the partition sets and (within 30 s) the merger's global top equal the sums of `accepted`;
/// every user's `wm` is their last accepted event and every partition's `hw` its last accepted entry.
pub async fn assert_exact_and_in_order(
    redis: &RedisConn,
    store: &StoreUnderTest,
    partitions: u16,
    accepted: &[Accepted],
    drain_bound: Duration,
) {
    let mut expected = BTreeMap::<String, u64>::new();
    let mut last_event = BTreeMap::<String, EventId>::new();
    let mut partition_last = BTreeMap::<u16, StreamId>::new();
    for a in accepted {
        *expected.entry(a.user.clone()).or_default() += a.increment;
        let id: EventId = a.event_id.parse().expect("event id <p>-<ms>-<seq>");
        let last = last_event.entry(a.user.clone()).or_insert(id);
        if id.entry > last.entry {
            *last = id;
        }
        let top = partition_last.entry(id.partition).or_insert(id.entry);
        *top = (*top).max(id.entry);
    }

    eventually(drain_bound, "the workers to drain every partition", || {
        let mut probe = redis.clone();
        async move { backlog(&mut probe, partitions).await == 0 }
    })
    .await;
    let store = store.connect().await;
    let totals = store_totals(store.as_ref(), partitions).await;
    assert_eq!(totals.len(), expected.len());
    let differing: Vec<_> = expected
        .iter()
        .filter(|(user, sum)| totals.get(*user) != Some(sum))
        .map(|(user, sum)| (user, *sum, totals.get(user).copied()))
        .take(5)
        .collect();
    assert!(
        differing.is_empty(),
        "store totals differ from the accepted sums (user, accepted, stored): {differing:?}"
    );
    assert!(
        board(&mut redis.clone(), partitions).await == expected,
        "the partition sets differ from the accepted sums"
    );
    let want_top = top_of(&expected, 10);
    eventually(
        Duration::from_secs(30),
        "the merger to publish the exact global top",
        || {
            let (mut probe, want_top) = (redis.clone(), want_top.clone());
            async move {
                snapshot(&mut probe)
                    .await
                    .is_some_and(|s| rows(&s) == want_top)
            }
        },
    )
    .await;

    // In order: every user's wm is their last accepted event, every partition's hw its last entry.
    let partitioner = Partitioner::new(partitions);
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
}
