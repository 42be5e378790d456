//! Test helpers: a real Redis per test (a standalone server, or a 3-master cluster with
//! `REDIS_CLUSTER=true`), the SSE server on port 0 (public and metrics listeners), tokens (from the test
//! kit's minter), a streaming SSE reader, and publishing a snapshot the way the merger does
//! (`SET {sb}:top` + `PUBLISH`, `SPUBLISH` on a cluster).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use redis::AsyncCommands;
use scoreboard_shared::config::Env;
use scoreboard_shared::redis::keys;
use scoreboard_shared::shutdown::{Shutdown, ShutdownTrigger};
use scoreboard_shared::snapshot::{Entry, Snapshot};
use scoreboard_sse::{AppState, SseConfig};
use scoreboard_testkit::{RedisCluster, RedisServer};

pub const SECRET: &str = "sse-test-secret-0123456789abcdef0123";
const WAIT: Duration = Duration::from_secs(10);

/// A running SSE server with its own Redis (`R`: a standalone [`RedisServer`] or a [`RedisCluster`]).
pub struct TestApp<R = RedisServer> {
    /// The public listener (`BIND_ADDR`).
    pub base: String,
    /// The metrics listener (`METRICS_ADDR`).
    pub metrics_base: String,
    pub redis: R,
    pub http: reqwest::Client,
    /// Held while the server runs: dropping the trigger would end `run` at once.
    stop: Option<ShutdownTrigger>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// Starts Redis (optionally with a snapshot already in `{sb}:top`) and the server, and waits until it
    /// has subscribed.
    pub async fn spawn(extra: &[(&str, &str)], initial: Option<&Snapshot>) -> Self {
        let redis = RedisServer::start();
        let url = redis.url();
        let app = Self::start(redis, &url, extra, initial).await;
        app.wait_health(|h| h["subscribed"] == true).await;
        app
    }

    /// Starts the server against `redis`, reached at `redis_url` (e.g. its TLS port), without waiting for
    /// the subscription. `initial` is written through the plain port.
    pub async fn start(
        redis: RedisServer,
        redis_url: &str,
        extra: &[(&str, &str)],
        initial: Option<&Snapshot>,
    ) -> Self {
        if let Some(snapshot) = initial {
            let mut conn = redis.connection().await;
            let _: () = conn
                .set(keys::TOP, serde_json::to_string(snapshot).unwrap())
                .await
                .unwrap();
        }
        let mut pairs = vec![("REDIS_URL", redis_url)];
        pairs.extend_from_slice(extra);
        Self::launch(redis, &pairs).await
    }

    /// Publishes a snapshot as the merger does.
    pub async fn publish(&self, snapshot: &Snapshot) -> usize {
        let mut conn = self.redis.connection().await;
        let json = serde_json::to_string(snapshot).unwrap();
        let (_, receivers): ((), usize) = redis::pipe()
            .atomic()
            .set(keys::TOP, &json)
            .publish(keys::EVENTS_CHANNEL, &json)
            .query_async(&mut conn)
            .await
            .unwrap();
        receivers
    }
}

impl TestApp<RedisCluster> {
    /// Starts a 3-master cluster (optionally with a snapshot already in `{sb}:top`) and the server with
    /// `REDIS_CLUSTER=true` and every node as a seed, and waits until it has subscribed.
    pub async fn spawn_on_cluster(extra: &[(&str, &str)], initial: Option<&Snapshot>) -> Self {
        Self::spawn_on(RedisCluster::start(3), false, extra, initial).await
    }

    /// As [`TestApp::spawn_on_cluster`], on a TLS cluster reached with `rediss://` seeds and its CA.
    pub async fn spawn_on_tls_cluster(extra: &[(&str, &str)], initial: Option<&Snapshot>) -> Self {
        Self::spawn_on(RedisCluster::start_tls(3), true, extra, initial).await
    }

