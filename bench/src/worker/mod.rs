//! The worker drain benchmark: a pre-filled stream drained by the real worker steps (fetch, one bulk
//! store write, one commit script) for batch sizes 1, 100 and 500, and by the naive per-event consumer,
//! over 100,000 users with uniform and Zipf(1.1) popularity. Prints events/s, batches/s, store round
//! trips per event (counted by the driver's command monitor) and p50/p99 lag.
//!
//! This module owns the cases, the batched drain (the real [`Worker`] steps) and the table; [`load`] owns
//! the load (user popularity, pre-filling the stream, the clock entries are stamped with) and [`naive`] the
//! per-event consumer. Both leaves depend only on [`load`], never on this module.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use mongodb::options::ClientOptions;
use redis::aio::ConnectionManager;
use scoreboard_shared::config::RedisConfig;
use scoreboard_shared::redis::connect_lazy;
use scoreboard_testkit::{MongoServer, RedisServer};
use scoreboard_worker::Worker;
use scoreboard_worker::config::{DEFAULT_DEDUPE_WINDOW, Env, MongoConfig, WorkerConfig};
use scoreboard_worker::store::ScoreStore;
use scoreboard_worker::store::mongo::MongoStore;

use self::load::{Popularity, UserSampler, now_ms, prefill};

mod load;
mod naive;

const USERS: usize = 100_000;
const DEFAULT_EVENTS: usize = 20_000;
const BATCH_SIZES: [usize; 3] = [1, 100, 500];

struct Figures {
    mode: String,
    popularity: Popularity,
    batch: String,
    events: usize,
    elapsed: Duration,
    batches: usize,
    store_round_trips: usize,
    lag: Histogram<u64>,
    /// Time spent in store writes and in Redis commits (batched mode only).
    split: Option<(Duration, Duration)>,
}

impl Figures {
    fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self) {
        let split = self.split.map_or_else(
            || "-".to_owned(),
            |(store, commit)| {
                let total = self.elapsed.as_secs_f64();
                format!(
                    "{:.0}%/{:.0}%",
                    100.0 * store.as_secs_f64() / total,
                    100.0 * commit.as_secs_f64() / total
                )
            },
        );
        println!(
            "{:<8} {:<10} {:>5} {:>10.0} {:>10.1} {:>15.3} {:>11} {:>11} {:>15}",
            self.mode,
            self.popularity.to_string(),
            self.batch,
            self.events_per_sec(),
            self.batches as f64 / self.elapsed.as_secs_f64(),
            self.store_round_trips as f64 / self.events as f64,
            self.lag.value_at_quantile(0.5),
            self.lag.value_at_quantile(0.99),
            split,
        );
    }
}

/// Counts the store commands a client sends (round trips), excluding set-up.
fn monitored_options(options: &ClientOptions) -> (ClientOptions, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let mut options = options.clone();
    options.command_event_handler = Some(EventHandler::callback(move |event| {
        if let CommandEvent::Started(started) = event
            && matches!(started.command_name.as_str(), "update" | "find" | "insert")
        {
            seen.fetch_add(1, Ordering::Relaxed);
        }
    }));
    (options, count)
}

