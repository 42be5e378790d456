//! Chaos (issue 9): three worker processes drain updates sent through the real update handler (2,000
//! users, Zipf(1.1) popularity, a seeded RNG) while one random worker is `kill -9`ed and restarted about
//! every second. Afterwards the store's totals, the partition sets and the global top equal the sums of
//! the accepted increments exactly, and no partition was processed out of order: each user's `wm` only
//! moves forward and is the id of the last event applied to them, so it must be the id of their last
//! accepted event, and each partition's `hw` the last accepted id of the partition. The scenario runs
//! on standalone Redis here and on a 3-master cluster in [`super::cluster`].

use std::time::{Duration, Instant};

use rand::Rng;

use crate::helpers::*;

pub(super) const P: u16 = 16;
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
    // Redis itself never crashes here (only workers do), so it runs without AOF: fsyncing every
    // accepted update would make the producers, not the workers, the bottleneck.
    chaos_scenario(
        StoreUnderTest::mongo(),
        RedisUnderTest::standalone(),
        50_000,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_chaos_with_three_workers_and_kills_every_second_is_exact_and_in_order() {
    // DynamoDB Local takes one HTTP call per user of a batch: 10,000 updates keep this test near the
    // MongoDB one's time (about a minute and a half on two shared cores) with the same kill cadence.
    chaos_scenario(
        StoreUnderTest::dynamodb(),
        RedisUnderTest::standalone(),
        10_000,
    )
    .await;
}

/// `updates` sent by 16 producers through the update handler on `redis` while three workers on `store`
/// are killed and restarted about every second; then every exactness and order check.
pub(super) async fn chaos_scenario(store: StoreUnderTest, redis: RedisUnderTest, updates: usize) {
    let connection = redis.connection();
    let mut rng = seeded(0x5c0e_b0a2d);
    let workload = zipf_workload(updates, &mut rng);

    let mut workers: Vec<WorkerProcess> = (0..WORKERS)
        .map(|i| {
            let id = format!("chaos-{i}");
            let extra = redis.extra_env();
            WorkerProcess::start(&worker_env(&store, &redis.url(), &id, P, &extra))
        })
        .collect();

    let started = Instant::now();
    let producers = Producers::start(connection.clone(), P, workload, PRODUCERS);
    let mut kills = 0;
    while kills < MIN_KILLS || !producers.finished() {
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
    let accepted = producers.join().await;
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
    if let Some(cluster) = redis.as_cluster() {
        assert_load_on_every_master(cluster, &accepted);
    }

    assert_exact_and_in_order(&connection, &store, P, &accepted, Duration::from_secs(120)).await;
    eprintln!("checked after {:?}", started.elapsed());
    for worker in &mut workers {
        assert!(worker.is_running(), "{}", worker.output_tail(20));
    }
}

/// Every master of `cluster` serves partitions that received accepted updates; prints how the commands
/// spread over the masters.
pub(super) fn assert_load_on_every_master(
    cluster: &scoreboard_testkit::RedisCluster,
    accepted: &[Accepted],
) {
    let masters = partition_masters(cluster, P);
    let loaded: std::collections::BTreeSet<u16> = accepted
        .iter()
        .map(|a| {
            let id: scoreboard_shared::partition::EventId = a.event_id.parse().expect("event id");
            masters[&id.partition]
        })
        .collect();
    let all: std::collections::BTreeSet<u16> = cluster.master_ports().into_iter().collect();
    assert_eq!(loaded, all, "accepted updates did not reach every master");
    eprintln!(
        "commands per master (port, total): {:?}",
        cluster.commands_per_master()
    );
}