    async fn spawn_on(
        redis: RedisCluster,
        tls: bool,
        extra: &[(&str, &str)],
        initial: Option<&Snapshot>,
    ) -> Self {
        if let Some(snapshot) = initial {
            let mut conn = redis.connection().await;
            let _: () = conn
                .set(keys::TOP, serde_json::to_string(snapshot).unwrap())
                .await
                .unwrap();
        }
        let url = if tls { redis.tls_url() } else { redis.url() };
        let ca = scoreboard_testkit::fixture_path(RedisCluster::TLS_CA)
            .display()
            .to_string();
        let mut pairs = vec![("REDIS_URL", url.as_str()), ("REDIS_CLUSTER", "true")];
        if tls {
            pairs.push(("REDIS_CA_CERT_FILE", ca.as_str()));
        }
        pairs.extend_from_slice(extra);
        let app = Self::launch(redis, &pairs).await;
        app.wait_health(|h| h["subscribed"] == true).await;
        app
    }

    /// Publishes a snapshot as the merger does on a cluster: `SET {sb}:top` and `SPUBLISH {sb}:events` in
    /// one script on the slot's master (sharded Pub/Sub reaches the subscribers of that shard only).
    /// Returns the receivers `SPUBLISH` counted.
    pub async fn publish(&self, snapshot: &Snapshot) -> usize {
        let mut conn = self.redis.connection().await;
        let json = serde_json::to_string(snapshot).unwrap();
        redis::Script::new(
            "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('SPUBLISH', KEYS[2], ARGV[1])",
        )
        .key(keys::TOP)
        .key(keys::EVENTS_CHANNEL)
        .arg(&json)
        .invoke_async(&mut conn)
        .await
        .unwrap()
    }
}

