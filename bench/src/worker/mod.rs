//! The worker drain benchmark (issue 9): pre-filled partition streams drained by the real worker — one
//! [`Balancer`](scoreboard_worker::partition::balancer::Balancer) and one merger per worker "process",
//! run in this process as tokio tasks — for P = 1 and 16 partitions, 1 and 2 workers and each batch
//! size, over the in-memory store (the worker's own ceiling, Redis side only) and the MongoDB-protocol
//! server, and by the naive per-event consumer on the same server; uniform and Zipf(1.1) popularity
//! over 100,000 users. Prints events/s, store round trips per batch (the port's calls counted by a
//! wrapper, and the MongoDB driver's commands seen by its command monitor), p50/p99 lag, the ratio
//! batched/naive, the store's own ceiling (the durable per-user writes of each batch and nothing else,
//! as a ratio to naive: what bounds any design that writes each user's document), and where each
//! drain's time went.
//!
//! `BENCH_WORKER_EVENTS` (default 100,000), `BENCH_WORKER_MONGO_EVENTS` (default: the same),
//! `BENCH_WORKER_BATCHES` (default `100,500`) and
//! `BENCH_WORKER_STORES` (default `memory,mongodb`) shrink a run.
//!
//! This module owns the cases and the tables; [`load`] the load (popularity, pre-filling the streams),
//! [`drain`] the batched drain, [`naive`] the per-event consumer, [`ceiling`] the store-only ceiling,
//! [`counting`] the counting store
//! wrapper and [`split`] the time accounting. The leaves never depend on this module.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use hdrhistogram::Histogram;
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use mongodb::options::ClientOptions;
use scoreboard_shared::config::RedisConfig;
use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::connect_lazy;
use scoreboard_testkit::{MongoServer, RedisServer};
use scoreboard_worker::config::{Env, MongoConfig};
use scoreboard_worker::store::WatermarkStore;
use scoreboard_worker::store::combine::{CombiningStore, MONGODB_WRITES_IN_FLIGHT};
use scoreboard_worker::store::memory::MemoryStore;
use scoreboard_worker::store::mongo::MongoStore;

use self::counting::CountingStore;
use self::drain::{Drained, Shape};
use self::load::{Popularity, Prefilled, UserSampler, prefill};

mod ceiling;
mod counting;
mod drain;
mod load;
mod naive;
mod split;

const USERS: usize = 100_000;
const DEFAULT_EVENTS: usize = 100_000;
const DEFAULT_BATCHES: &str = "100,500";
const PARTITION_COUNTS: [u16; 2] = [1, 16];
const WORKER_COUNTS: [usize; 2] = [1, 2];
/// The naive consumer reads the default partitioning (its cost is per event, whatever P).
const NAIVE_PARTITIONS: u16 = 16;
/// Every drain is bounded by this.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);
const POPULARITIES: [Popularity; 2] = [Popularity::Uniform, Popularity::Zipf(1.1)];
/// The floors of issue 9.
const FLOOR_GAIN: f64 = 5.0;
const FLOOR_ROUND_TRIPS: f64 = 2.0;
const FLOOR_MEMORY_RATE: f64 = 50_000.0;
/// The batch size of the floor on the gain, and of the store-only ceiling.
const CEILING_BATCH: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Memory,
    Mongo,
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory => "memory",
            Self::Mongo => "mongodb",
        })
    }
}

