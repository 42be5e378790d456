//! `UPDATE_WAIT_REPLICAS` (§5.1): the `WAIT` pipelined behind the update script. A `202` means the
//! replicas have the update; short of them the answer is `503 not-replicated` with the event id, the update
//! stays queued (it is not rolled back), and a retry with the same `Idempotency-Key` confirms it without
//! counting it twice. Replicas are paused with `SIGSTOP`, so they stop acknowledging without a
//! disconnection. On a cluster the `WAIT` must run on the user's partition's master: pausing that master's
//! replica refuses its users and no one else's.

use std::time::Duration;

use scoreboard_shared::partition::Partitioner;
use scoreboard_shared::redis::keys::PartitionKeys;
use scoreboard_testkit::{RedisCluster, RedisServer};

use crate::helpers::*;

const BODY: &str = r#"{"scoreIncrement":1}"#;
/// A `WAIT` returns as soon as the replica acknowledges, so the timeout only bounds the paused cases: long
/// enough for a running replica to answer on a loaded CI machine (300 ms was not, once), and below the
/// Redis response timeout (1 s), past which the answer would be `unavailable`.
const WAIT: [(&str, &str); 2] = [
    ("UPDATE_WAIT_REPLICAS", "1"),
    ("UPDATE_WAIT_TIMEOUT_MS", "800"),
];

fn update(user: &str, key: &str) -> lambda_http::Request {
    event(
        "POST",
        "/api/v1/scores/update",
        &[
            ("authorization", &format!("Bearer {}", hs_token(user))),
            ("content-type", "application/json"),
            ("idempotency-key", key),
        ],
        Some(BODY),
    )
}

/// The PID of the Redis server on `port` (read before pausing it: a paused server answers nothing).
async fn pid_of(port: u16) -> String {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut node(port).await)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .map(|pid| pid.trim().to_owned())
        .expect("process_id")
}

