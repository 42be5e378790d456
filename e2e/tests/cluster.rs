//! Slot migration under load, end to end on the 3-master Redis Cluster stack: while updates flow through
//! the update function (under `cargo lambda watch`), the slots of 4 of the 16 partitions and the `{sb}`
//! slot move to another master one after another, the way `redis-cli --cluster reshard` moves them
//! (`IMPORTING`/`MIGRATING`, `MIGRATE` of the keys while clients are redirected, `SETSLOT … NODE`).
//! Nothing accepted is lost or doubled (every update carries an `Idempotency-Key` and is retried with it
//! until it is accepted, so the store must hold each exactly once), every owner keeps applying, and an SSE
//! client connected throughout receives, after each move, a version published after it within 2 s (after
//! the `{sb}` move, once the SSE server has resubscribed on the server's `sunsubscribe`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use mongodb::bson::{Bson, Document};
use redis::AsyncCommands;
use redis::cluster_async::ClusterConnection;
use scoreboard_e2e::proc::eventually;
use scoreboard_e2e::{SseClient, Stack, StackOptions};
use scoreboard_shared::partition::Partitioner;
use scoreboard_testkit::RedisCluster;

/// `PARTITIONS` of the stack (the default of every component).
const PARTITIONS: u16 = 16;
/// Users per partition, so every partition (moved or not) sees updates.
const USERS_PER_PARTITION: usize = 2;
/// Concurrent senders; each owns a fixed set of users, so one user's updates are sent in order.
const SENDERS: usize = 4;
/// Each sender sends at most one update per this interval (≤ 100 updates/s in all): load the pipeline
/// without saturating a shared 2-core machine, so the 2 s SSE bound measures recovery, not a backlog.
const PACE: Duration = Duration::from_millis(40);
/// How long one update may take to be accepted, retries included (a move redirects, never refuses).
const ACCEPT_WITHIN: Duration = Duration::from_secs(30);
/// After a move, a version published after it reaches the SSE client within this.
const SSE_WITHIN: Duration = Duration::from_secs(2);
/// Updates accepted between two moves (in all, and into the next partition to move) before it starts.
const BETWEEN_MOVES: u64 = 30;
const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_slot_moves_under_load_lose_nothing_and_sse_keeps_up() {
    let stack = Stack::start(StackOptions {
        redis_cluster: true,
        // The load is per user far above the default rate limit; refusals are not what is tested here.
        functions_env: vec![
            ("RATE_LIMIT_PER_SEC".to_owned(), "1000".to_owned()),
            ("RATE_LIMIT_BURST".to_owned(), "1000".to_owned()),
        ],
        ..StackOptions::default()
    })
    .await;
    let cluster = stack.cluster().expect("a cluster stack");
    let mut redis = cluster.connection().await;
    let partitioner = Partitioner::new(PARTITIONS);
    let users = users(partitioner);

    // The moves: 4 partitions' slots, each to the next master, and the global `{sb}` slot in the middle.
    let moved: Vec<u16> = (0..4).collect();
    let mut moves: Vec<(String, Option<u16>)> = moved
        .iter()
        .map(|p| (format!("{{sb:{p}}}"), Some(*p)))
        .collect();
    moves.insert(2, ("{sb}".to_owned(), None));

    let viewer = stack.token("viewer", "Viewer");
    let mut sse = SseClient::connect(&stack.http, &stack.events_url(), &viewer).await;
    sse.next_snapshot(T).await.expect("snapshot on connect");

    let load = Load::start(&stack, &users, partitioner);
    for (tag, partition) in &moves {
        load.wait_for_more(&stack, *partition).await;
        let slot = cluster.key_slot(tag);
        let from = cluster.master_of_slot(slot);
        let to = next_master(cluster, from);
        let keys = keys_in_slot(from, slot);
        assert!(keys > 0, "{tag} has keys to migrate");
        let reconnects = sse_pubsub_reconnects(&stack).await;
        let started = Instant::now();
        tokio::task::block_in_place(|| cluster.move_slot(slot, to));
        let moved_in = started.elapsed();
        assert_eq!(cluster.master_of_slot(slot), to, "{tag} moved");

        // A version published after the move reaches the client connected since the start.
        let before: u64 = redis
            .get::<_, Option<u64>>(scoreboard_shared::redis::keys::VERSION)
            .await
            .expect("GET {sb}:version")
            .unwrap_or(0);
        let waited = Instant::now();
        let seen = newer_version(&mut sse, before, SSE_WITHIN).await;
        assert!(
            seen.is_some(),
            "after moving {tag} (slot {slot}, {from} -> {to}), no version above {before} reached the SSE \
             client within {SSE_WITHIN:?}; logs:\n{}",
            stack.logs()
        );
        eprintln!(
            "moved {tag} (slot {slot}, {keys} keys) {from} -> {to} in {moved_in:?}; SSE saw version {} \
             after {:?}",
            seen.unwrap_or_default(),
            waited.elapsed()
        );
        if partition.is_none() {
            // `{sb}:events` moved with `{sb}`: the server ended the SSE server's sharded subscription
            // (`sunsubscribe`) and the SSE server subscribed again.
            let resubscribed = eventually(Duration::from_secs(10), || async {
                sse_pubsub_reconnects(&stack).await > reconnects
            })
            .await;
            assert!(
                resubscribed,
                "the SSE server did not resubscribe after {tag} moved; logs:\n{}",
                stack.logs()
            );
        }
    }
    let sent = load.stop().await;
    eprintln!(
        "accepted {} updates ({} retries after a 5xx or transport error, {} idempotent replays)",
        sent.accepted_updates, sent.retries, sent.replays
    );

    // Nothing lost or doubled: the store holds exactly the accepted increments, per user.
    let mongo = mongodb::Client::with_uri_str(&stack.mongo_uri)
        .await
        .expect("MongoDB client");
    let deadline = Instant::now() + T;
    let mut stored = store_totals(&mongo, &stack.database).await;
    while stored != sent.totals && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stored = store_totals(&mongo, &stack.database).await;
    }
    assert!(
        stored == sent.totals,
        "store totals differ from the accepted increments:\n{}\nlogs:\n{}",
        diff(&sent.totals, &stored),
        stack.logs()
    );

    // Every owner kept applying: each partition's cursor is at its stream's last entry, nothing
    // dead-lettered, and the moved partitions are still leased.
    for partition in partitioner.all() {
        let keys = scoreboard_shared::redis::keys::PartitionKeys::new(partition);
        let caught_up = eventually(T, || {
            let mut redis = redis.clone();
            let keys = keys.clone();
            async move { cursor_at_end(&mut redis, &keys).await }
        })
        .await;
        assert!(
            caught_up,
            "partition {partition}'s cursor is not at its stream's end"
        );
        let dead: u64 = redis.xlen(keys.dlq()).await.expect("XLEN dlq");
        assert_eq!(dead, 0, "partition {partition} dead-lettered events");
        if moved.contains(&partition) {
            let lease: Option<String> = redis.get(keys.lease()).await.expect("GET lease");
            assert!(lease.is_some(), "moved partition {partition} has an owner");
        }
    }

    // And the SSE client, connected through every move, ends on the exact top 10.
    let mut ranking: Vec<(String, u64)> = sent.totals.clone().into_iter().collect();
    ranking.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranking.truncate(10);
    let deadline = Instant::now() + T;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let message = sse.next_snapshot(remaining).await.unwrap_or_else(|| {
            panic!(
                "the SSE client never saw the final top 10 {ranking:?}; logs:\n{}",
                stack.logs()
            )
        });
        if entries_of(&message.json()) == ranking {
            break;
        }
    }
}

