//! The worker on a real Redis Cluster (3 masters, `REDIS_CLUSTER=true`, `docs/design.md` §6): the chaos
//! scenario (`kill -9` of a random worker about every second during the load) is exact and in order on
//! both stores with the 16 partitions spread over all three masters; a graceful failover of the master
//! holding the most partitions (with `REDIS_MIN_REPLICAS=1`), or moving their slots to another master,
//! during the load loses and doubles nothing while the owners of the moved partitions carry on under the
//! same leases; the merger follows every master through sharded `SSUBSCRIBE`; and the `migrate`, `dlq
//! list|replay` and `rebuild` subcommands work on a cluster; a worker reaching a TLS cluster only through
//! its TLS ports drains every master.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use scoreboard_shared::partition::{EventId, StreamId};
use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::keys::PartitionKeys;

use super::chaos::{P, chaos_scenario};
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_chaos_on_a_three_master_cluster_is_exact_and_in_order() {
    let redis = RedisUnderTest::cluster();
    assert_partitions_on_every_master(redis.as_cluster().expect("a cluster"), P);
    chaos_scenario(StoreUnderTest::mongo(), redis, 20_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_chaos_on_a_three_master_cluster_is_exact_and_in_order() {
    let redis = RedisUnderTest::cluster();
    assert_partitions_on_every_master(redis.as_cluster().expect("a cluster"), P);
    chaos_scenario(StoreUnderTest::dynamodb(), redis, DYNAMODB_CHAOS_UPDATES).await;
}

/// DynamoDB Local takes one HTTP call per user of a batch (as in the standalone chaos test).
const DYNAMODB_CHAOS_UPDATES: usize = 20_000;

const HANDOVER_UPDATES: usize = 9_000;
const HANDOVER_PRODUCERS: usize = 8;
const HANDOVER_WORKERS: usize = 3;
/// Nobody is killed here, so the lease can be long enough that a store write slowed by the load (one to
/// two seconds per batch on nx-27017 with two shared cores) never costs an owner its partition: an owner
/// that still holds the same lease after the handover is the owner that carried on.
const HANDOVER_LEASE_TTL_MS: &str = "10000";

/// How the partitions of one master move to another while updates flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handover {
    /// `CLUSTER FAILOVER` on the master's replica, with `REDIS_MIN_REPLICAS=1` (graceful: the replica
    /// catches up before it takes over, so nothing acknowledged is lost).
    Failover,
    /// Every slot of the master's partitions migrated to the master with the fewest partitions, as
    /// `redis-cli --cluster reshard` does (`IMPORTING`/`MIGRATING`, `MIGRATE`, `SETSLOT … NODE`).
    SlotMove,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_a_graceful_failover_during_load_loses_and_doubles_nothing_and_owners_continue() {
    handover_during_load_scenario(Handover::Failover).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_moving_partition_slots_during_load_loses_and_doubles_nothing_and_owners_continue() {
    handover_during_load_scenario(Handover::SlotMove).await;
}

/// Three workers drain updates sent through the update handler; a third of the way in, the partitions of
/// the master serving the most of them move (`handover`). The moved partitions then commit updates sent
/// after the move under the same leases, and at the end everything accepted is applied exactly once.
async fn handover_during_load_scenario(handover: Handover) {
    let store = StoreUnderTest::mongo();
    let redis = match handover {
        Handover::Failover => RedisUnderTest::cluster_with_replicas(),
        Handover::SlotMove => RedisUnderTest::cluster(),
    };
    let cluster = redis.as_cluster().expect("a cluster");
    assert_partitions_on_every_master(cluster, P);
    let connection = redis.connection();
    let mut extra = redis.extra_env();
    extra.push(("LEASE_TTL_MS", HANDOVER_LEASE_TTL_MS));
    if handover == Handover::Failover {
        extra.push(("REDIS_MIN_REPLICAS", "1"));
    }
    let mut workers: Vec<WorkerProcess> = (0..HANDOVER_WORKERS)
        .map(|i| {
            let id = format!("handover-{i}");
            WorkerProcess::start(&worker_env(&store, &redis.url(), &id, P, &extra))
        })
        .collect();
    let share = usize::from(P).div_ceil(HANDOVER_WORKERS);
    eventually(
        Duration::from_secs(120),
        "every partition to be owned, each worker holding its share",
        || {
            let mut probe = connection.clone();
            async move {
                let holders = lease_holders(&mut probe, P).await;
                holders.iter().all(Option::is_some)
                    && (0..HANDOVER_WORKERS)
                        .all(|i| held_by(&holders, &format!("handover-{i}")) <= share)
            }
        },
    )
    .await;

    let started = Instant::now();
    let workload = zipf_workload(HANDOVER_UPDATES, &mut seeded(0xfa11_0be2));
    let producers = Producers::start(connection.clone(), P, workload, HANDOVER_PRODUCERS);
    eventually(
        Duration::from_secs(180),
        "a third of the updates to be accepted",
        || {
            let accepted = producers.accepted();
            async move { accepted >= HANDOVER_UPDATES / 3 }
        },
    )
    .await;

    // The master serving the most partitions hands them over.
    let mut per_master = BTreeMap::<u16, Vec<u16>>::new();
    for (partition, port) in partition_masters(cluster, P) {
        per_master.entry(port).or_default().push(partition);
    }
    let (old_master, moved) = per_master
        .iter()
        .max_by_key(|(_, partitions)| partitions.len())
        .map(|(port, partitions)| (*port, partitions.clone()))
        .expect("a master");
    let leases_before = lease_values(&mut connection.clone(), P).await;
    let handover_started = Instant::now();
    let new_master = match handover {
        Handover::Failover => tokio::task::block_in_place(|| cluster.failover(old_master)),
        Handover::SlotMove => {
            let (&target, _) = per_master
                .iter()
                .min_by_key(|(_, partitions)| partitions.len())
                .expect("a master");
            let slots: std::collections::BTreeSet<u16> = moved
                .iter()
                .map(|p| cluster.key_slot(&PartitionKeys::new(*p).updates()))
                .collect();
            for slot in slots {
                tokio::task::block_in_place(|| cluster.move_slot(slot, target));
            }
            target
        }
    };
    let accepted_at_handover = producers.accepted();
    eprintln!(
        "{handover:?}: partitions {moved:?} from {old_master} to {new_master} in {:?}; {accepted_at_handover} accepted by then",
        handover_started.elapsed()
    );
    let masters_after = partition_masters(cluster, P);
    for partition in &moved {
        assert_eq!(
            masters_after[partition], new_master,
            "partition {partition}"
        );
    }
    assert!(
        !producers.finished(),
        "the load ended before the handover did: nothing would show that the owners continue"
    );

    // Owners continue: an update to each moved partition sent after the handover is committed there,
    // by the owner that held the partition before it (the same lease: worker, token and epoch).
    let probe = UpdateProducer::new(connection.clone(), P);
    let mut after_handover = Vec::new();
    for &partition in &moved {
        let user = users_in(partition, P, "after-handover-", 1).remove(0);
        after_handover.push(send_within(&probe, &user, Duration::from_secs(30)).await);
    }
    let sent: Vec<EventId> = after_handover
        .iter()
        .map(|a| a.event_id.parse().expect("event id"))
        .collect();
    eventually(
        Duration::from_secs(120),
        "the moved partitions to commit the updates sent after the handover",
        || {
            let (mut probe, sent) = (connection.clone(), sent.clone());
            async move {
                for event in &sent {
                    let committed = cursor(&mut probe, event.partition)
                        .await
                        .and_then(|c| c.parse::<StreamId>().ok());
                    if committed.is_none_or(|c| c < event.entry) {
                        return false;
                    }
                }
                true
            }
        },
    )
    .await;
    eprintln!(
        "the moved partitions committed updates sent after the handover {:?} after it began",
        handover_started.elapsed()
    );
    let leases_after = lease_values(&mut connection.clone(), P).await;
    for &partition in &moved {
        let p = usize::from(partition);
        assert_eq!(
            leases_after[p], leases_before[p],
            "partition {partition} changed owner across the handover"
        );
    }

    eventually(Duration::from_secs(300), "the producers to finish", || {
        let finished = producers.finished();
        async move { finished }
    })
    .await;
    let mut accepted = producers.join().await;
    eprintln!(
        "{} of {HANDOVER_UPDATES} accepted ({} after the handover) in {:?}",
        accepted.len(),
        accepted.len() - accepted_at_handover,
        started.elapsed()
    );
    assert!(
        accepted.len() >= HANDOVER_UPDATES * 95 / 100,
        "only {} of {HANDOVER_UPDATES} accepted",
        accepted.len()
    );
    accepted.extend(after_handover);
    // Every partition was loaded, so every master was until the handover (asserted at the start).
    let loaded: std::collections::BTreeSet<u16> = accepted
        .iter()
        .map(|a| a.event_id.parse::<EventId>().expect("event id").partition)
        .collect();
    assert_eq!(
        loaded.len(),
        usize::from(P),
        "partitions with accepted updates"
    );
    eprintln!(
        "commands per master (port, total): {:?}",
        cluster.commands_per_master()
    );
    assert_exact_and_in_order(&connection, &store, P, &accepted, Duration::from_secs(120)).await;
    eprintln!("checked after {:?}", started.elapsed());
    for worker in &mut workers {
        assert!(worker.is_running(), "{}", worker.output_tail(20));
    }
}

/// Sends one update of 1 as `user`, again while the handler refuses (at most every 100 ms, for at most
/// `bound`: right after a handover a request can meet the old topology).
async fn send_within(producer: &UpdateProducer, user: &str, bound: Duration) -> Accepted {
    let until = Instant::now() + bound;
    loop {
        if let Some(accepted) = producer.send(user, 1).await {
            return accepted;
        }
        assert!(
            Instant::now() < until,
            "no update as {user} accepted within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A partition served by each master, ascending by port.
fn a_partition_per_master(cluster: &scoreboard_testkit::RedisCluster) -> Vec<(u16, u16)> {
    let mut first = BTreeMap::<u16, u16>::new();
    for (partition, port) in partition_masters(cluster, P) {
        first.entry(port).or_insert(partition);
    }
    first.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merger_follows_partitions_on_every_master_through_sharded_notifications() {
    let store = StoreUnderTest::mongo();
    let redis = RedisUnderTest::cluster();
    let cluster = redis.as_cluster().expect("a cluster");
    let mut connection = redis.connection();
    // The poll is ten minutes away: only `SPUBLISH`ed `{sb:p}:changed` notices can move the top.
    let mut extra = redis.extra_env();
    extra.push(("MERGE_POLL_MS", "600000"));
    let mut worker = WorkerProcess::start(&worker_env(&store, &redis.url(), "notified", P, &extra));
    eventually(
        Duration::from_secs(60),
        "the first global top (every partition built)",
        || {
            let mut probe = connection.clone();
            async move { snapshot(&mut probe).await.is_some() }
        },
    )
    .await;

    for (round, (port, partition)) in a_partition_per_master(cluster).into_iter().enumerate() {
        let user = users_in(partition, P, "notified-", 1).remove(0);
        let score = 1_000 * (round as u64 + 1);
        let sent = Instant::now();
        xadd_event(&mut connection, P, &user, Some("N"), score).await;
        eventually(
            Duration::from_secs(10),
            "the new leader in the global top",
            || {
                let (mut probe, user) = (connection.clone(), user.clone());
                async move {
                    snapshot(&mut probe)
                        .await
                        .is_some_and(|s| rows(&s).first() == Some(&(user, score)))
                }
            },
        )
        .await;
        eprintln!(
            "partition {partition} on {port}: at the top of the global board {:?} after its update",
            sent.elapsed()
        );
    }
    assert!(worker.is_running(), "{}", worker.output_tail(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_migrate_dlq_and_rebuild_subcommands_work_on_a_cluster() {
    let store = StoreUnderTest::mongo();
    let redis = RedisUnderTest::cluster();
    let cluster = redis.as_cluster().expect("a cluster");
    let mut connection = redis.connection();
    let url = redis.url();
    let partitions = P.to_string();
    let mut env = store.env();
    env.extend(env_pairs(&[
        ("REDIS_URL", &url),
        ("REDIS_CLUSTER", "true"),
        ("PARTITIONS", &partitions),
    ]));

    let migrated = run_subcommand(&["migrate"], &env, Duration::from_secs(60)).await;
    migrated.assert_success("worker migrate");
    assert!(
        migrated.stdout.contains("migrated 0 records"),
        "{}",
        migrated.stdout
    );

    let _worker = WorkerProcess::start(&worker_env(
        &store,
        &url,
        "subcommands",
        P,
        &redis.extra_env(),
    ));
    let mut expected = BTreeMap::<String, u64>::new();
    for partition in 0..P {
        for user in users_in(partition, P, "sub-", 2) {
            xadd_event(&mut connection, P, &user, Some("S"), 7).await;
            expected.insert(user, 7);
        }
    }
    settled(&connection, &store, &expected).await;

    // One dead letter in a partition of each master, as the commit script writes them.
    let letters: Vec<(u16, String)> = a_partition_per_master(cluster)
        .into_iter()
        .map(|(_, partition)| (partition, users_in(partition, P, "dead-", 1).remove(0)))
        .collect();
    for (partition, user) in &letters {
        let fields = serde_json::json!({"v": "1", "user": user, "inc": "5", "ts": "1", "req": "r"});
        let _: String = redis::cmd("XADD")
            .arg(PartitionKeys::new(*partition).dlq())
            .arg("*")
            .arg("event")
            .arg(format!("{partition}-1-0"))
            .arg("user")
            .arg(user)
            .arg("reason")
            .arg("store refused")
            .arg("error")
            .arg("test")
            .arg("fields")
            .arg(fields.to_string())
            .query_async(&mut connection)
            .await
            .expect("xadd dead letter");
        expected.insert(user.clone(), 5);
    }
    let listed = run_subcommand(&["dlq", "list"], &env, Duration::from_secs(30)).await;
    listed.assert_success("dlq list");
    let mut listed_partitions: Vec<u64> = listed
        .stdout
        .lines()
        .map(|line| {
            let letter: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            letter["partition"].as_u64().expect("partition")
        })
        .collect();
    listed_partitions.sort_unstable();
    let mut want: Vec<u64> = letters.iter().map(|(p, _)| u64::from(*p)).collect();
    want.sort_unstable();
    assert_eq!(listed_partitions, want, "{}", listed.stdout);

    let replayed = run_subcommand(&["dlq", "replay"], &env, Duration::from_secs(30)).await;
    replayed.assert_success("dlq replay");
    assert!(
        replayed
            .stdout
            .contains(&format!("replayed {} dead letters (0 had", letters.len())),
        "{}",
        replayed.stdout
    );
    settled(&connection, &store, &expected).await;
    assert!(
        scoreboard_worker::dlq::list(&mut connection, 0..P)
            .await
            .expect("list dead letters")
            .is_empty(),
        "replayed letters leave the DLQ"
    );

    // A drifted set in every partition; `rebuild` has each owner rebuild its partition from the store.
    for partition in 0..P {
        let user = users_in(partition, P, "sub-", 1).remove(0);
        let _: () = connection
            .zadd(PartitionKeys::new(partition).leaderboard(), &user, 1)
            .await
            .expect("drift");
    }
    let rebuilt = run_subcommand(&["rebuild"], &env, Duration::from_secs(90)).await;
    rebuilt.assert_success("worker rebuild");
    assert!(
        rebuilt.stdout.contains(&format!("rebuilt {P} partitions")),
        "{}",
        rebuilt.stdout
    );
    assert_eq!(
        board(&mut connection, P).await,
        expected,
        "rebuilt from the store"
    );
}

/// Waits until the store and the partition sets both equal `expected`.
async fn settled(redis: &RedisConn, store: &StoreUnderTest, expected: &BTreeMap<String, u64>) {
    let store = store.connect().await;
    eventually(
        Duration::from_secs(60),
        "the store and the partition sets to equal the sums sent",
        || {
            let (mut probe, store) = (redis.clone(), store.clone());
            async move {
                store_totals(store.as_ref(), P).await == *expected
                    && board(&mut probe, P).await == *expected
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_drains_every_master_of_a_tls_cluster() {
    // The worker reaches the nodes only through their TLS ports (`rediss://` seeds, a private CA); the test
    // itself reads and writes through the plaintext ports.
    let store = StoreUnderTest::mongo();
    let cluster = scoreboard_testkit::RedisCluster::start_tls(3);
    let ca = scoreboard_testkit::fixture_path(scoreboard_testkit::RedisCluster::TLS_CA)
        .display()
        .to_string();
    let mut connection = redis_manager_for(&cluster.url(), true);
    let extra = [
        ("REDIS_CLUSTER", "true"),
        ("REDIS_CA_CERT_FILE", ca.as_str()),
    ];
    let mut worker =
        WorkerProcess::start(&worker_env(&store, &cluster.tls_url(), "tls", P, &extra));

    let mut expected = Vec::new();
    for (round, (_, partition)) in a_partition_per_master(&cluster).into_iter().enumerate() {
        let user = users_in(partition, P, "tls-", 1).remove(0);
        let score = 100 * (round as u64 + 1);
        xadd_event(&mut connection, P, &user, Some("T"), score).await;
        expected.push((user, score));
    }
    expected.sort_by_key(|(_, score)| std::cmp::Reverse(*score));
    eventually(
        Duration::from_secs(60),
        "an update on every master applied and in the global top",
        || {
            let (mut probe, expected) = (connection.clone(), expected.clone());
            async move {
                snapshot(&mut probe)
                    .await
                    .is_some_and(|s| rows(&s) == expected)
            }
        },
    )
    .await;
    assert!(worker.is_running(), "{}", worker.output_tail(20));
}