/// Pauses (`-STOP`) or resumes (`-CONT`) the process `pid`.
fn signal(pid: &str, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

async fn node(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The ports of the replicas `master_port` reports as online, once there are `count`.
async fn online_replicas(master_port: u16, count: usize) -> Vec<u16> {
    let mut master = node(master_port).await;
    for _ in 0..200 {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut master)
            .await
            .unwrap();
        let ports: Vec<u16> = info
            .lines()
            .filter(|line| line.starts_with("slave") && line.contains("state=online"))
            .filter_map(|line| {
                line.split(',')
                    .find_map(|kv| kv.strip_prefix("port="))
                    .and_then(|p| p.parse().ok())
            })
            .collect();
        if ports.len() >= count && acknowledging(&mut master, count).await {
            return ports;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the master on {master_port} has no {count} online replicas");
}

/// Whether `count` replicas acknowledge a write within 200 ms (`WAIT` on a write of its own): a replica
/// reported online may not acknowledge yet right after its sync. A cluster master refuses the probe's key
/// unless it owns its slot (`MOVED`); it is then taken at its word, as before.
async fn acknowledging(master: &mut redis::aio::MultiplexedConnection, count: usize) -> bool {
    let probe: redis::RedisResult<((), usize)> = redis::pipe()
        .cmd("SET")
        .arg("replica-probe")
        .arg("1")
        .cmd("WAIT")
        .arg(count)
        .arg(200)
        .query_async(master)
        .await;
    probe.map_or(true, |(_, acknowledged)| acknowledged >= count)
}

async fn stream_len_on(port: u16, user: &str) -> usize {
    let partition = Partitioner::new(PARTITIONS).partition_of(user);
    redis::cmd("XLEN")
        .arg(PartitionKeys::new(partition).updates())
        .query_async(&mut node(port).await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_202_waits_for_the_replica_and_without_it_the_update_is_queued_once_and_confirmed_on_retry()
 {
    let master = RedisServer::start();
    let replica =
        RedisServer::start_with(&["--replicaof", "127.0.0.1", &master.port().to_string()]);
    online_replicas(master.port(), 1).await;
    let service = update_service(&master, &[("JWT_SECRET", SECRET)], &WAIT);

    // Replicated: 202, and the replica already has the entry.
    let first = answer(service.handle(update("ann", "k1")).await);
    assert_eq!(first.status, 202, "{}", first.json);
    assert_eq!(stream_len_on(replica.port(), "ann").await, 1);

    // The replica stops acknowledging: 503 not-replicated with the event id; the update is queued.
    let replica_pid = pid_of(replica.port()).await;
    signal(&replica_pid, "-STOP");
    let refused = answer(service.handle(update("ann", "k2")).await);
    let retried = answer(service.handle(update("ann", "k2")).await);
    // Another instance (its own connection, which has written nothing yet) retries: its `WAIT` must still
    // cover the original append. Redis 7.0 starts a new connection's offset at the master's; versions
    // differ, so the replay writes before the `WAIT` to hold on every one.
    let other_instance = update_service(&master, &[("JWT_SECRET", SECRET)], &WAIT);
    let retried_elsewhere = answer(other_instance.handle(update("ann", "k2")).await);
    signal(&replica_pid, "-CONT");
    assert_eq!(refused.status, 503, "{}", refused.json);
    assert_eq!(refused.problem_type(), "/problems/not-replicated");
    assert_eq!(refused.header("retry-after"), Some("1"));
    let detail = refused.json["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        detail.contains("0 of 1 replicas"),
        "says how many replicas confirmed: {detail}"
    );
    assert_eq!(retried.status, 503, "{}", retried.json);
    assert_eq!(
        retried_elsewhere.status, 503,
        "a replay on a fresh connection: {}",
        retried_elsewhere.json
    );
    assert_eq!(
        stream_len_on(master.port(), "ann").await,
        2,
        "queued once, not rolled back, not doubled by the retry"
    );

    // Once the replica is back, the same key confirms the same event: 202, replayed, nothing added.
    let confirmed = answer(service.handle(update("ann", "k2")).await);
    assert_eq!(confirmed.status, 202, "{}", confirmed.json);
    assert_eq!(confirmed.header("idempotent-replayed"), Some("true"));
    let event_id = confirmed.json["eventId"].as_str().unwrap().to_owned();
    assert!(
        detail.contains(&event_id),
        "the 503 named the event the retry confirmed ({event_id}): {detail}"
    );
    assert_eq!(stream_len_on(master.port(), "ann").await, 2);
    assert_eq!(stream_len_on(replica.port(), "ann").await, 2);
}

#[tokio::test]
async fn without_replica_wait_nothing_waits_for_replicas() {
    // No replica at all: the default answers 202 at once.
    let master = RedisServer::start();
    let service = update_service(&master, &[("JWT_SECRET", SECRET)], &[]);
    let answer = answer(service.handle(update("bob", "k1")).await);
    assert_eq!(answer.status, 202, "{}", answer.json);
}

#[tokio::test]
async fn on_a_cluster_the_wait_runs_on_the_users_master() {
    let cluster = RedisCluster::start_with_replicas(3);
    let service = service_on_cluster(&cluster);
    let partitioner = Partitioner::new(PARTITIONS);
    let master_of = |user: &str| {
        let key = PartitionKeys::new(partitioner.partition_of(user)).updates();
        cluster.master_of_slot(cluster.key_slot(&key))
    };
    // Two users on different masters.
    let ann = "ann".to_owned();
    let other = (0..1_000)
        .map(|n| format!("user-{n}"))
        .find(|u| master_of(u) != master_of(&ann))
        .expect("a user on another master");
    let paused = online_replicas(master_of(&ann), 1).await[0];
    online_replicas(master_of(&other), 1).await;

    let paused = pid_of(paused).await;
    signal(&paused, "-STOP");
    let refused = answer(service.handle(update(&ann, "k1")).await);
    let accepted = answer(service.handle(update(&other, "k1")).await);
    signal(&paused, "-CONT");

    assert_eq!(refused.status, 503, "{}", refused.json);
    assert_eq!(refused.problem_type(), "/problems/not-replicated");
    assert_eq!(accepted.status, 202, "{}", accepted.json);
    let confirmed = answer(service.handle(update(&ann, "k1")).await);
    assert_eq!(confirmed.status, 202, "{}", confirmed.json);
    assert_eq!(stream_len_on(master_of(&ann), &ann).await, 1);
}

#[tokio::test]
async fn invalid_replica_wait_settings_refuse_to_start() {
    for (var, value) in [
        ("UPDATE_WAIT_REPLICAS", "17"),
        ("UPDATE_WAIT_TIMEOUT_MS", "0"),
    ] {
        let env = scoreboard_shared::config::Env::from_pairs([
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("JWT_SECRET", SECRET),
            (var, value),
        ]);
        let error = update::UpdateService::from_env(&env).expect_err(var);
        assert!(error.to_string().contains(var), "{var}: {error}");
    }
}

fn service_on_cluster(cluster: &RedisCluster) -> update::UpdateService {
    let url = cluster.url();
    let env = scoreboard_shared::config::Env::from_pairs(
        [
            ("REDIS_URL", url.as_str()),
            ("REDIS_CLUSTER", "true"),
            ("JWT_SECRET", SECRET),
        ]
        .into_iter()
        .chain(WAIT),
    );
    update::UpdateService::from_env(&env).expect("valid test config")
}