/// What to run, from the environment.
#[derive(Debug)]
struct Settings {
    events: usize,
    mongo_events: usize,
    batches: Vec<usize>,
    stores: Vec<StoreKind>,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let events = match std::env::var("BENCH_WORKER_EVENTS") {
            Ok(n) => n.parse().context("BENCH_WORKER_EVENTS")?,
            Err(_) => DEFAULT_EVENTS,
        };
        let mongo_events = match std::env::var("BENCH_WORKER_MONGO_EVENTS") {
            Ok(n) => n.parse().context("BENCH_WORKER_MONGO_EVENTS")?,
            Err(_) => events,
        };
        anyhow::ensure!(
            events > 0 && mongo_events > 0,
            "BENCH_WORKER_EVENTS and BENCH_WORKER_MONGO_EVENTS must be positive"
        );
        let batches = std::env::var("BENCH_WORKER_BATCHES")
            .unwrap_or_else(|_| DEFAULT_BATCHES.to_owned())
            .split(',')
            .map(|b| b.trim().parse::<usize>().context("BENCH_WORKER_BATCHES"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let stores = std::env::var("BENCH_WORKER_STORES")
            .unwrap_or_else(|_| "memory,mongodb".to_owned())
            .split(',')
            .map(|s| match s.trim() {
                "memory" => Ok(StoreKind::Memory),
                "mongodb" => Ok(StoreKind::Mongo),
                other => anyhow::bail!("BENCH_WORKER_STORES: unknown store {other:?}"),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            events,
            mongo_events,
            batches,
            stores,
        })
    }
}

/// One printed row.
#[derive(Debug)]
struct Row {
    store: StoreKind,
    popularity: Popularity,
    consumer: &'static str,
    partitions: u16,
    workers: String,
    batch: String,
    events: usize,
    elapsed: Duration,
    batches: u64,
    /// Port calls (read + write) per batch; `None` for the naive consumer.
    calls_per_batch: Option<f64>,
    /// MongoDB commands per batch (naive: per event); `None` without a monitor.
    wire_per_batch: Option<f64>,
    lag: Histogram<u64>,
    gain: Option<f64>,
}

impl Row {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    fn header() {
        println!(
            "{:<8} {:<9} {:<8} {:>3} {:>5} {:>5} {:>9} {:>7} {:>8} {:>9} {:>8} {:>8} {:>7}",
            "store",
            "users",
            "consumer",
            "P",
            "W",
            "batch",
            "events/s",
            "batches",
            "rt/batch",
            "wire/batch",
            "lag p50",
            "lag p99",
            "x naive"
        );
    }

    fn print(&self) {
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
        };
        println!(
            "{:<8} {:<9} {:<8} {:>3} {:>5} {:>5} {:>9.0} {:>7} {:>8} {:>9} {:>6}ms {:>6}ms {:>7}",
            self.store.to_string(),
            self.popularity.to_string(),
            self.consumer,
            self.partitions,
            self.workers,
            self.batch,
            self.rate(),
            self.batches,
            opt(self.calls_per_batch, 2),
            opt(self.wire_per_batch, 2),
            self.lag.value_at_quantile(0.5),
            self.lag.value_at_quantile(0.99),
            opt(self.gain, 1) + if self.gain.is_some() { "x" } else { "" },
        );
    }
}

/// Where one batched drain's time went.
#[derive(Debug)]
struct SplitRow {
    label: String,
    drained: Drained,
    batches: u64,
    /// Time waiting on the store's batch reads and writes (summed over owners).
    store_busy: (Duration, Duration),
    /// MongoDB commands outside batches (owners' start-up `hw` reads, rebuild scans).
    startup_commands: Option<u64>,
}

impl SplitRow {
    fn header() {
        println!(
            "{:<34} {:>6} {:>8} {:>8} {:>6} {:>8} {:>10} {:>11} {:>9} {:>10} {:>8}",
            "case",
            "wall s",
            "bench s",
            "redis s",
            "cores",
            "XREAD/b",
            "XREAD µs/b",
            "script µs/b",
            "read ms/b",
            "write ms/b",
            "start-up"
        );
    }

    fn print(&self) {
        let d = &self.drained;
        let b = self.batches.max(1) as f64;
        let wall = d.elapsed.as_secs_f64();
        let bench = d.bench_cpu.map(|c| c.as_secs_f64());
        println!(
            "{:<34} {:>6.2} {:>8} {:>8.2} {:>6} {:>8.2} {:>10.0} {:>11.0} {:>9.2} {:>10.2} {:>8}",
            self.label,
            wall,
            bench.map_or_else(|| "-".to_owned(), |c| format!("{c:.2}")),
            d.redis.cpu_secs,
            bench.map_or_else(
                || "-".to_owned(),
                |c| format!("{:.2}", (c + d.redis.cpu_secs) / wall)
            ),
            d.redis.xread_calls as f64 / b,
            d.redis.xread_usec as f64 / b,
            d.redis.script_usec as f64 / b,
            self.store_busy.0.as_secs_f64() * 1_000.0 / b,
            self.store_busy.1.as_secs_f64() * 1_000.0 / b,
            self.startup_commands
                .map_or_else(|| "-".to_owned(), |c| c.to_string()),
        );
    }
}

