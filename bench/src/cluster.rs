//! `-- cluster`: the whole pipeline — the update handler in process → 16 partition streams → one worker
//! process (owners + merger) → the SSE server → one SSE client — on standalone Redis and on a local
//! 3-master Redis Cluster, in the same run. Per mode it prints accepted updates/s (32 senders as fast as
//! they go over 2,000 users), drained events/s (until every accepted increment is in the partition sets),
//! 202 → SSE p50/p99 at a steady 1,000 updates/s, each master's share of the commands next to its share
//! of the partitions, server-side µs per script call, and whether any accepted update was lost or
//! doubled. On 2 cores the cluster is not faster (three servers share them); what must hold is that load
//! follows the slots and nothing is lost.
//!
//! The figures go to stderr: the handler in process writes one EMF line per request to stdout, as the
//! Lambda does (`make bench-cluster` discards them).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use lambda_http::Body;
use scoreboard_shared::config::Env;
use scoreboard_shared::partition::Partitioner;
use scoreboard_shared::redis::keys::PartitionKeys;
use scoreboard_shared::snapshot::Snapshot;
use scoreboard_testkit::{RedisCluster, RedisServer, free_port};
use tokio::sync::mpsc;
use update::UpdateService;

use crate::sse::{
    Arrival, SECRET, follow, spawn_sse, spawn_worker, start_mongo, token_for, wait_port,
};

const PARTITIONS: u16 = 16;
const SENDERS: usize = 32;
const USERS: usize = 2_000;
const THROUGHPUT_RUN: Duration = Duration::from_secs(8);
/// The flood stops at this many accepted updates: the MongoDB-protocol test server (nx-27017) applies a
/// few hundred distinct users' documents per second, so a bigger backlog only lengthens the drain.
const FLOOD_CAP: u64 = 12_000;
const HOT_USERS: usize = 10;
const HOT_RATE_PER_USER: u64 = 100; // 10 × 100 = 1,000 updates/s
const LATENCY_RUN: Duration = Duration::from_secs(8);
const WARM_UP: Duration = Duration::from_secs(1);
/// Every hot update lifts its user above everyone from the throughput phase, so each one changes the top.
const HOT_INCREMENT: u64 = 100_000;
const DRAIN_LIMIT: Duration = Duration::from_secs(300);

/// Where the pipeline's Redis runs.
enum Topology {
    Standalone(RedisServer),
    Cluster(RedisCluster),
}

impl Topology {
    fn name(&self) -> &'static str {
        match self {
            Self::Standalone(_) => "standalone",
            Self::Cluster(_) => "3-master cluster",
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Standalone(server) => vec![("REDIS_URL", server.url())],
            Self::Cluster(cluster) => vec![
                ("REDIS_URL", cluster.url()),
                ("REDIS_CLUSTER", "true".to_owned()),
            ],
        }
    }

    /// The master ports and, for each, how many partitions live on it.
    fn masters(&self) -> Vec<(u16, usize)> {
        match self {
            Self::Standalone(server) => vec![(server.port(), usize::from(PARTITIONS))],
            Self::Cluster(cluster) => cluster
                .master_ports()
                .into_iter()
                .map(|port| {
                    let held = (0..PARTITIONS)
                        .filter(|p| {
                            let slot = cluster.key_slot(&PartitionKeys::new(*p).updates());
                            cluster.master_of_slot(slot) == port
                        })
                        .count();
                    (port, held)
                })
                .collect(),
        }
    }
}

/// User + system CPU seconds a process has used (`/proc/<pid>/stat`, clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which ends with the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    Ok((ticks(11) + ticks(12)) / 100.0)
}

/// CPU seconds (user + system) a Redis node has used, from `INFO cpu`.
fn redis_cpu_seconds(port: u16) -> anyhow::Result<f64> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut connection = client.get_connection_with_timeout(Duration::from_secs(5))?;
    let info: String = redis::cmd("INFO").arg("cpu").query(&mut connection)?;
    Ok(info
        .lines()
        .filter_map(|line| {
            line.strip_prefix("used_cpu_sys:")
                .or_else(|| line.strip_prefix("used_cpu_user:"))
        })
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum())
}

/// The sum of every sample of `metric` on the worker's `/metrics`.
async fn scrape_sum(port: u16, metric: &str) -> anyhow::Result<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body
        .lines()
        .filter(|line| line.starts_with(metric))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum())
}

