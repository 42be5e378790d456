//! Connections per process with RSS per connection, and the time a new version takes to reach every client.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use redis::AsyncCommands;
use scoreboard_shared::redis::keys;
use scoreboard_shared::snapshot::{Entry, Snapshot};
use scoreboard_testkit::{RedisServer, free_port};
use tokio::sync::{Semaphore, mpsc};

use super::client::{Arrival, follow};
use super::{SECRET, rss_kib, spawn_sse, token_for, wait_port};

const LEVELS: [usize; 3] = [1_000, 5_000, 10_000];
const VERSIONS_PER_LEVEL: u64 = 20;
const CONNECT_PARALLELISM: usize = 256;

fn snapshot(version: u64) -> Snapshot {
    Snapshot {
        version,
        updated_at: "2026-11-28T12:00:00.000Z".into(),
        entries: (1..=10)
            .map(|rank| Entry {
                rank,
                user_id: format!("user-{rank:04}"),
                name: format!("Player number {rank}"),
                score: 1_000_000 + version * 10 - u64::from(rank),
            })
            .collect(),
    }
}

pub async fn run() -> anyhow::Result<()> {
    let redis = RedisServer::start();
    let mut conn = redis.connection().await;
    let _: () = conn
        .set(keys::TOP, serde_json::to_string(&snapshot(1))?)
        .await?;
    let port = free_port();
    let server = spawn_sse(&[
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("REDIS_URL", redis.url()),
        ("JWT_SECRET", SECRET.to_owned()),
        ("SSE_MAX_CONNECTIONS", "20000".to_owned()),
        ("SSE_MAX_CONNECTIONS_PER_USER", "20000".to_owned()),
    ])?;
    let pid = server.id().expect("server pid");
    wait_port(port, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_millis(300)).await; // let it subscribe and read {sb}:top
    let baseline = rss_kib(pid)?;
    println!(
        "server RSS with no clients: {:.1} MiB",
        baseline as f64 / 1024.0
    );
    println!(
        "{:>8} {:>10} {:>12} {:>14} {:>14} {:>16} {:>16}",
        "clients",
        "RSS MiB",
        "KiB/conn",
        "deliver p50",
        "deliver p99",
        "all-reached p50",
        "all-reached p99"
    );

    let (tx, mut rx) = mpsc::unbounded_channel::<Arrival>();
    let token = token_for("bench-viewer");
    let gate = std::sync::Arc::new(Semaphore::new(CONNECT_PARALLELISM));
    let mut connected = 0usize;
    let mut version = 1u64;
    let mut ready: HashSet<u32> = HashSet::new();
    for level in LEVELS {
        // Connect up to `level` clients, a bounded number at a time.
        for id in connected..level {
            let permit = gate.clone().acquire_owned().await?;
            let (tx, token) = (tx.clone(), token.clone());
            tokio::spawn(async move {
                let _ = follow(port, token, id as u32, false, tx, Some(permit)).await;
            });
        }
        connected = level;
        let deadline = Instant::now() + Duration::from_secs(120);
        while ready.len() < level {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(a)) => {
                    ready.insert(a.client);
                }
                _ => anyhow::bail!("only {} of {level} clients connected", ready.len()),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss = rss_kib(pid)?;

        let mut deliver = Histogram::<u64>::new(3)?;
        let mut all_reached = Histogram::<u64>::new(3)?;
        for _ in 0..VERSIONS_PER_LEVEL {
            version += 1;
            let json = serde_json::to_string(&snapshot(version))?;
            let started = Instant::now();
            let _: () = redis::pipe()
                .atomic()
                .set(keys::TOP, &json)
                .ignore()
                .publish(keys::EVENTS_CHANNEL, &json)
                .ignore()
                .query_async(&mut conn)
                .await?;
            let mut got = 0usize;
            let mut last = Duration::ZERO;
            let deadline = started + Duration::from_secs(30);
            while got < level {
                let left = deadline.saturating_duration_since(Instant::now());
                let Ok(Some(a)) = tokio::time::timeout(left, rx.recv()).await else {
                    anyhow::bail!("version {version}: only {got} of {level} clients got it");
                };
                if a.version != version {
                    continue;
                }
                got += 1;
                let took = a.at.saturating_duration_since(started);
                last = last.max(took);
                deliver.record(took.as_micros() as u64)?;
            }
            all_reached.record(last.as_micros() as u64)?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!(
            "{:>8} {:>10.1} {:>12.1} {:>12.2}ms {:>12.2}ms {:>14.2}ms {:>14.2}ms",
            level,
            rss as f64 / 1024.0,
            (rss.saturating_sub(baseline)) as f64 / level as f64,
            ms(deliver.value_at_quantile(0.5)),
            ms(deliver.value_at_quantile(0.99)),
            ms(all_reached.value_at_quantile(0.5)),
            ms(all_reached.value_at_quantile(0.99)),
        );
    }
    drop(server);
    Ok(())
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}