/// Runs every case and prints the table.
///
/// # Errors
/// When a server cannot be started or a drain fails.
pub async fn run() -> anyhow::Result<()> {
    let events: usize = match std::env::var("BENCH_WORKER_EVENTS") {
        Ok(n) => n.parse().context("BENCH_WORKER_EVENTS")?,
        Err(_) => DEFAULT_EVENTS,
    };
    let redis_server = RedisServer::start();
    let mongo = MongoServer::start();
    let store_kind = if mongo.is_spawned() {
        "nx-27017 (MongoDB wire protocol on SQLite)"
    } else {
        "mongod at MONGODB_URI"
    };
    println!(
        "\nworker drain: {events} pre-filled events per case over {USERS} users; redis-server + {store_kind} \
         on loopback.\nlag = now - ts at commit (includes queueing behind the pre-filled backlog).\n"
    );
    println!(
        "{:<8} {:<10} {:>5} {:>10} {:>10} {:>15} {:>11} {:>11}",
        "mode",
        "users",
        "batch",
        "events/s",
        "batches/s",
        "store rt/event",
        "lag p50 ms",
        "lag p99 ms"
    );
    let env = Env::from_pairs([
        ("REDIS_URL", redis_server.url()),
        ("REDIS_RESPONSE_TIMEOUT_MS", "10000".to_owned()),
    ]);
    let redis_config = RedisConfig::from_env(&env)?;
    let base_options = ClientOptions::parse(mongo.uri()).await?;
    let mut case = 0;
    let mut gains = Vec::new();
    for popularity in [Popularity::Uniform, Popularity::Zipf(1.1)] {
        let sampler = UserSampler::new(USERS, popularity);
        let mut best = 0.0f64;
        for batch in BATCH_SIZES {
            case += 1;
            let mut redis = connect_lazy(&redis_config)?;
            let _: () = redis::cmd("FLUSHALL").query_async(&mut redis).await?;
            prefill(&mut redis, &sampler, events).await?;
            let config = MongoConfig {
                uri: mongo.uri().to_owned().into(),
                database: format!("{}_{case}", mongo.database()),
                collection: "scores".to_owned(),
                dedupe_window: DEFAULT_DEDUPE_WINDOW,
            };
            let (options, count) = monitored_options(&base_options);
            let store: Arc<dyn ScoreStore> =
                Arc::new(MongoStore::with_options(options, &config).await?);
            count.store(0, Ordering::Relaxed);
            let figures = drain_batched(redis, store, batch, events, &count, popularity).await?;
            figures.print();
            best = best.max(figures.events_per_sec());
        }
        case += 1;
        let mut redis = connect_lazy(&redis_config)?;
        let _: () = redis::cmd("FLUSHALL").query_async(&mut redis).await?;
        prefill(&mut redis, &sampler, events).await?;
        let (options, count) = monitored_options(&base_options);
        let client = mongodb::Client::with_options(options)?;
        let scores = client
            .database(&format!("{}_{case}", mongo.database()))
            .collection("scores");
        let started = Instant::now();
        let (reads, lag) = naive::drain(&mut redis, &scores, events).await?;
        let naive = Figures {
            mode: "naive".to_owned(),
            popularity,
            batch: "1".to_owned(),
            events,
            elapsed: started.elapsed(),
            batches: reads,
            store_round_trips: count.load(Ordering::Relaxed),
            lag,
            split: None,
        };
        naive.print();
        gains.push((popularity, best / naive.events_per_sec()));
    }
    println!();
    for (popularity, gain) in gains {
        println!("gain, best batched vs naive events/s, {popularity}: {gain:.1}x");
    }
    Ok(())
}

async fn drain_batched(
    redis: ConnectionManager,
    store: Arc<dyn ScoreStore>,
    batch_size: usize,
    events: usize,
    count: &AtomicUsize,
    popularity: Popularity,
) -> anyhow::Result<Figures> {
    let env = Env::from_pairs([
        ("WORKER_CONSUMER", "bench".to_owned()),
        ("WORKER_BATCH_SIZE", batch_size.to_string()),
        ("WORKER_BLOCK_MS", "100".to_owned()),
    ]);
    let mut worker = Worker::new(redis, store, WorkerConfig::from_env(&env)?).await?;
    let mut lag = Histogram::<u64>::new(3)?;
    let (mut done, mut batches) = (0, 0);
    let (mut store_time, mut commit_time) = (Duration::ZERO, Duration::ZERO);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    while done < events {
        anyhow::ensure!(Instant::now() < deadline, "drain took over 10 minutes");
        let batch = worker.fetch().await?;
        if batch.is_empty() {
            continue;
        }
        let t = Instant::now();
        let totals = worker.write_store(&batch).await?;
        store_time += t.elapsed();
        let t = Instant::now();
        worker.commit(&batch, &totals).await?;
        commit_time += t.elapsed();
        let now = now_ms();
        for event in &batch.events {
            lag.record(now.saturating_sub(event.ts_ms))?;
        }
        done += batch.events.len() + batch.dead.len();
        batches += 1;
    }
    Ok(Figures {
        mode: "batched".to_owned(),
        popularity,
        batch: batch_size.to_string(),
        events: done,
        elapsed: started.elapsed(),
        batches,
        store_round_trips: count.load(Ordering::Relaxed),
        lag,
        split: Some((store_time, commit_time)),
    })
}
