//! End-to-end latency at a steady 1,000 updates/s, measured twice in one run: (a) the real update handler
//! in process (the Lambda's code without the emulator's HTTP hop) with the worker and the SSE server as
//! child processes, and (b) the whole stack of the end-to-end tests (`scoreboard_e2e::Stack`): the update
//! function under the Lambda emulator (`cargo lambda watch`), called over HTTP, the worker and the SSE
//! server binaries of this profile. In both, Redis runs AOF `appendfsync always` (the durability §5.4 asks
//! of a Redis without replicas), the update's `202` is timed at the sender and raw SSE clients here see
//! the new score.
//!
//! Ten users, so every update changes the top 10 and is published. Each user's updates are sequential, so
//! the n-th accepted update of a user is delivered by the first snapshot showing that user at score ≥ n.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use lambda_http::Body;
use scoreboard_e2e::{DURABLE_REDIS, Stack, StackOptions};
use scoreboard_shared::config::Env;
use scoreboard_shared::snapshot::Snapshot;
use scoreboard_testkit::{RedisServer, free_port};
use tokio::sync::mpsc;
use update::UpdateService;

use super::client::{Arrival, follow};
use super::{SECRET, spawn_sse, spawn_worker, start_mongo, token_for, wait_port};

const USERS: usize = 10;
const RATE_PER_USER: u64 = 100; // 10 × 100 = 1,000 updates/s
const RUN: Duration = Duration::from_secs(12);
const WARM_UP: Duration = Duration::from_secs(2);
const CLIENTS: u32 = 20;
const LIMITS: [(&str, &str); 2] = [("RATE_LIMIT_PER_SEC", "150"), ("RATE_LIMIT_BURST", "50")];
/// The last updates' time to reach the clients once sending stops.
const SETTLE: Duration = Duration::from_secs(2);
/// The profile this binary (and so the emulated function) is built with.
const PROFILE: &str = if cfg!(debug_assertions) {
    "dev"
} else {
    "bench-release"
};
/// Bound on one update request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs both paths, or only `path` (`in-process` or `emulator`).
pub async fn run(path: Option<&str>) -> anyhow::Result<()> {
    anyhow::ensure!(
        matches!(path, None | Some("in-process" | "emulator")),
        "unknown path {path:?}; try: in-process, emulator"
    );
    if path != Some("emulator") {
        println!("-- (a) the update handler in process; worker and SSE server as child processes");
        in_process().await?;
    }
    if path == Some("in-process") {
        return Ok(());
    }
    println!(
        "-- (b) the update function under the Lambda emulator (cargo lambda watch, HTTP), worker and SSE \
         server binaries: the end-to-end tests' stack"
    );
    emulated().await
}

/// How an update is sent: straight into the handler, or over HTTP to the emulator.
enum Updater {
    InProcess(Box<UpdateService>),
    Emulator { http: reqwest::Client, url: String },
}

impl Updater {
    /// Sends one `+1` for the bearer of `token`; whether it was accepted (`202`).
    async fn send(&self, token: &str) -> anyhow::Result<bool> {
        const BODY: &str = r#"{"scoreIncrement":1}"#;
        let bearer = format!("Bearer {token}");
        match self {
            Self::InProcess(service) => {
                let request = http::Request::builder()
                    .method("POST")
                    .uri("https://bench.lambda-url.local/api/v1/scores/update")
                    .header("authorization", bearer)
                    .header("content-type", "application/json")
                    .body(Body::from(BODY))?;
                Ok(service.handle(request).await.status() == 202)
            }
            Self::Emulator { http, url } => {
                let response = http
                    .post(url.as_str())
                    .header("authorization", bearer)
                    .header("content-type", "application/json")
                    .body(BODY)
                    .timeout(REQUEST_TIMEOUT)
                    .send()
                    .await?;
                Ok(response.status() == 202)
            }
        }
    }
}