impl<R> TestApp<R> {
    /// Starts the server with `redis_env` (`REDIS_URL`, …) and the test secret on port 0, without waiting
    /// for the subscription.
    async fn launch(redis: R, redis_env: &[(&str, &str)]) -> Self {
        let mut pairs = vec![("JWT_SECRET", SECRET), ("BIND_ADDR", "127.0.0.1:0")];
        pairs.extend_from_slice(redis_env);
        let config = SseConfig::from_env(&Env::from_pairs(pairs)).expect("valid test config");
        let state = AppState::new(config).expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let metrics_base = format!("http://{}", metrics_listener.local_addr().unwrap());
        let (stop, shutdown) = Shutdown::new();
        let server = tokio::spawn(scoreboard_sse::run_with_metrics(
            listener,
            metrics_listener,
            state,
            shutdown,
        ));
        Self {
            base,
            metrics_base,
            redis,
            http: reqwest::Client::new(),
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Polls `/healthz` until `check` holds (bounded).
    pub async fn wait_health(
        &self,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(resp) = self.http.get(format!("{}/healthz", self.base)).send().await
                && let Ok(body) = resp.json::<serde_json::Value>().await
                && check(&body)
            {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "health condition not reached in {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `/healthz` until it answers `status` with a body for which `check` holds (bounded by `limit`);
    /// returns the body.
    pub async fn wait_health_status(
        &self,
        status: u16,
        limit: Duration,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + limit;
        let mut last = None;
        loop {
            if let Ok(resp) = self.http.get(format!("{}/healthz", self.base)).send().await {
                let code = resp.status().as_u16();
                if let Ok(body) = resp.json::<serde_json::Value>().await {
                    if code == status && check(&body) {
                        return body;
                    }
                    last = Some((code, body));
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/healthz did not answer {status} in {limit:?}; last: {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /metrics` on the metrics listener.
    pub async fn metrics(&self) -> String {
        let resp = self
            .http
            .get(format!("{}/metrics", self.metrics_base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }

    pub fn events_url(&self) -> String {
        format!("{}/api/v1/scores/events", self.base)
    }

    /// Opens a stream with a bearer token.
    pub async fn connect(&self, token: &str) -> SseClient {
        let resp = self
            .http
            .get(self.events_url())
            .bearer_auth(token)
            .send()
            .await
            .expect("connect");
        SseClient::from_response(resp)
    }

    /// Triggers shutdown and waits (bounded) for `run` to return.
    pub async fn shutdown(&mut self) -> Duration {
        let started = tokio::time::Instant::now();
        self.stop.take().expect("not stopped yet").trigger();
        let server = self.server.take().unwrap();
        tokio::time::timeout(WAIT, server)
            .await
            .expect("server stops within the bound")
            .unwrap()
            .unwrap();
        started.elapsed()
    }
}

impl<R> Drop for TestApp<R> {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// The value of the unlabelled counter or gauge `name` in a Prometheus text exposition (0 when absent).
pub fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

/// Everything the process logs (`tracing`, every level), for assertions on log lines. One per test
/// process: it installs the global subscriber.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Installs the global subscriber writing here.
    pub fn install() -> Self {
        let logs = Self::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        logs
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An HS256 token for `sub` (named `sub`) signed with `secret`, expiring `exp_offset` seconds from now
/// (negative: already expired).
pub fn token_with(sub: &str, secret: &str, exp_offset: i64) -> String {
    scoreboard_testkit::token::hs256_with(
        secret,
        &scoreboard_testkit::token::claims(sub, sub, exp_offset),
    )
}

/// An HS256 token for `sub` (named `sub`) under the test secret, valid for an hour.
pub fn token(sub: &str) -> String {
    scoreboard_testkit::token::hs256(SECRET, sub, sub)
}

/// A snapshot at `version` whose leader scored `version * 10`.
pub fn snapshot(version: u64) -> Snapshot {
    Snapshot {
        version,
        updated_at: "2026-01-01T00:00:00Z".into(),
        entries: vec![Entry {
            rank: 1,
            user_id: "u1".into(),
            name: "Ann".into(),
            score: version * 10,
        }],
    }
}

/// One SSE message as parsed from the wire.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Message {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: Option<String>,
    pub retry: Option<u64>,
    pub comment: Option<String>,
}

impl Message {
    pub fn version(&self) -> Option<u64> {
        self.id.as_deref().and_then(|id| id.parse().ok())
    }

    pub fn snapshot(&self) -> Snapshot {
        serde_json::from_str(self.data.as_deref().expect("data")).expect("snapshot json")
    }
}

/// Reads an SSE response body message by message.
pub struct SseClient {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: String,
}

impl SseClient {
    pub fn from_response(resp: reqwest::Response) -> Self {
        Self {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.bytes_stream().map(|r| r.map(|b| b.to_vec())).boxed(),
            buffer: String::new(),
        }
    }

    /// The next message, or `None` when the stream ended or `limit` passed.
    pub async fn next_within(&mut self, limit: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&raw));
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Some(Err(_)) | None) | Err(_) => return None,
            }
        }
    }

    /// The next `leaderboard` event (skipping retry hints and heartbeats), bounded.
    pub async fn next_snapshot(&mut self, limit: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.next_within(left).await?;
            if message.event.as_deref() == Some("leaderboard") {
                return Some(message);
            }
        }
    }

    /// Reads snapshots until one has `version` (bounded); returns the versions seen on the way.
    pub async fn until_version(&mut self, version: u64, limit: Duration) -> Vec<u64> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(message) = self.next_snapshot(left).await else {
                panic!("version {version} not received within {limit:?}; saw {seen:?}");
            };
            let v = message.version().expect("numeric id");
            seen.push(v);
            if v >= version {
                return seen;
            }
        }
    }
}

fn parse(raw: &str) -> Message {
    let mut message = Message::default();
    for line in raw.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            message.comment = Some(comment.trim().to_owned());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        match field {
            "event" => message.event = Some(value),
            "id" => message.id = Some(value),
            "data" => {
                message.data = Some(match message.data.take() {
                    Some(prev) => format!("{prev}\n{value}"),
                    None => value,
                });
            }
            "retry" => message.retry = value.parse().ok(),
            _ => {}
        }
    }
    message
}
