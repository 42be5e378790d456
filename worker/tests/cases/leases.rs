//! Leases between worker processes (`docs/design.md` §5.2, §5.7), on MongoDB (the store plays no part
//! in who owns what): a `kill -9`ed worker's partitions resume within one lease TTL plus a scan or two
//! and the events sent meanwhile are applied; the merger role fails over within a TTL plus a poll; a
//! worker that joins gets its share; a worker stopped with SIGTERM exits 0 and hands its partitions
//! back at once, so they resume well before their TTL.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use scoreboard_shared::redis::RedisConn;
use scoreboard_testkit::RedisServer;

use crate::helpers::*;

const P: u16 = 8;

/// Two scans (a scan is a quarter TTL) and generous slack for a loaded two-core machine.
fn failover_bound(ttl: Duration) -> Duration {
    ttl + ttl / 2 + Duration::from_secs(2)
}

/// Waits until the partitions are held by exactly `expected` (worker id → partitions held), as
/// predicate over the holders; returns how long it took.
async fn until_holders(
    redis: &RedisConn,
    timeout: Duration,
    what: &str,
    check: impl Fn(&[Option<String>]) -> bool,
) -> Duration {
    let started = Instant::now();
    let check = &check;
    eventually(timeout, what, || {
        let mut probe = redis.clone();
        async move { check(&lease_holders(&mut probe, P).await) }
    })
    .await;
    started.elapsed()
}

fn all_held_by(holders: &[Option<String>], id: &str) -> bool {
    held_by(holders, id) == holders.len()
}

/// Both workers hold some partitions and every partition is held.
fn shared(holders: &[Option<String>]) -> bool {
    holders.iter().all(Option::is_some) && held_by(holders, "w1") > 0 && held_by(holders, "w2") > 0
}

/// One user in each partition.
fn one_user_per_partition(prefix: &str) -> Vec<String> {
    (0..P)
        .map(|partition| users_in(partition, P, prefix, 1).remove(0))
        .collect()
}

#[tokio::test]
async fn a_killed_workers_partitions_resume_within_a_ttl_and_two_scans() {
    let store = StoreUnderTest::mongo();
    let server = RedisServer::start();
    let mut redis = redis_manager(&server.url());
    let ttl = Duration::from_millis(2_000);
    let mut w1 = WorkerProcess::start(&worker_env(&store, &server.url(), "w1", P, &[]));
    let _w2 = WorkerProcess::start(&worker_env(&store, &server.url(), "w2", P, &[]));
    until_holders(
        &redis,
        Duration::from_secs(30),
        "both workers to hold partitions",
        shared,
    )
    .await;
    let orphaned = held_by(&lease_holders(&mut redis, P).await, "w1");

    w1.kill9();
    let mut expected = BTreeMap::new();
    for (i, user) in one_user_per_partition("after-kill-").iter().enumerate() {
        xadd_event(&mut redis, P, user, None, i as u64 + 1).await;
        expected.insert(user.clone(), i as u64 + 1);
    }
    let took = until_holders(
        &redis,
        Duration::from_secs(30),
        "w2 to hold every partition",
        |h| all_held_by(h, "w2"),
    )
    .await;
    eprintln!("{orphaned} partitions of the killed worker resumed after {took:?}");
    assert!(
        took < failover_bound(ttl),
        "failover took {took:?}, more than the TTL plus two scans plus slack"
    );
    let store = store.connect().await;
    eventually(
        Duration::from_secs(20),
        "the events sent after the kill to be applied",
        || {
            let (store, expected) = (store.clone(), expected.clone());
            async move { store_totals(store.as_ref(), P).await == expected }
        },
    )
    .await;
}

#[tokio::test]
async fn the_merger_role_fails_over_within_a_ttl_and_a_poll() {
    let store = StoreUnderTest::mongo();
    let server = RedisServer::start();
    let mut redis = redis_manager(&server.url());
    let ttl = Duration::from_millis(2_000);
    let poll = Duration::from_millis(1_000);
    let mut workers = BTreeMap::new();
    for id in ["w1", "w2"] {
        workers.insert(
            id,
            WorkerProcess::start(&worker_env(
                &store,
                &server.url(),
                id,
                P,
                &[("MERGE_POLL_MS", "1000")],
            )),
        );
    }
    until_holders(
        &redis,
        Duration::from_secs(30),
        "both workers to hold partitions",
        shared,
    )
    .await;
    let probe = redis.clone();
    eventually(
        Duration::from_secs(20),
        "the merger to publish a first global top",
        || {
            let mut probe = probe.clone();
            async move { snapshot(&mut probe).await.is_some() }
        },
    )
    .await;
    let leader = merger_holder(&mut redis)
        .await
        .expect("a merger holds the lease");
    let survivor = if leader == "w1" { "w2" } else { "w1" };
    // A user whose partition the survivor owns, so only the merger has to fail over.
    let holders = lease_holders(&mut redis, P).await;
    let partition = (0..P)
        .find(|&p| holders[usize::from(p)].as_deref() == Some(survivor))
        .expect("the survivor owns a partition");
    let user = users_in(partition, P, "merged-", 1).remove(0);

    workers
        .get_mut(leader.as_str())
        .expect("the leader is one of ours")
        .kill9();
    let killed = Instant::now();
    xadd_event(&mut redis, P, &user, None, 1_000_000).await;
    let probe = redis.clone();
    let bound = ttl + poll + Duration::from_secs(2);
    eventually(bound, "the global top to show the update", || {
        let (mut probe, user) = (probe.clone(), user.clone());
        async move {
            snapshot(&mut probe)
                .await
                .is_some_and(|s| rows(&s).first() == Some(&(user, 1_000_000)))
        }
    })
    .await;
    eprintln!(
        "the global top showed the update {:?} after the kill",
        killed.elapsed()
    );
    assert_eq!(merger_holder(&mut redis).await.as_deref(), Some(survivor));
}