async fn in_process() -> anyhow::Result<()> {
    // The same durability as the stack's: AOF with an fsync before every acknowledgement (§5.4).
    let redis = RedisServer::start_with(&DURABLE_REDIS);
    let dir = tempfile_dir()?;
    let (_mongo, mongo_port) = start_mongo(&dir).await?;

    let worker_port = free_port();
    let mut worker_env = vec![
        ("REDIS_URL", redis.url()),
        ("STORE", "mongodb".to_owned()),
        ("MONGODB_URI", format!("mongodb://127.0.0.1:{mongo_port}")),
        ("MONGODB_DATABASE", "bench_sse".to_owned()),
        ("METRICS_ADDR", format!("127.0.0.1:{worker_port}")),
    ];
    worker_env.extend(LIMITS.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let _worker = spawn_worker(&worker_env)?;
    wait_port(worker_port, Duration::from_secs(30)).await?;

    let sse_port = free_port();
    let _sse = spawn_sse(&[
        ("BIND_ADDR", format!("127.0.0.1:{sse_port}")),
        ("REDIS_URL", redis.url()),
        ("JWT_SECRET", SECRET.to_owned()),
    ])?;
    wait_port(sse_port, Duration::from_secs(30)).await?;

    let mut env = vec![
        ("REDIS_URL", redis.url()),
        ("JWT_SECRET", SECRET.to_owned()),
    ];
    env.extend(LIMITS.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let service = UpdateService::from_env(&Env::from_pairs(env))?;
    measure(sse_port, Arc::new(Updater::InProcess(Box::new(service)))).await
}

async fn emulated() -> anyhow::Result<()> {
    let limits: Vec<(String, String)> = LIMITS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let stack = Stack::start(StackOptions {
        jwt_secret: Some(SECRET.to_owned()),
        functions_env: limits.clone(),
        worker_env: limits,
        // One instance per sender, as Lambda would run them, built like this binary.
        functions_concurrency: Some(USERS as u16),
        functions_profile: Some(PROFILE.to_owned()),
        ..StackOptions::default()
    })
    .await;
    let sse_port: u16 = stack
        .sse_base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("the stack's SSE port")?;
    let updater = Updater::Emulator {
        http: reqwest::Client::new(),
        url: stack.update_url(),
    };
    measure(sse_port, Arc::new(updater)).await
}

/// Follows the SSE server at `sse_port` with [`CLIENTS`] raw clients, sends [`USERS`] × [`RATE_PER_USER`]
/// updates/s for [`RUN`] through `updater`, and prints the 202 → event latency.
async fn measure(sse_port: u16, updater: Arc<Updater>) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Arrival>();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let tx = tx.clone();
        let token = token_for(&format!("viewer-{client}"));
        clients.push(tokio::spawn(async move {
            let _ = follow(sse_port, token, client, true, tx, None).await;
        }));
    }
    drop(tx);
    // Every client got its first snapshot: the pipeline is live.
    let mut ready = HashSet::new();
    while ready.len() < CLIENTS as usize {
        let a = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await?
            .ok_or_else(|| anyhow::anyhow!("SSE clients ended early"))?;
        ready.insert(a.client);
    }

    // Per (client, user): the scores that client saw and when.
    let collector = tokio::spawn(async move {
        let mut seen: HashMap<(u32, String), Vec<(u64, Instant)>> = HashMap::new();
        let mut versions = HashSet::new();
        while let Some(a) = rx.recv().await {
            versions.insert(a.version);
            let Some(data) = a.data else { continue };
            let Ok(snapshot) = serde_json::from_str::<Snapshot>(&data) else {
                continue;
            };
            for entry in snapshot.entries {
                seen.entry((a.client, entry.user_id))
                    .or_default()
                    .push((entry.score, a.at));
            }
        }
        (seen, versions.len())
    });

    let started = Instant::now();
    let mut senders = Vec::new();
    for user in 0..USERS {
        let updater = updater.clone();
        senders.push(tokio::spawn(async move {
            send_steadily(&updater, &format!("user-{user:02}"), started).await
        }));
    }
    let mut accepted: HashMap<String, Vec<Instant>> = HashMap::new();
    let mut refused = 0usize;
    for (user, sender) in senders.into_iter().enumerate() {
        let (times, failed) = sender.await??;
        refused += failed;
        accepted.insert(format!("user-{user:02}"), times);
    }
    let sent_for = started.elapsed();
    // Give the last updates time to arrive, then stop the clients (which closes the channel).
    tokio::time::sleep(SETTLE).await;
    for client in &clients {
        client.abort();
    }
    let (seen, versions) = tokio::time::timeout(Duration::from_secs(10), collector).await??;
    let mut latency = Histogram::<u64>::new(3)?;
    let mut missing = 0usize;
    for ((_, user), series) in &seen {
        let Some(times) = accepted.get(user) else {
            continue;
        };
        for (n, t202) in times.iter().enumerate() {
            if t202.duration_since(started) < WARM_UP {
                continue;
            }
            let score = n as u64 + 1;
            match series.iter().find(|(s, _)| *s >= score) {
                Some((_, at)) => {
                    latency.record(at.saturating_duration_since(*t202).as_micros() as u64)?
                }
                None => missing += 1,
            }
        }
    }
    let total: usize = accepted.values().map(Vec::len).sum();
    println!(
        "sent {total} accepted updates in {:.1} s ({:.0}/s, {refused} refused); {CLIENTS} SSE clients; {versions} snapshot versions seen",
        sent_for.as_secs_f64(),
        total as f64 / sent_for.as_secs_f64()
    );
    println!(
        "202 → SSE event (after {}s warm-up, per client and update): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} samples, {missing} never seen",
        WARM_UP.as_secs(),
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        latency.max() as f64 / 1000.0,
        latency.len(),
    );
    Ok(())
}

/// One user's updates at `RATE_PER_USER`/s for `RUN`, each awaited; returns the time of each `202`.
async fn send_steadily(
    updater: &Updater,
    user: &str,
    started: Instant,
) -> anyhow::Result<(Vec<Instant>, usize)> {
    let token = token_for(user);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE_PER_USER));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut times = Vec::new();
    let mut refused = 0;
    while started.elapsed() < RUN {
        tick.tick().await;
        if updater.send(&token).await? {
            times.push(Instant::now());
        } else {
            refused += 1;
        }
    }
    Ok((times, refused))
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("scoreboard-bench-sse-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
