//! The whole stack as processes on free loopback ports, started in dependency order and checked at each
//! step: Redis and the MongoDB-protocol server, then the functions (warmed up, since the emulator compiles on
//! first call), the worker and the SSE server.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use scoreboard_testkit::{RedisServer, free_port};
use tempfile::TempDir;

use crate::proc::{Proc, eventually};
use crate::token::mint;

const SECRET: &str = "e2e-secret-0123456789abcdef0123456789";
/// The emulator compiles each function on its first call; a cold build can take minutes.
const WARM_UP: Duration = Duration::from_secs(600);

/// The workspace root (where `Cargo.toml`, `.tools/` and `target/` live).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ has a parent")
        .to_owned()
}

/// Where `cargo build` puts binaries for the running test's profile (`target/debug`).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/debug/deps/<test> → target/debug
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps")
        .to_owned()
}

/// Extra environment for the components (e.g. a higher rate limit for load).
#[derive(Debug, Default, Clone)]
pub struct StackOptions {
    pub functions_env: Vec<(String, String)>,
    pub worker_env: Vec<(String, String)>,
    pub sse_env: Vec<(String, String)>,
}

/// A running stack. Dropping it stops every process.
#[derive(Debug)]
pub struct Stack {
    pub redis: RedisServer,
    pub secret: String,
    pub sse_base: String,
    /// `http://127.0.0.1:<port>/lambda-url`.
    pub functions_base: String,
    pub mongo_uri: String,
    pub database: String,
    pub http: reqwest::Client,
    // Dropped in reverse start order: SSE, worker, functions, MongoDB server.
    sse: Option<Proc>,
    worker: Option<Proc>,
    functions: Option<Proc>,
    mongo: Option<Proc>,
    dir: TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        drop(self.sse.take());
        drop(self.worker.take());
        drop(self.functions.take());
        drop(self.mongo.take());
    }
}