/// `USERS_PER_PARTITION` user ids in every partition.
fn users(partitioner: Partitioner) -> Vec<String> {
    let mut per_partition: HashMap<u16, usize> = HashMap::new();
    let mut users = Vec::new();
    for i in 0..10_000 {
        let user = format!("mover-{i:04}");
        let count = per_partition
            .entry(partitioner.partition_of(&user))
            .or_default();
        if *count < USERS_PER_PARTITION {
            *count += 1;
            users.push(user);
        }
        if users.len() == usize::from(PARTITIONS) * USERS_PER_PARTITION {
            return users;
        }
    }
    panic!("could not find {USERS_PER_PARTITION} users for every partition");
}

/// `CLUSTER COUNTKEYSINSLOT` on the master on `port`.
fn keys_in_slot(port: u16, slot: u16) -> u64 {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("node URL");
    let mut node = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .expect("connect to the slot's master");
    redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(slot)
        .query(&mut node)
        .expect("CLUSTER COUNTKEYSINSLOT")
}

/// The SSE server's `sse_pubsub_reconnects_total` (0 before the first resubscription).
async fn sse_pubsub_reconnects(stack: &Stack) -> u64 {
    let text = stack
        .http
        .get(format!("{}/metrics", stack.sse_metrics_base))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("SSE metrics answer")
        .text()
        .await
        .expect("SSE metrics text");
    text.lines()
        .filter(|line| line.starts_with("sse_pubsub_reconnects_total"))
        .filter_map(|line| line.split_whitespace().last()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The master after `from` in port order (wrapping).
fn next_master(cluster: &RedisCluster, from: u16) -> u16 {
    let masters = cluster.master_ports();
    let at = masters
        .iter()
        .position(|port| *port == from)
        .expect("a master");
    masters[(at + 1) % masters.len()]
}

/// Reads snapshots until one has a version above `before`; its version, or `None` after `limit`.
async fn newer_version(sse: &mut SseClient, before: u64, limit: Duration) -> Option<u64> {
    let deadline = Instant::now() + limit;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let version = sse.next_snapshot(remaining).await?.json()["version"].as_u64()?;
        if version > before {
            return Some(version);
        }
    }
}

/// Whether the partition's cursor is the last id of its stream (or both are absent).
async fn cursor_at_end(
    redis: &mut ClusterConnection,
    keys: &scoreboard_shared::redis::keys::PartitionKeys,
) -> bool {
    let cursor: Option<String> = redis.get(keys.cursor()).await.unwrap_or(None);
    let last: redis::streams::StreamRangeReply =
        match redis.xrevrange_count(keys.updates(), "+", "-", 1).await {
            Ok(reply) => reply,
            Err(_) => return false,
        };
    let last = last.ids.first().map(|entry| entry.id.clone());
    last.is_none() || cursor == last
}

/// Accepted increments of the load, per user.
#[derive(Debug, Default)]
struct Sent {
    totals: HashMap<String, u64>,
    accepted_updates: u64,
    retries: u64,
    replays: u64,
}

/// Senders posting updates through the update function until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
    per_partition: Arc<Vec<AtomicU64>>,
    senders: Vec<tokio::task::JoinHandle<Sent>>,
}

