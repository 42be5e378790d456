//! Fan-out, side by side: the SSE server and nginx + nchan, each in its own process(es), read by the same
//! raw TCP clients in this process, sent the same message (a real top-10 snapshot). At 1,000, 5,000 and
//! 10,000 clients: server RSS per connection (growth over the idle baseline ÷ clients), the time until a
//! client / every client has each new version (p50, p99 over several rounds), server CPU seconds per 1,000
//! deliveries (`/proc/<pid>/stat`), and this process's own CPU (the clients), to show they are not the
//! bottleneck. nchan is measured only when installed (`make bench-peers`); otherwise the table says so.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use scoreboard_shared::redis::keys;
use scoreboard_shared::snapshot::{Entry, Snapshot};
use scoreboard_testkit::{RedisServer, free_port};
use tokio::process::Child;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::client::{Arrival, follow_from};
use super::nchan::Nchan;
use super::{SECRET, rss_kib, spawn_sse, token_for, wait_port};

const LEVELS: [usize; 3] = [1_000, 5_000, 10_000];
const VERSIONS_PER_LEVEL: u64 = 20;
const CONNECT_PARALLELISM: usize = 256;
/// Clients connect from 127.0.0.2 … 127.0.0.41, each with its own ephemeral ports.
const SOURCE_ADDRESSES: u32 = 40;
/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

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