/// `INFO commandstats` of one node: (total calls, script calls, script µs).
fn command_stats(port: u16) -> anyhow::Result<(u64, u64, u64)> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut connection = client.get_connection_with_timeout(Duration::from_secs(5))?;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut connection)?;
    let (mut calls, mut script_calls, mut script_usec) = (0, 0, 0);
    for line in info.lines() {
        let Some((name, fields)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let field = |key: &str| {
            fields
                .split(',')
                .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        calls += field("calls");
        if name == "evalsha" || name == "eval" {
            script_calls += field("calls");
            script_usec += field("usec");
        }
    }
    Ok((calls, script_calls, script_usec))
}

pub async fn run() -> anyhow::Result<()> {
    eprintln!(
        "cluster: update handler in process → {PARTITIONS} partitions → 1 worker process → SSE → 1 client; \
         MongoDB protocol (nx-27017)"
    );
    for (round, topology) in [
        Topology::Standalone(RedisServer::start()),
        Topology::Cluster(RedisCluster::start(3)),
    ]
    .into_iter()
    .enumerate()
    {
        // A store of its own per round: the test server keeps every database in one file.
        let dir = std::env::temp_dir().join(format!(
            "scoreboard-bench-cluster-{}-{round}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        let (_mongo, mongo_port) = start_mongo(&dir).await?;
        run_topology(&topology, mongo_port, round).await?;
    }
    Ok(())
}

async fn run_topology(topology: &Topology, mongo_port: u16, round: usize) -> anyhow::Result<()> {
    let redis_env = topology.env();
    let limits = [
        ("RATE_LIMIT_PER_SEC", "10000".to_owned()),
        ("RATE_LIMIT_BURST", "100000".to_owned()),
        ("STREAM_MAX_BACKLOG", "1000000".to_owned()),
        ("PARTITIONS", PARTITIONS.to_string()),
        ("MAX_SCORE_INCREMENT", HOT_INCREMENT.to_string()),
    ];
    let worker_port = free_port();
    let mut worker_env = vec![
        ("STORE", "mongodb".to_owned()),
        ("MONGODB_URI", format!("mongodb://127.0.0.1:{mongo_port}")),
        ("MONGODB_DATABASE", format!("bench_cluster_{round}")),
        ("METRICS_ADDR", format!("127.0.0.1:{worker_port}")),
    ];
    worker_env.extend(redis_env.iter().cloned());
    worker_env.extend(limits.iter().cloned());
    let worker = spawn_worker(&worker_env)?;
    let worker_pid = worker.id().unwrap_or_default();
    wait_port(worker_port, Duration::from_secs(60)).await?;

    let sse_port = free_port();
    let mut sse_env = vec![
        ("BIND_ADDR", format!("127.0.0.1:{sse_port}")),
        ("JWT_SECRET", SECRET.to_owned()),
        ("PARTITIONS", PARTITIONS.to_string()),
    ];
    sse_env.extend(redis_env.iter().cloned());
    let sse = spawn_sse(&sse_env)?;
    let sse_pid = sse.id().unwrap_or_default();
    wait_port(sse_port, Duration::from_secs(30)).await?;

    let mut env = vec![("JWT_SECRET", SECRET.to_owned())];
    env.extend(redis_env.iter().cloned());
    env.extend(limits.iter().cloned());
    let service = Arc::new(UpdateService::from_env(&Env::from_pairs(env))?);

    let (tx, mut rx) = mpsc::unbounded_channel::<Arrival>();
    tokio::spawn(async move {
        let _ = follow(sse_port, token_for("viewer"), 0, true, tx, None).await;
    });
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the SSE client ended before its first event"))?;

    let masters = topology.masters();
    let before: Vec<_> = masters
        .iter()
        .map(|(port, _)| command_stats(*port))
        .collect::<anyhow::Result<_>>()?;
    let redis_cpu_before: Vec<f64> = masters
        .iter()
        .map(|(port, _)| redis_cpu_seconds(*port))
        .collect::<anyhow::Result<_>>()?;
    let worker_cpu_before = cpu_seconds(worker_pid)?;
    let sse_cpu_before = cpu_seconds(sse_pid)?;
    let merges_before = scrape_sum(worker_port, "scoreboard_worker_merges_total").await?;

    // Throughput: as fast as the senders go, then until every increment is in the partition sets.
    let started = Instant::now();
    let accepted = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let service = service.clone();
        let accepted = accepted.clone();
        senders.push(tokio::spawn(async move {
            flood(&service, sender, &accepted, started).await
        }));
    }
    for sender in senders {
        sender.await??;
    }
    let sent_for = started.elapsed();
    let flooded = accepted.load(Ordering::Relaxed);
    let redis_url = redis_env[0].1.clone();
    let cluster = redis_env.len() > 1;
    wait_drained(&redis_url, cluster, flooded, DRAIN_LIMIT).await?;
    let drained_for = started.elapsed();

    // Latency: ten hot users at a steady 1,000 updates/s, each update a new top.
    let collector = tokio::spawn(async move {
        let mut seen: HashMap<String, Vec<(u64, Instant)>> = HashMap::new();
        while let Some(arrival) = rx.recv().await {
            let Some(data) = arrival.data else { continue };
            let Ok(snapshot) = serde_json::from_str::<Snapshot>(&data) else {
                continue;
            };
            for entry in snapshot.entries {
                seen.entry(entry.user_id)
                    .or_default()
                    .push((entry.score, arrival.at));
            }
        }
        seen
    });
    let hot_started = Instant::now();
    let mut hot = Vec::new();
    for user in 0..HOT_USERS {
        let service = service.clone();
        hot.push(tokio::spawn(async move {
            steady(&service, &format!("hot-{user:02}"), hot_started).await
        }));
    }
    let mut hot_times: HashMap<String, Vec<Instant>> = HashMap::new();
    for (user, sender) in hot.into_iter().enumerate() {
        hot_times.insert(format!("hot-{user:02}"), sender.await??);
    }
    let hot_total: u64 = hot_times.values().map(|t| t.len() as u64).sum();
    let expected = flooded + hot_total * HOT_INCREMENT;
    wait_drained(&redis_url, cluster, expected, DRAIN_LIMIT).await?;
    let after: Vec<_> = masters
        .iter()
        .map(|(port, _)| command_stats(*port))
        .collect::<anyhow::Result<_>>()?;
    let redis_cpu: Vec<f64> = masters
        .iter()
        .zip(&redis_cpu_before)
        .map(|((port, _), before)| Ok(redis_cpu_seconds(*port)? - before))
        .collect::<anyhow::Result<_>>()?;
    let worker_cpu = cpu_seconds(worker_pid)? - worker_cpu_before;
    let sse_cpu = cpu_seconds(sse_pid)? - sse_cpu_before;
    let merges = scrape_sum(worker_port, "scoreboard_worker_merges_total").await? - merges_before;
    // Let the last snapshot reach the client, then end its stream.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(sse);
    let seen = tokio::time::timeout(Duration::from_secs(10), collector).await??;

    let mut latency = Histogram::<u64>::new(3)?;
    let mut missing = 0usize;
    for (user, times) in &hot_times {
        let series = seen.get(user).map(Vec::as_slice).unwrap_or_default();
        for (n, t202) in times.iter().enumerate() {
            if t202.duration_since(hot_started) < WARM_UP {
                continue;
            }
            let score = (n as u64 + 1) * HOT_INCREMENT;
            match series.iter().find(|(s, _)| *s >= score) {
                Some((_, at)) => {
                    latency.record(at.saturating_duration_since(*t202).as_micros() as u64)?
                }
                None => missing += 1,
            }
        }
    }

    eprintln!("\n{}:", topology.name());
    eprintln!(
        "  accepted {flooded} updates in {:.1} s: {:.0} updates/s ({SENDERS} senders, {USERS} users); \
         drained {:.0} events/s (all applied {:.1} s after the first)",
        sent_for.as_secs_f64(),
        flooded as f64 / sent_for.as_secs_f64(),
        flooded as f64 / drained_for.as_secs_f64(),
        drained_for.as_secs_f64(),
    );
    eprintln!(
        "  202 → SSE at {} updates/s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples, {missing} never seen)",
        HOT_USERS as u64 * HOT_RATE_PER_USER,
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        latency.max() as f64 / 1000.0,
        latency.len(),
    );
    let total_calls: u64 = before
        .iter()
        .zip(&after)
        .map(|(b, a)| a.0.saturating_sub(b.0))
        .sum();
    let elapsed = started.elapsed().as_secs_f64();
    // Every accepted update of both phases is one event for the worker.
    let events = flooded + hot_total;
    for ((((port, held), b), a), cpu) in masters.iter().zip(&before).zip(&after).zip(&redis_cpu) {
        let calls = a.0.saturating_sub(b.0);
        let scripts = a.1.saturating_sub(b.1);
        let script_usec = a.2.saturating_sub(b.2);
        eprintln!(
            "  master :{port}: {held:>2}/{PARTITIONS} partitions ({:.0} %), {:.1} % of commands; \
             {:.0} script calls/s, {:.1} µs per script call (server side); {:.1} CPU-s, \
             {:.1} µs CPU per event",
            *held as f64 * 100.0 / f64::from(PARTITIONS),
            calls as f64 * 100.0 / total_calls.max(1) as f64,
            scripts as f64 / elapsed,
            script_usec as f64 / scripts.max(1) as f64,
            cpu,
            cpu * 1e6 / events as f64,
        );
    }
    eprintln!(
        "  worker process: {worker_cpu:.1} CPU-s for {events} events ({:.0} µs CPU per event); \
         {merges:.0} merges ({:.1}/s; each = {PARTITIONS} GETs + 1 script); SSE process: {sse_cpu:.1} CPU-s",
        worker_cpu * 1e6 / events as f64,
        merges / elapsed,
    );
    eprintln!(
        "  nothing lost or doubled: the partition sets hold exactly the {expected} accepted points"
    );
    Ok(())
}

/// One sender: users `sender, sender + SENDERS, …` in turn, increment 1, for [`THROUGHPUT_RUN`] or
/// until [`FLOOD_CAP`] updates were accepted.
async fn flood(
    service: &UpdateService,
    sender: usize,
    accepted: &AtomicU64,
    started: Instant,
) -> anyhow::Result<()> {
    let tokens: Vec<String> = (sender..USERS)
        .step_by(SENDERS)
        .map(|user| token_for(&format!("user-{user:04}")))
        .collect();
    let mut next = 0;
    while started.elapsed() < THROUGHPUT_RUN && accepted.load(Ordering::Relaxed) < FLOOD_CAP {
        let status = post(service, &tokens[next % tokens.len()], 1).await?;
        if status == 202 {
            accepted.fetch_add(1, Ordering::Relaxed);
        }
        next += 1;
    }
    Ok(())
}

/// One hot user's updates at [`HOT_RATE_PER_USER`]/s for [`LATENCY_RUN`]; the time of each `202`.
async fn steady(
    service: &UpdateService,
    user: &str,
    started: Instant,
) -> anyhow::Result<Vec<Instant>> {
    let token = token_for(user);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / HOT_RATE_PER_USER));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut times = Vec::new();
    while started.elapsed() < LATENCY_RUN {
        tick.tick().await;
        if post(service, &token, HOT_INCREMENT).await? == 202 {
            times.push(Instant::now());
        }
    }
    Ok(times)
}