impl Load {
    fn start(stack: &Stack, users: &[String], partitioner: Partitioner) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let per_partition: Arc<Vec<AtomicU64>> =
            Arc::new(partitioner.all().map(|_| AtomicU64::new(0)).collect());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        let senders = (0..SENDERS)
            .map(|sender| {
                let mine: Vec<(String, String, u16)> = users
                    .iter()
                    .skip(sender)
                    .step_by(SENDERS)
                    .map(|user| {
                        let token = stack.token(user, &format!("Mover {user}"));
                        (user.clone(), token, partitioner.partition_of(user))
                    })
                    .collect();
                let sender_state = Sender {
                    id: sender,
                    http: http.clone(),
                    url: stack.update_url(),
                    users: mine,
                    stop: Arc::clone(&stop),
                    accepted: Arc::clone(&accepted),
                    per_partition: Arc::clone(&per_partition),
                };
                tokio::spawn(sender_state.run())
            })
            .collect();
        Self {
            stop,
            accepted,
            per_partition,
            senders,
        }
    }

    /// Waits until `BETWEEN_MOVES` more updates were accepted (and as many into `partition`, if given),
    /// so each move migrates fresh keys while updates flow.
    async fn wait_for_more(&self, stack: &Stack, partition: Option<u16>) {
        let total = self.accepted.load(Ordering::SeqCst);
        let in_partition = |p: u16| self.per_partition[usize::from(p)].load(Ordering::SeqCst);
        let partition_start = partition.map(in_partition);
        let enough = eventually(T, || async {
            self.accepted.load(Ordering::SeqCst) >= total + BETWEEN_MOVES
                && partition
                    .zip(partition_start)
                    .is_none_or(|(p, start)| in_partition(p) >= start + BETWEEN_MOVES / 10)
        })
        .await;
        assert!(
            enough,
            "updates stopped being accepted ({} in all); logs:\n{}",
            self.accepted.load(Ordering::SeqCst),
            stack.logs()
        );
    }

    /// Stops the senders and sums what they had accepted.
    async fn stop(self) -> Sent {
        self.stop.store(true, Ordering::SeqCst);
        let mut sent = Sent::default();
        for sender in self.senders {
            let part = sender.await.expect("a sender panicked");
            for (user, total) in part.totals {
                *sent.totals.entry(user).or_default() += total;
            }
            sent.accepted_updates += part.accepted_updates;
            sent.retries += part.retries;
            sent.replays += part.replays;
        }
        sent
    }
}