/// One server under test and how to publish to it.
enum Target {
    Ours {
        child: Child,
        port: u16,
        redis: MultiplexedConnection,
        _server: RedisServer,
    },
    Nchan(Nchan),
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Self::Ours { .. } => "scoreboard-sse",
            Self::Nchan(_) => "nginx+nchan",
        }
    }

    /// Where subscribers connect.
    fn port(&self) -> u16 {
        match self {
            Self::Ours { port, .. } => *port,
            Self::Nchan(nchan) => nchan.port,
        }
    }

    fn pids(&self) -> Vec<u32> {
        match self {
            Self::Ours { child, .. } => child.id().into_iter().collect(),
            Self::Nchan(nchan) => nchan.pids(),
        }
    }

    async fn publish(&mut self, version: u64) -> anyhow::Result<()> {
        let json = serde_json::to_string(&snapshot(version))?;
        match self {
            Self::Ours { redis, .. } => {
                let _: () = redis::pipe()
                    .atomic()
                    .set(keys::TOP, &json)
                    .ignore()
                    .publish(keys::EVENTS_CHANNEL, &json)
                    .ignore()
                    .query_async(redis)
                    .await?;
            }
            Self::Nchan(nchan) => nchan.publish(&json).await?,
        }
        Ok(())
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
struct Row {
    server: &'static str,
    clients: usize,
    rss_mib: f64,
    kib_per_conn: f64,
    deliver_p50: f64,
    deliver_p99: f64,
    all_p50: f64,
    all_p99: f64,
    server_cpu_per_1k: f64,
    client_cpu_per_1k: f64,
    client_busy: f64,
}

pub async fn run() -> anyhow::Result<()> {
    println!(
        "message: a top-10 snapshot, {} bytes of JSON",
        serde_json::to_string(&snapshot(1))?.len()
    );
    println!(
        "{:<15} {:>7} {:>8} {:>9} {:>11} {:>11} {:>11} {:>11} {:>12} {:>12} {:>11}",
        "server",
        "clients",
        "RSS MiB",
        "KiB/conn",
        "deliver p50",
        "deliver p99",
        "all p50",
        "all p99",
        "srv CPU/1k",
        "cli CPU/1k",
        "client busy"
    );
    let ours = measure(start_ours().await?).await?;
    let peer = match Nchan::start().await? {
        Some(nchan) => Some(measure(Target::Nchan(nchan)).await?),
        None => {
            println!("nchan: not installed, run make bench-peers");
            None
        }
    };
    if let Some(peer) = peer {
        println!(
            "\nside by side (floors: ≤ 8 KiB per stream at 10,000; every-client p99 ≤ nchan's):"
        );
        for (a, b) in ours.iter().zip(&peer) {
            println!(
                "{:>7} clients: RSS/conn {:.1} vs {:.1} KiB; every client p50 {:.1} vs {:.1} ms, p99 {:.1} vs {:.1} ms ({}); CPU/1k deliveries {:.3} vs {:.3} s",
                a.clients,
                a.kib_per_conn,
                b.kib_per_conn,
                a.all_p50,
                b.all_p50,
                a.all_p99,
                b.all_p99,
                if a.all_p99 <= b.all_p99 {
                    "ours ≤ nchan"
                } else {
                    "ours > nchan"
                },
                a.server_cpu_per_1k,
                b.server_cpu_per_1k,
            );
        }
    }
    Ok(())
}

async fn start_ours() -> anyhow::Result<Target> {
    let server = RedisServer::start();
    let mut redis = server.connection().await;
    let _: () = redis
        .set(keys::TOP, serde_json::to_string(&snapshot(1))?)
        .await?;
    let port = free_port();
    let child = spawn_sse(&[
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("REDIS_URL", server.url()),
        ("JWT_SECRET", SECRET.to_owned()),
        ("SSE_MAX_CONNECTIONS", "20000".to_owned()),
        ("SSE_MAX_CONNECTIONS_PER_USER", "20000".to_owned()),
    ])?;
    wait_port(port, Duration::from_secs(30)).await?;
    Ok(Target::Ours {
        child,
        port,
        redis,
        _server: server,
    })
}

/// Every level for one server; prints each row as it is measured.
async fn measure(mut target: Target) -> anyhow::Result<Vec<Row>> {
    let port = target.port();
    // Version 1 is the board a client gets on connect (nchan: the message it holds).
    let mut version = 1u64;
    if matches!(target, Target::Nchan(_)) {
        target.publish(version).await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // subscribed, {sb}:top read, worker up
    let pids = target.pids();
    let baseline = rss_sum(&pids)?;

    let (tx, mut rx) = mpsc::unbounded_channel::<Arrival>();
    let token = token_for("bench-viewer");
    let gate = std::sync::Arc::new(Semaphore::new(CONNECT_PARALLELISM));
    let mut clients: Vec<JoinHandle<()>> = Vec::with_capacity(LEVELS[LEVELS.len() - 1]);
    let mut ready: HashSet<u32> = HashSet::new();
    let mut rows = Vec::new();
    for level in LEVELS {
        for id in clients.len()..level {
            let permit = gate.clone().acquire_owned().await?;
            let (tx, token) = (tx.clone(), token.clone());
            let source = IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                0,
                2 + (id as u32 % SOURCE_ADDRESSES) as u8,
            ));
            clients.push(tokio::spawn(async move {
                let _ = follow_from(source, port, token, id as u32, tx, Some(permit)).await;
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while ready.len() < level {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(a)) => {
                    ready.insert(a.client);
                }
                _ => anyhow::bail!(
                    "{}: only {} of {level} clients connected",
                    target.name(),
                    ready.len()
                ),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss = rss_sum(&pids)?;

        let mut deliver = Histogram::<u64>::new(3)?;
        let mut all_reached = Histogram::<u64>::new(3)?;
        let (server_cpu0, client_cpu0, wall0) = (
            cpu_sum(&pids)?,
            cpu_sum(&[std::process::id()])?,
            Instant::now(),
        );
        for _ in 0..VERSIONS_PER_LEVEL {
            version += 1;
            let started = Instant::now();
            target.publish(version).await?;
            let mut got = 0usize;
            let mut last = Duration::ZERO;
            let deadline = started + Duration::from_secs(30);
            while got < level {
                let left = deadline.saturating_duration_since(Instant::now());
                let Ok(Some(a)) = tokio::time::timeout(left, rx.recv()).await else {
                    anyhow::bail!(
                        "{} version {version}: only {got} of {level} clients got it",
                        target.name()
                    );
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
        let wall = wall0.elapsed().as_secs_f64();
        let thousands = (level as f64 * VERSIONS_PER_LEVEL as f64) / 1000.0;
        let client_cpu = cpu_sum(&[std::process::id()])? - client_cpu0;
        let row = Row {
            server: target.name(),
            clients: level,
            rss_mib: rss as f64 / 1024.0,
            kib_per_conn: rss.saturating_sub(baseline) as f64 / level as f64,
            deliver_p50: ms(deliver.value_at_quantile(0.5)),
            deliver_p99: ms(deliver.value_at_quantile(0.99)),
            all_p50: ms(all_reached.value_at_quantile(0.5)),
            all_p99: ms(all_reached.value_at_quantile(0.99)),
            server_cpu_per_1k: (cpu_sum(&pids)? - server_cpu0) / thousands,
            client_cpu_per_1k: client_cpu / thousands,
            client_busy: client_cpu / wall,
        };
        print_row(&row);
        rows.push(row);
    }
    for client in &clients {
        client.abort();
    }
    drop(target);
    tokio::time::sleep(Duration::from_secs(1)).await; // sockets closed before the next server
    Ok(rows)
}

fn print_row(r: &Row) {
    println!(
        "{:<15} {:>7} {:>8.1} {:>9.2} {:>9.2}ms {:>9.2}ms {:>9.2}ms {:>9.2}ms {:>11.3}s {:>11.3}s {:>10.0}%",
        r.server,
        r.clients,
        r.rss_mib,
        r.kib_per_conn,
        r.deliver_p50,
        r.deliver_p99,
        r.all_p50,
        r.all_p99,
        r.server_cpu_per_1k,
        r.client_cpu_per_1k,
        r.client_busy * 100.0
    );
}

fn rss_sum(pids: &[u32]) -> anyhow::Result<u64> {
    pids.iter().map(|pid| rss_kib(*pid)).sum()
}

/// User + system CPU seconds of `pids` (fields 14 and 15 of `/proc/<pid>/stat`).
fn cpu_sum(pids: &[u32]) -> anyhow::Result<f64> {
    let mut ticks = 0u64;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The command name may hold spaces: fields are counted after its closing parenthesis.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        // `after` starts at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
        for i in [11, 12] {
            ticks += fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(ticks as f64 / TICKS_PER_SEC)
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}
