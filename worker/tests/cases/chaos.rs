//! Chaos: the worker binary is `kill -9`ed at random moments and restarted while the real update
//! handler enqueues 20,000 updates over 500 users; afterwards store, sorted set and `{sb}:top` agree
//! exactly with the sum of accepted increments. Store-generic: one `#[test]` per store.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use redis::aio::ConnectionManager;
use scoreboard_testkit::{RedisServer, free_port};
use tokio::sync::Mutex;

use crate::helpers::{self, Accepted, StoreUnderTest, UpdateProducer};

const UPDATES: usize = 20_000;
const USERS: usize = 500;
const MIN_KILLS: usize = 5;
const PRODUCERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_with_mongodb() {
    chaos_scenario(StoreUnderTest::mongo()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_with_dynamodb() {
    chaos_scenario(StoreUnderTest::dynamodb()).await;
}

/// A worker child process with its log in `dir`.
struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    fn start(env: &[(String, String)], log: &std::path::Path, metrics_port: u16) -> Self {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_scoreboard-worker"))
            .env_clear()
            .envs(env.iter().cloned())
            .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start scoreboard-worker");
        Self { child }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The scenario, for any store.
pub async fn chaos_scenario(target: StoreUnderTest) {
    let redis_server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("worker.log");
    let mut env = target.env();
    env.extend(
        [
            ("REDIS_URL", redis_server.url().as_str()),
            ("WORKER_BATCH_SIZE", "200"),
            ("WORKER_BLOCK_MS", "100"),
            ("CLAIM_IDLE_MS", "500"),
            ("MAX_DELIVERIES", "1000"),
            ("RATE_LIMIT_PER_SEC", "100"),
            ("RATE_LIMIT_BURST", "100"),
            ("RUST_LOG", "warn"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let redis = helpers::redis_manager(&redis_server.url());
    let producer = Arc::new(UpdateProducer::new(redis.clone()));
    let accepted = Arc::new(Mutex::new(Vec::<Accepted>::with_capacity(UPDATES)));

    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let (producer, accepted) = (producer.clone(), accepted.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rng().random_range(0..u64::MAX);
            for i in (p..UPDATES).step_by(PRODUCERS) {
                rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let user = format!("user-{:03}", i % USERS);
                let increment = 1 + (rng >> 33) % 100;
                if let Some(ok) = producer.send(&user, increment).await {
                    accepted.lock().await.push(ok);
                }
            }
        }));
    }

    let mut worker = WorkerProcess::start(&env, &log, free_port());
    let mut kills = 0;
    let mut kills_mid_batch = 0;
    let mut redis_probe = redis.clone();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(240);
    while kills < MIN_KILLS || tasks.iter().any(|t| !t.is_finished()) {
        assert!(
            Instant::now() < deadline,
            "producers did not finish in time"
        );
        let pause = rand::rng().random_range(200..1_200);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        worker.kill9();
        kills += 1;
        if helpers::pending(&mut redis_probe).await > 0 {
            kills_mid_batch += 1;
        }
        worker = WorkerProcess::start(&env, &log, free_port());
    }
    eprintln!(
        "chaos: {kills} kills ({kills_mid_batch} left entries pending) over {:?}",
        started.elapsed()
    );
    assert!(kills_mid_batch >= 1, "no kill hit a batch in flight");
    for task in tasks {
        task.await.unwrap();
    }
    let accepted = accepted.lock().await.clone();
    assert!(
        accepted.len() >= UPDATES * 99 / 100,
        "only {} accepted",
        accepted.len()
    );
    let mut expected = BTreeMap::<String, u64>::new();
    for a in &accepted {
        *expected.entry(a.user.clone()).or_default() += a.increment;
    }
    assert_eq!(expected.len(), USERS);

    // The last worker runs with a known metrics port and drains everything.
    drop(worker);
    let metrics_port = free_port();
    let mut last = WorkerProcess::start(&env, &log, metrics_port);
    let store = target.connect().await;
    let redis_check = redis.clone();
    helpers::eventually(
        Duration::from_secs(120),
        "the drain after the chaos",
        || {
            let (store, expected, mut redis) =
                (store.clone(), expected.clone(), redis_check.clone());
            async move {
                helpers::pending(&mut redis).await == 0
                    && helpers::store_totals(store.as_ref()).await == expected
            }
        },
    )
    .await;

    let mut redis = redis;
    assert_eq!(
        helpers::store_totals(store.as_ref()).await,
        expected,
        "store = accepted"
    );
    assert_eq!(
        helpers::board(&mut redis).await,
        expected,
        "sorted set = store"
    );
    let snap = helpers::snapshot(&mut redis).await.expect("snapshot");
    assert_eq!(
        helpers::rows(&snap),
        helpers::store_top(store.as_ref(), 10).await,
        "top = store top 10"
    );
    check_metrics(metrics_port).await;
    assert_stream_trimmed(&mut redis).await;
    terminate_gracefully(&mut last.child);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !log_text.contains("panicked"),
        "a worker panicked:\n{log_text}"
    );
}

async fn check_metrics(port: u16) {
    scoreboard_shared::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(health.status().as_u16(), 200);
    let body = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "scoreboard_worker_events_total",
        "scoreboard_worker_batches_total",
        "scoreboard_worker_store_seconds",
        "scoreboard_worker_lag_seconds",
    ] {
        assert!(body.contains(name), "{name} missing from /metrics:\n{body}");
    }
}

async fn assert_stream_trimmed(redis: &mut ConnectionManager) {
    helpers::eventually(Duration::from_secs(10), "acked entries trimmed", || {
        let mut redis = redis.clone();
        async move {
            let len: usize =
                redis::AsyncCommands::xlen(&mut redis, scoreboard_shared::redis::keys::UPDATES)
                    .await
                    .unwrap();
            len < UPDATES / 10
        }
    })
    .await;
}

/// SIGTERM: the worker finishes its batch and exits 0.
fn terminate_gracefully(child: &mut Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "worker exited with {status} after SIGTERM"
            );
            return;
        }
        assert!(Instant::now() < until, "worker did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
