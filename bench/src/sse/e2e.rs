//! End-to-end latency at a steady 1,000 updates/s: the real update handler (in process; the Lambda's code
//! without the emulator's HTTP hop) answers `202`, the worker (child process) commits and publishes, the
//! SSE server (child process) pushes, and raw SSE clients here see the new score.
//!
//! Ten users, so every update changes the top 10 and is published. Each user's updates are sequential, so
//! the n-th accepted update of a user is delivered by the first snapshot showing that user at score ≥ n.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use lambda_http::Body;
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

pub async fn run() -> anyhow::Result<()> {
    let redis = RedisServer::start();
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
    let service = Arc::new(UpdateService::from_env(&Env::from_pairs(env))?);

    let (tx, mut rx) = mpsc::unbounded_channel::<Arrival>();
    for client in 0..CLIENTS {
        let tx = tx.clone();
        let token = token_for(&format!("viewer-{client}"));
        tokio::spawn(async move {
            let _ = follow(sse_port, token, client, true, tx, None).await;
        });
    }
    drop(tx);
    // Every client got its first snapshot: the pipeline is live.
    let mut ready = std::collections::HashSet::new();
    while ready.len() < CLIENTS as usize {
        let a = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await?
            .ok_or_else(|| anyhow::anyhow!("SSE clients ended early"))?;
        ready.insert(a.client);
    }

    // Arrivals: per user, (score, first time any... each client saw it) — one series per client.
    let collector = tokio::spawn(async move {
        let mut seen: HashMap<(u32, String), Vec<(u64, Instant)>> = HashMap::new();
        let mut versions = std::collections::HashSet::new();
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
        let service = service.clone();
        senders.push(tokio::spawn(async move {
            send_steadily(&service, &format!("user-{user:02}"), started).await
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
    // Give the last updates time to arrive, then stop the clients by stopping the server.
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(_sse);
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
    service: &UpdateService,
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
        let request = http::Request::builder()
            .method("POST")
            .uri("https://bench.lambda-url.local/api/v1/scores/update")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(r#"{"scoreIncrement":1}"#))?;
        let response = service.handle(request).await;
        if response.status() == 202 {
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