impl Stack {
    /// Builds the binaries and starts everything.
    ///
    /// # Panics
    /// When a build fails or a component does not come up, with its log.
    pub async fn start(options: StackOptions) -> Self {
        scoreboard_shared::tls::install_crypto_provider();
        build_binaries();
        let root = workspace_root();
        let venv = root.join(".tools/venv/bin");
        let dir = tempfile::tempdir().expect("temp dir");
        let redis = RedisServer::start();
        step("redis up; starting nx-27017");

        let mongo_port = free_port();
        let mut mongo_cmd = Command::new(venv.join("nx-27017"));
        mongo_cmd.args(["--host", "127.0.0.1", "-p", &mongo_port.to_string()]);
        mongo_cmd.arg("--db").arg(dir.path().join("mongo.db"));
        mongo_cmd.arg("--pid-file").arg(dir.path().join("nx.pid"));
        mongo_cmd
            .arg("--log-file")
            .arg(dir.path().join("nx-server.log"));
        let mut mongo = Proc::spawn("nx-27017", mongo_cmd, &dir.path().join("mongo.log"));
        mongo.wait_port(mongo_port, Duration::from_secs(30));
        let mongo_uri = format!("mongodb://127.0.0.1:{mongo_port}");
        let database = "scoreboard_e2e".to_owned();

        step("nx-27017 up; starting cargo lambda watch");
        let lambda_port = free_port();
        let env_file = dir.path().join("functions.env");
        let mut env_lines = vec![
            format!("REDIS_URL={}", redis.url()),
            format!("JWT_SECRET={SECRET}"),
            "RUST_LOG=warn".to_owned(),
        ];
        env_lines.extend(
            options
                .functions_env
                .iter()
                .map(|(k, v)| format!("{k}={v}")),
        );
        std::fs::write(&env_file, env_lines.join("\n") + "\n").expect("write env file");
        let mut watch = Command::new(venv.join("cargo-lambda"));
        watch
            .current_dir(&root)
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &lambda_port.to_string()])
            .arg("--env-file")
            .arg(&env_file);
        let mut functions =
            Proc::spawn("cargo lambda watch", watch, &dir.path().join("lambda.log"));
        functions.wait_port(lambda_port, Duration::from_secs(60));
        let functions_base = format!("http://127.0.0.1:{lambda_port}/lambda-url");

        step("emulator up; starting the worker");
        let worker_port = free_port();
        let mut worker_cmd = Command::new(bin_dir().join("scoreboard-worker"));
        worker_cmd
            .env("REDIS_URL", redis.url())
            .env("STORE", "mongodb")
            .env("MONGODB_URI", &mongo_uri)
            .env("MONGODB_DATABASE", &database)
            .env("METRICS_ADDR", format!("127.0.0.1:{worker_port}"))
            .env("RUST_LOG", "info")
            .envs(options.worker_env.iter().map(|(k, v)| (k, v)));
        let mut worker = Proc::spawn("worker", worker_cmd, &dir.path().join("worker.log"));
        worker.wait_port(worker_port, Duration::from_secs(60));

        step("worker up; starting the SSE server");
        let sse_port = free_port();
        let sse_base = format!("http://127.0.0.1:{sse_port}");
        let mut sse_cmd = Command::new(bin_dir().join("scoreboard-sse"));
        sse_cmd
            .env("BIND_ADDR", format!("127.0.0.1:{sse_port}"))
            .env("REDIS_URL", redis.url())
            .env("JWT_SECRET", SECRET)
            .env("DEV_MODE", "true")
            .env(
                "DEV_UPDATE_URL",
                format!("{functions_base}/update/api/v1/scores/update"),
            )
            .env("SSE_MAX_CONNECTIONS_PER_USER", "1000")
            .env("RUST_LOG", "info")
            .envs(options.sse_env.iter().map(|(k, v)| (k, v)));
        let mut sse = Proc::spawn("sse", sse_cmd, &dir.path().join("sse.log"));
        sse.wait_port(sse_port, Duration::from_secs(30));

        let stack = Self {
            redis,
            secret: SECRET.to_owned(),
            sse_base,
            functions_base,
            mongo_uri,
            database,
            http: reqwest::Client::new(),
            sse: Some(sse),
            worker: Some(worker),
            functions: Some(functions),
            mongo: Some(mongo),
            dir,
        };
        stack.wait_sse_subscribed().await;
        step("SSE subscribed; warming up the functions");
        stack.warm_up_functions().await;
        step("stack ready");
        stack
    }

    /// A token for `sub` named `name`.
    pub fn token(&self, sub: &str, name: &str) -> String {
        mint(&self.secret, sub, name)
    }

    pub fn update_url(&self) -> String {
        format!("{}/update/api/v1/scores/update", self.functions_base)
    }

    pub fn leaderboard_url(&self) -> String {
        format!(
            "{}/leaderboard/api/v1/scores/leaderboard",
            self.functions_base
        )
    }

    pub fn events_url(&self) -> String {
        format!("{}/api/v1/scores/events", self.sse_base)
    }

    /// Logs of every component, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for proc in [&self.functions, &self.worker, &self.sse]
            .into_iter()
            .flatten()
        {
            out.push_str(&format!("---- {proc:?}\n{}\n", proc.log_tail()));
        }
        out
    }

    /// POSTs an update through the function URL; returns the status.
    pub async fn post_update(&self, token: &str, increment: u64) -> reqwest::StatusCode {
        self.http
            .post(self.update_url())
            .bearer_auth(token)
            .json(&serde_json::json!({ "scoreIncrement": increment }))
            .send()
            .await
            .expect("update function answers")
            .status()
    }

    async fn wait_sse_subscribed(&self) {
        let url = format!("{}/healthz", self.sse_base);
        let up = eventually(Duration::from_secs(30), || async {
            match self.http.get(&url).send().await {
                Ok(resp) => resp
                    .json::<serde_json::Value>()
                    .await
                    .is_ok_and(|h| h["subscribed"] == true),
                Err(_) => false,
            }
        })
        .await;
        assert!(up, "SSE server never subscribed; logs:\n{}", self.logs());
    }

    /// The emulator builds a function on its first call: call both once, patiently.
    async fn warm_up_functions(&self) {
        let token = self.token("warm-up", "Warm Up");
        let slow = reqwest::Client::builder()
            .timeout(WARM_UP)
            .build()
            .expect("client");
        let leaderboard = slow
            .get(self.leaderboard_url())
            .bearer_auth(&token)
            .send()
            .await
            .map(|r| r.status());
        assert!(
            matches!(leaderboard, Ok(s) if s.is_success()),
            "leaderboard function did not answer: {leaderboard:?}; logs:\n{}",
            self.logs()
        );
        // An empty body is refused (400) without enqueueing anything, but compiles the function.
        let update = slow
            .post(self.update_url())
            .bearer_auth(&token)
            .json(&serde_json::json!({}))
            .send()
            .await
            .map(|r| r.status());
        assert!(
            matches!(update, Ok(s) if s == 400),
            "update function did not answer: {update:?}; logs:\n{}",
            self.logs()
        );
    }

    /// A scratch directory that lives as long as the stack.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Progress on stderr (shown for failing tests), so a slow start says where it is.
fn step(what: &str) {
    eprintln!("e2e: {what}");
}

/// Builds every binary of the workspace (one cargo call; a no-op when they are fresh).
fn build_binaries() {
    step("cargo build --workspace --bins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "--workspace", "--bins"])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --workspace --bins failed");
}