async fn post(service: &UpdateService, token: &str, increment: u64) -> anyhow::Result<u16> {
    let request = http::Request::builder()
        .method("POST")
        .uri("https://bench.lambda-url.local/api/v1/scores/update")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(format!(r#"{{"scoreIncrement":{increment}}}"#)))?;
    Ok(service.handle(request).await.status().as_u16())
}

/// Waits (bounded) until the partition sets sum to `expected` points; fails when they pass it.
async fn wait_drained(
    url: &str,
    cluster: bool,
    expected: u64,
    limit: Duration,
) -> anyhow::Result<()> {
    let mut pairs = vec![("REDIS_URL", url.to_owned())];
    if cluster {
        pairs.push(("REDIS_CLUSTER", "true".to_owned()));
    }
    let config = scoreboard_shared::config::RedisConfig::from_env(&Env::from_pairs(pairs))?;
    let mut redis = scoreboard_shared::redis::connect_lazy(&config)?;
    let deadline = Instant::now() + limit;
    loop {
        let mut total = 0u64;
        for partition in Partitioner::new(PARTITIONS).all() {
            let scores: Vec<(String, u64)> = redis::cmd("ZRANGE")
                .arg(PartitionKeys::new(partition).leaderboard())
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut redis)
                .await?;
            total += scores.iter().map(|(_, s)| s).sum::<u64>();
        }
        anyhow::ensure!(
            total <= expected,
            "the partition sets hold {total} points, more than the {expected} accepted: counted twice"
        );
        if total == expected {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {total} of {expected} accepted points applied after {limit:?}: lost"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