#[tokio::test]
async fn a_joining_worker_gets_its_share_within_a_few_lease_periods() {
    let store = StoreUnderTest::mongo();
    let server = RedisServer::start();
    let mut redis = redis_manager(&server.url());
    let ttl = Duration::from_millis(2_000);
    let _w1 = WorkerProcess::start(&worker_env(&store, &server.url(), "w1", P, &[]));
    until_holders(
        &redis,
        Duration::from_secs(30),
        "w1 to hold every partition",
        |h| all_held_by(h, "w1"),
    )
    .await;

    let _w2 = WorkerProcess::start(&worker_env(&store, &server.url(), "w2", P, &[]));
    let balanced = |h: &[Option<String>]| {
        let half = usize::from(P) / 2;
        h.iter().all(Option::is_some)
            && (half - 1..=half + 1).contains(&held_by(h, "w1"))
            && (half - 1..=half + 1).contains(&held_by(h, "w2"))
    };
    let took = until_holders(&redis, 5 * ttl, "each worker to hold about half", balanced).await;
    eprintln!("balanced {took:?} after the second worker started");
    // And it stays balanced through the next lease period.
    let until = Instant::now() + ttl;
    while Instant::now() < until {
        let holders = lease_holders(&mut redis, P).await;
        let (w1, w2) = (held_by(&holders, "w1"), held_by(&holders, "w2"));
        assert!(w1 >= 3 && w2 >= 3, "unbalanced again: w1 {w1}, w2 {w2}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing was lost in the hand-over.
    let mut expected = BTreeMap::new();
    for user in one_user_per_partition("joined-") {
        xadd_event(&mut redis, P, &user, None, 7).await;
        expected.insert(user, 7);
    }
    let store = store.connect().await;
    eventually(Duration::from_secs(20), "the events to be applied", || {
        let (store, expected) = (store.clone(), expected.clone());
        async move { store_totals(store.as_ref(), P).await == expected }
    })
    .await;
}

#[tokio::test]
async fn sigterm_exits_zero_and_releases_the_leases_at_once() {
    let store = StoreUnderTest::mongo();
    let server = RedisServer::start();
    let mut redis = redis_manager(&server.url());
    // The default TTL: the survivor must not have to wait for it.
    let ttl = Duration::from_millis(10_000);
    let extra = [("LEASE_TTL_MS", "10000")];
    let mut w1 = WorkerProcess::start(&worker_env(&store, &server.url(), "w1", P, &extra));
    until_holders(
        &redis,
        Duration::from_secs(30),
        "w1 to hold every partition",
        |h| all_held_by(h, "w1"),
    )
    .await;
    let _w2 = WorkerProcess::start(&worker_env(&store, &server.url(), "w2", P, &extra));
    let probe = redis.clone();
    eventually(Duration::from_secs(20), "w2 to register as live", || {
        let mut probe = probe.clone();
        async move {
            let live: Vec<String> = redis::cmd("ZRANGE")
                .arg(scoreboard_shared::redis::keys::WORKERS)
                .arg(0)
                .arg(-1)
                .query_async(&mut probe)
                .await
                .expect("read workers");
            live.iter().any(|w| w == "w2")
        }
    })
    .await;

    let asked = Instant::now();
    w1.terminate();
    let (status, _) = w1
        .exit_within(Duration::from_secs(60))
        .await
        .expect("w1 exits after SIGTERM");
    let exited = asked.elapsed();
    assert!(status.success(), "exit {status:?}:\n{}", w1.output_tail(30));
    let holders = lease_holders(&mut redis, P).await;
    assert_eq!(
        held_by(&holders, "w1"),
        0,
        "w1 released every lease before exiting: {holders:?}"
    );
    let output = w1.output();
    assert!(output.contains("partition released"), "{output}");
    until_holders(&redis, ttl, "w2 to hold every partition", |h| {
        all_held_by(h, "w2")
    })
    .await;
    let took = asked.elapsed();
    eprintln!("w1 exited {exited:?} after SIGTERM; w2 held everything after {took:?}");
    assert!(
        took < ttl / 2,
        "w2 took {took:?}: the leases were not handed back at once"
    );
}