/// One sender: its users round-robin, one update at a time, each retried with its key until accepted.
struct Sender {
    id: usize,
    http: reqwest::Client,
    url: String,
    /// (user id, token, partition).
    users: Vec<(String, String, u16)>,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
    per_partition: Arc<Vec<AtomicU64>>,
}

impl Sender {
    async fn run(self) -> Sent {
        let mut sent = Sent::default();
        let mut pace = tokio::time::interval(PACE);
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n: u64 = 0;
        while !self.stop.load(Ordering::SeqCst) {
            pace.tick().await;
            let (user, token, partition) = &self.users[n as usize % self.users.len()];
            let increment = 1 + (n * 7 + self.id as u64 * 13) % 50;
            let key = format!("load-{}-{n}", self.id);
            self.send(token, increment, &key, &mut sent).await;
            *sent.totals.entry(user.clone()).or_default() += increment;
            sent.accepted_updates += 1;
            self.accepted.fetch_add(1, Ordering::SeqCst);
            self.per_partition[usize::from(*partition)].fetch_add(1, Ordering::SeqCst);
            n += 1;
        }
        sent
    }

    /// Posts one update until it is accepted (`202`, first time or replayed); a `5xx` or a transport error
    /// (the outcome unknown) is retried with the same `Idempotency-Key`, so it counts once either way.
    ///
    /// # Panics
    /// On any other answer, or when it is not accepted within `ACCEPT_WITHIN`.
    async fn send(&self, token: &str, increment: u64, key: &str, sent: &mut Sent) {
        let deadline = Instant::now() + ACCEPT_WITHIN;
        let mut last = String::new();
        for attempt in 0..100 {
            if attempt > 0 {
                sent.retries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let answer = self
                .http
                .post(&self.url)
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&serde_json::json!({ "scoreIncrement": increment }))
                .send()
                .await;
            match answer {
                Ok(resp) if resp.status() == 202 => {
                    if resp.headers().contains_key("idempotent-replayed") {
                        sent.replays += 1;
                    }
                    return;
                }
                Ok(resp) if resp.status().is_server_error() => {
                    last = format!(
                        "{} {}",
                        resp.status(),
                        resp.text().await.unwrap_or_default()
                    );
                }
                Ok(resp) => panic!(
                    "update {key} refused: {} {}",
                    resp.status(),
                    resp.text().await.unwrap_or_default()
                ),
                Err(error) => last = error.to_string(),
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        panic!("update {key} not accepted within {ACCEPT_WITHIN:?}; last answer: {last}");
    }
}

/// The user documents' scores (user documents carry their partition `p`; high-water marks do not).
async fn store_totals(mongo: &mongodb::Client, database: &str) -> HashMap<String, u64> {
    let docs: Vec<Document> = match mongo
        .database(database)
        .collection::<Document>("scores")
        .find(mongodb::bson::doc! {"p": {"$exists": true}})
        .await
    {
        Ok(cursor) => cursor.try_collect().await.unwrap_or_default(),
        Err(_) => return HashMap::new(),
    };
    docs.iter()
        .filter_map(|d| Some((d.get_str("_id").ok()?.to_owned(), score_of(d)?)))
        .collect()
}

fn score_of(doc: &Document) -> Option<u64> {
    match doc.get("score")? {
        Bson::Int32(n) => u64::try_from(*n).ok(),
        Bson::Int64(n) => u64::try_from(*n).ok(),
        Bson::Double(n) => Some(*n as u64),
        _ => None,
    }
}

fn entries_of(json: &serde_json::Value) -> Vec<(String, u64)> {
    json["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| Some((e["userId"].as_str()?.to_owned(), e["score"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// The users whose totals differ, as `user: accepted vs stored`.
fn diff(accepted: &HashMap<String, u64>, stored: &HashMap<String, u64>) -> String {
    let users: HashSet<&String> = accepted.keys().chain(stored.keys()).collect();
    let mut lines: Vec<String> = users
        .into_iter()
        .filter(|user| accepted.get(*user) != stored.get(*user))
        .map(|user| {
            format!(
                "  {user}: accepted {:?}, stored {:?}",
                accepted.get(user),
                stored.get(user)
            )
        })
        .collect();
    lines.sort();
    lines.join("\n")
}