/// MongoDB data commands a client sent (not handshakes or index creation).
#[derive(Debug, Default)]
struct WireCounts {
    /// Batch commands: `find` by `_id: {$in}` (a batch read), `update`, and a `getMore` on a batch
    /// read's cursor.
    batch: AtomicU64,
    /// Other data commands: an owner's start-up `hw` reads (also the one by `_id: {$in: [hw id]}`), a
    /// rebuild's partition scan and its `getMore`s.
    other: AtomicU64,
    /// Open cursors of batch reads (by cursor id), so that their `getMore`s count as batch commands.
    batch_cursors: std::sync::Mutex<std::collections::HashSet<i64>>,
    /// Request ids of batch reads in flight, to find their cursor ids in the replies.
    batch_requests: std::sync::Mutex<std::collections::HashSet<i32>>,
}

impl WireCounts {
    fn started(&self, started: &mongodb::event::command::CommandStartedEvent) {
        // A batch read names users; an owner's start-up read (`users` empty) names only its `hw` document,
        // whose id starts with \u{1}.
        let by_ids = || {
            started
                .command
                .get_document("filter")
                .and_then(|f| f.get_document("_id"))
                .and_then(|id| id.get_array("$in"))
                .is_ok_and(|ids| {
                    ids.iter()
                        .any(|id| id.as_str().is_some_and(|id| !id.starts_with('\u{1}')))
                })
        };
        let counter = match started.command_name.as_str() {
            "update" => &self.batch,
            "find" if by_ids() => {
                lock(&self.batch_requests).insert(started.request_id);
                &self.batch
            }
            "getMore" => match started.command.get_i64("getMore") {
                Ok(cursor) if lock(&self.batch_cursors).contains(&cursor) => &self.batch,
                _ => &self.other,
            },
            "find" | "insert" | "delete" | "findAndModify" | "aggregate" => &self.other,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn succeeded(&self, succeeded: &mongodb::event::command::CommandSucceededEvent) {
        if !lock(&self.batch_requests).remove(&succeeded.request_id) {
            return;
        }
        let cursor = succeeded
            .reply
            .get_document("cursor")
            .and_then(|c| c.get_i64("id"))
            .unwrap_or(0);
        if cursor != 0 {
            lock(&self.batch_cursors).insert(cursor);
        }
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counts the MongoDB commands a client sends, by the driver's command monitor.
fn monitored_options(options: &ClientOptions) -> (ClientOptions, Arc<WireCounts>) {
    let counts = Arc::new(WireCounts::default());
    let seen = counts.clone();
    let mut options = options.clone();
    options.command_event_handler = Some(EventHandler::callback(move |event| match event {
        CommandEvent::Started(started) => seen.started(&started),
        CommandEvent::Succeeded(succeeded) => seen.succeeded(&succeeded),
        CommandEvent::Failed(failed) => {
            lock(&seen.batch_requests).remove(&failed.request_id);
        }
        _ => {}
    }));
    (options, counts)
}

/// Shared by every case.
struct Bench {
    settings: Settings,
    redis_config: RedisConfig,
    mongo: MongoServer,
    mongo_options: ClientOptions,
    case: usize,
}

/// Runs every case and prints the tables.
///
/// # Errors
/// When a server cannot be started, a drain fails or its totals do not add up.
pub async fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let redis_server = RedisServer::start();
    let mongo = MongoServer::start();
    let store_kind = if mongo.is_spawned() {
        "nx-27017 (MongoDB wire protocol on SQLite)"
    } else {
        "mongod at MONGODB_URI"
    };
    println!(
        "\nworker drain: {} pre-filled events per case ({} on MongoDB) over {USERS} users, XADDed to each user's partition \
         stream; redis-server (no persistence) + {store_kind} on loopback.\n\
         W = worker processes, run in this process as tokio tasks (one Balancer + one Merger each, own \
         WORKER_ID), on the shared 2-core machine.\n\
         rt/batch = store port calls (read + write) per batch; wire/batch = MongoDB batch commands \
         (find by _id $in and its getMores, update) per batch (naive: per event), from the driver's command monitor;\n\
         other MongoDB commands (owners' start-up hw reads, rebuild scans and their getMores) are the split table's start-up column.\n\
         lag = commit - max(entry ts, drain start): the wait behind the pre-filled backlog, seen by polling \
         the cursors every 5 ms.\n",
        settings.events, settings.mongo_events
    );
    let env = Env::from_pairs([
        ("REDIS_URL", redis_server.url()),
        ("REDIS_RESPONSE_TIMEOUT_MS", "10000".to_owned()),
    ]);
    let mongo_options = ClientOptions::parse(mongo.uri()).await?;
    let mut bench = Bench {
        redis_config: RedisConfig::from_env(&env)?,
        settings,
        mongo,
        mongo_options,
        case: 0,
    };
    Row::header();
    let mut rows = Vec::new();
    let mut splits = Vec::new();
    let mut equal_durability = Vec::new();
    for store in bench.settings.stores.clone() {
        for popularity in POPULARITIES {
            let (naive, naive_durable) = if store == StoreKind::Mongo {
                let row = bench.naive(popularity, false).await?;
                row.print();
                let rate = row.rate();
                rows.push(row);
                let row = bench.naive(popularity, true).await?;
                row.print();
                let durable_rate = row.rate();
                rows.push(row);
                for partitions in PARTITION_COUNTS {
                    for shape in [ceiling::Shape::Upsert, ceiling::Shape::InsertNew] {
                        let mut row = bench.ceiling(popularity, partitions, shape).await?;
                        row.gain = Some(row.rate() / rate);
                        row.print();
                        rows.push(row);
                    }
                }
                (Some(rate), Some(durable_rate))
            } else {
                (None, None)
            };
            for partitions in PARTITION_COUNTS {
                for workers in WORKER_COUNTS {
                    for batch in bench.settings.batches.clone() {
                        let shape = Shape {
                            partitions,
                            workers,
                            batch,
                        };
                        let (mut row, split) = bench.batched(store, popularity, shape).await?;
                        row.gain = naive.map(|n| row.rate() / n);
                        row.print();
                        if let Some(durable) = naive_durable {
                            equal_durability.push(format!(
                                "{popularity} P={partitions} W={workers} b={batch}: {:.1}x",
                                row.rate() / durable
                            ));
                        }
                        rows.push(row);
                        splits.push(split);
                    }
                }
            }
        }
    }
    if !equal_durability.is_empty() {
        println!(
            "\nbatched / naive at equal durability (the naive $inc with majority + journal, `naive-dur`):"
        );
        for line in &equal_durability {
            println!("  {line}");
        }
    }
    println!("\nwhere the time went (per batch b; Redis figures are the server's own accounting):");
    SplitRow::header();
    for split in &splits {
        split.print();
    }
    summarize(&rows);
    Ok(())
}

impl Bench {
    async fn fresh_redis(&self) -> anyhow::Result<RedisConn> {
        let mut redis = connect_lazy(&self.redis_config)?;
        let () = redis::cmd("FLUSHALL").query_async(&mut redis).await?;
        Ok(redis)
    }

    fn mongo_config(&mut self) -> MongoConfig {
        self.case += 1;
        MongoConfig {
            uri: self.mongo.uri().to_owned().into(),
            database: format!("{}_w{}", self.mongo.database(), self.case),
            collection: "scores".to_owned(),
        }
    }

    async fn batched(
        &mut self,
        store_kind: StoreKind,
        popularity: Popularity,
        shape: Shape,
    ) -> anyhow::Result<(Row, SplitRow)> {
        let mut redis = self.fresh_redis().await?;
        let sampler = UserSampler::new(USERS, popularity);
        let events = match store_kind {
            StoreKind::Memory => self.settings.events,
            StoreKind::Mongo => self.settings.mongo_events,
        };
        let filled = prefill(&mut redis, &sampler, shape.partitions, events).await?;
        let (inner, wire): (Arc<dyn WatermarkStore>, Option<Arc<WireCounts>>) = match store_kind {
            StoreKind::Memory => (Arc::new(MemoryStore::new()), None),
            StoreKind::Mongo => {
                let config = self.mongo_config();
                let (options, count) = monitored_options(&self.mongo_options);
                let store = MongoStore::with_options(options, &config).await?;
                // As the worker binary runs it (`store::connect`): writes combined across owners.
                let store = CombiningStore::new(Arc::new(store), MONGODB_WRITES_IN_FLIGHT);
                (Arc::new(store), Some(count))
            }
        };
        let (store, counts) = CountingStore::new(inner);
        let store: Arc<dyn WatermarkStore> = Arc::new(store);
        let load = |w: &WireCounts| {
            (
                w.batch.load(Ordering::Relaxed),
                w.other.load(Ordering::Relaxed),
            )
        };
        let wire_before = wire.as_deref().map(load);
        let drained = drain::drain(
            &self.redis_config,
            store.clone(),
            &filled,
            shape,
            DRAIN_TIMEOUT,
        )
        .await
        .with_context(|| format!("{store_kind} {popularity} {shape:?}"))?;
        let wire_commands = wire
            .as_deref()
            .map(load)
            .zip(wire_before)
            .map(|(after, before)| (after.0 - before.0, after.1 - before.1));
        check_totals(store.as_ref(), shape.partitions, &filled).await?;
        let batches = counts.batches.load(Ordering::Relaxed);
        let per_batch = |n: u64| n as f64 / batches.max(1) as f64;
        let label = format!(
            "{store_kind} {popularity} P={} W={} b={}",
            shape.partitions, shape.workers, shape.batch
        );
        let row = Row {
            store: store_kind,
            popularity,
            consumer: "batched",
            partitions: shape.partitions,
            workers: shape.workers.to_string(),
            batch: shape.batch.to_string(),
            events: filled.events,
            elapsed: drained.elapsed,
            batches,
            calls_per_batch: Some(per_batch(counts.round_trips())),
            wire_per_batch: wire_commands.map(|(batch, _)| per_batch(batch)),
            lag: drained.lag.clone(),
            gain: None,
        };
        let split = SplitRow {
            label,
            drained,
            batches,
            store_busy: counts.busy(),
            startup_commands: wire_commands.map(|(_, other)| other),
        };
        Ok((row, split))
    }

    /// The store-only ceiling at the floor's batch size (see [`ceiling`]), on a fresh database.
    async fn ceiling(
        &mut self,
        popularity: Popularity,
        partitions: u16,
        shape: ceiling::Shape,
    ) -> anyhow::Result<Row> {
        let config = self.mongo_config();
        let client = mongodb::Client::with_options(self.mongo_options.clone())?;
        let db = client.database(&config.database);
        let sampler = UserSampler::new(USERS, popularity);
        let events = self.settings.mongo_events;
        let (elapsed, commands, batches) = ceiling::write_only(
            &db,
            &config.collection,
            &sampler,
            events,
            partitions,
            CEILING_BATCH,
            shape,
        )
        .await?;
        Ok(Row {
            store: StoreKind::Mongo,
            popularity,
            consumer: shape.label(),
            partitions,
            workers: "1".to_owned(),
            batch: CEILING_BATCH.to_string(),
            events,
            elapsed,
            batches,
            calls_per_batch: None,
            wire_per_batch: Some(commands as f64 / batches as f64),
            lag: Histogram::<u64>::new(3)?,
            gain: None,
        })
    }

    async fn naive(&mut self, popularity: Popularity, durable: bool) -> anyhow::Result<Row> {
        let mut redis = self.fresh_redis().await?;
        let sampler = UserSampler::new(USERS, popularity);
        let filled = prefill(
            &mut redis,
            &sampler,
            NAIVE_PARTITIONS,
            self.settings.mongo_events,
        )
        .await?;
        let config = self.mongo_config();
        let (options, count) = monitored_options(&self.mongo_options);
        let client = mongodb::Client::with_options(options)?;
        let scores = client.database(&config.database).collection("scores");
        let started = Instant::now();
        let (reads, lag) = naive::drain(
            &mut redis,
            &scores,
            NAIVE_PARTITIONS,
            filled.events,
            DRAIN_TIMEOUT,
            durable,
        )
        .await?;
        Ok(Row {
            store: StoreKind::Mongo,
            popularity,
            consumer: if durable { "naive-dur" } else { "naive" },
            partitions: NAIVE_PARTITIONS,
            workers: "1".to_owned(),
            batch: "1".to_owned(),
            events: filled.events,
            elapsed: started.elapsed(),
            batches: reads as u64,
            calls_per_batch: None,
            wire_per_batch: Some(count.batch.load(Ordering::Relaxed) as f64 / filled.events as f64),
            lag,
            gain: None,
        })
    }
}

/// The store's totals must add up to the increments appended: the drain did the real work, once.
async fn check_totals(
    store: &dyn WatermarkStore,
    partitions: u16,
    filled: &Prefilled,
) -> anyhow::Result<()> {
    let mut sum = 0u64;
    for partition in 0..partitions {
        let mut totals = store.partition_totals(partition);
        while let Some(total) = totals.next().await {
            sum += total?.score;
        }
    }
    anyhow::ensure!(
        sum == filled.increments,
        "the store's totals add up to {sum}, the stream's increments to {}",
        filled.increments
    );
    Ok(())
}

/// The floors of issue 9, each with the figures behind it.
fn summarize(rows: &[Row]) {
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!();
    for popularity in POPULARITIES {
        let gains: Vec<(f64, &Row)> = rows
            .iter()
            .filter(|r| r.popularity == popularity && r.consumer == "batched" && r.batch == "100")
            .filter_map(|r| Some((r.gain?, r)))
            .collect();
        if let (Some(low), Some(high)) = (
            gains.iter().min_by(|a, b| a.0.total_cmp(&b.0)),
            gains.iter().max_by(|a, b| a.0.total_cmp(&b.0)),
        ) {
            println!(
                "batched/naive at batch 100, {popularity}: {:.1}x (P={} W={}) to {:.1}x (P={} W={}); floor {FLOOR_GAIN}x {} by the best, {} by all",
                low.0,
                low.1.partitions,
                low.1.workers,
                high.0,
                high.1.partitions,
                high.1.workers,
                verdict(high.0 >= FLOOR_GAIN),
                verdict(low.0 >= FLOOR_GAIN),
            );
        }
        let ceiling = rows
            .iter()
            .filter(|r| r.popularity == popularity && r.consumer.starts_with("ceil"))
            .filter_map(|r| Some((r.gain?, r)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((gain, row)) = ceiling {
            println!(
                "  the store alone (only each batch's durable per-user writes, no stream, store read or Redis) reaches at most \
                 {gain:.1}x naive ({} P={}): {}",
                row.consumer,
                row.partitions,
                if gain < FLOOR_GAIN {
                    "the floor is beyond what this server allows a design that writes each user's document"
                } else {
                    "the floor is within this server's reach"
                }
            );
        }
    }
    let worst_calls = rows
        .iter()
        .filter_map(|r| r.calls_per_batch)
        .fold(0.0f64, f64::max);
    let worst_wire = rows
        .iter()
        .filter(|r| r.consumer == "batched")
        .filter_map(|r| r.wire_per_batch)
        .fold(0.0f64, f64::max);
    println!(
        "store round trips per batch, worst case: {worst_calls:.2} port calls, {worst_wire:.2} MongoDB commands; floor <= {FLOOR_ROUND_TRIPS}: {} (port), {} (wire)",
        verdict(worst_calls <= FLOOR_ROUND_TRIPS),
        verdict(worst_wire <= FLOOR_ROUND_TRIPS),
    );
    if let Some(best) = rows
        .iter()
        .filter(|r| r.store == StoreKind::Memory)
        .max_by(|a, b| a.rate().total_cmp(&b.rate()))
    {
        let worst = rows
            .iter()
            .filter(|r| r.store == StoreKind::Memory)
            .map(Row::rate)
            .fold(f64::INFINITY, f64::min);
        println!(
            "in-memory store: best {:.0} events/s ({} P={} W={} b={}), worst {worst:.0}; floor {FLOOR_MEMORY_RATE:.0}: {}",
            best.rate(),
            best.popularity,
            best.partitions,
            best.workers,
            best.batch,
            verdict(best.rate() >= FLOOR_MEMORY_RATE),
        );
    }
}
