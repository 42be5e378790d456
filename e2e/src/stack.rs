//! The whole stack as processes on loopback ports, started in dependency order and checked at each step:
//! Redis (one standalone server, or a 3-master Redis Cluster from the test kit) and the MongoDB-protocol
//! server, then the functions (warmed up, since the emulator compiles on first call), the worker and the
//! SSE server. The one way the stack starts: the end-to-end tests use it on free ports and a temp dir,
//! `make dev` (the `scoreboard-dev` binary) on fixed ports and `.dev/`. On a cluster every component —
//! both functions, the worker, the SSE server — gets `REDIS_CLUSTER=true` and the nodes as seeds.

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use scoreboard_testkit::{RedisCluster, free_port};

use crate::options::{CLUSTER_MASTERS, StackOptions, StateDir, bin_dir, workspace_root};
use crate::proc::{Proc, eventually};

const SECRET: &str = "e2e-secret-0123456789abcdef0123456789";
/// The emulator compiles each function on its first call; a cold build can take minutes.
const WARM_UP: Duration = Duration::from_secs(600);

/// AOF with an fsync before every acknowledgement: the durability the contract asks of a Redis without
/// replicas (§5.4), on the standalone server and on every cluster master alike.
pub const DURABLE_REDIS: [&str; 6] = [
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
];

/// The stack's Redis: one server, or a cluster (its nodes stop when it drops).
#[derive(Debug)]
enum Redis {
    Standalone(Proc),
    Cluster(RedisCluster),
}

/// A running stack. Dropping it stops every process.
#[derive(Debug)]
pub struct Stack {
    /// `redis://127.0.0.1:<port>`; on a cluster every node's URL, comma-separated (the `REDIS_URL` seeds).
    pub redis_url: String,
    /// Whether the stack runs on a Redis Cluster (`REDIS_CLUSTER=true` for every component).
    pub redis_cluster: bool,
    pub secret: String,
    pub sse_base: String,
    /// `http://127.0.0.1:<port>/lambda-url`.
    pub functions_base: String,
    /// `http://127.0.0.1:<port>` of the worker's `/healthz` and `/metrics`.
    pub worker_base: String,
    /// `http://127.0.0.1:<port>` of the SSE server's private `/metrics` listener (`METRICS_ADDR`).
    pub sse_metrics_base: String,
    pub mongo_uri: String,
    pub database: String,
    pub http: reqwest::Client,
    // Dropped in reverse start order: SSE, worker, functions, MongoDB server, Redis.
    sse: Option<Proc>,
    worker: Option<Proc>,
    functions: Option<Proc>,
    mongo: Option<Proc>,
    redis: Option<Redis>,
    dir: StateDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        drop(self.sse.take());
        drop(self.worker.take());
        drop(self.functions.take());
        drop(self.mongo.take());
        drop(self.redis.take());
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
        let dir = match &options.state_dir {
            Some(path) => {
                std::fs::create_dir_all(path).expect("create the state dir");
                StateDir::Kept(path.clone())
            }
            None => StateDir::Temp(tempfile::tempdir().expect("temp dir")),
        };
        let dir_path = dir.path().to_owned();
        let secret = options
            .jwt_secret
            .clone()
            .unwrap_or_else(|| SECRET.to_owned());
        let ports = options.ports;

        let (redis, redis_url) = if options.redis_cluster {
            step(&format!(
                "starting a Redis Cluster ({CLUSTER_MASTERS} masters)"
            ));
            let cluster = RedisCluster::start_with(CLUSTER_MASTERS, 0, &DURABLE_REDIS);
            let url = cluster.url();
            (Redis::Cluster(cluster), url)
        } else {
            step("starting redis-server");
            let redis_port = ports.redis.unwrap_or_else(free_port);
            let redis_dir = dir_path.join("redis");
            std::fs::create_dir_all(&redis_dir).expect("create the redis dir");
            let mut redis_cmd = Command::new("redis-server");
            redis_cmd
                .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
                .arg("--dir")
                .arg(&redis_dir)
                .args(DURABLE_REDIS)
                .args(["--daemonize", "no"]);
            let mut redis = Proc::spawn("redis-server", redis_cmd, &dir_path.join("redis.log"));
            redis.wait_port(redis_port, Duration::from_secs(10));
            (
                Redis::Standalone(redis),
                format!("redis://127.0.0.1:{redis_port}"),
            )
        };
        let redis_cluster = options.redis_cluster.to_string();
        step("redis up; starting nx-27017");

        let mongo_port = ports.mongo.unwrap_or_else(free_port);
        let mut mongo_cmd = Command::new(venv.join("nx-27017"));
        mongo_cmd.args(["--host", "127.0.0.1", "-p", &mongo_port.to_string()]);
        mongo_cmd.arg("--db").arg(dir_path.join("mongo.db"));
        mongo_cmd.arg("--pid-file").arg(dir_path.join("nx.pid"));
        mongo_cmd
            .arg("--log-file")
            .arg(dir_path.join("nx-server.log"));
        let mut mongo = Proc::spawn("nx-27017", mongo_cmd, &dir_path.join("mongo.log"));
        mongo.wait_port(mongo_port, Duration::from_secs(30));
        let mongo_uri = format!("mongodb://127.0.0.1:{mongo_port}");
        let database = "scoreboard_e2e".to_owned();

        step("nx-27017 up; starting cargo lambda watch");
        let lambda_port = ports.functions.unwrap_or_else(free_port);
        let env_file = dir_path.join("functions.env");
        let mut env_lines = vec![
            format!("REDIS_URL={redis_url}"),
            format!("REDIS_CLUSTER={redis_cluster}"),
            format!("JWT_SECRET={secret}"),
            format!(
                "RUST_LOG={}",
                options.functions_log.as_deref().unwrap_or("warn")
            ),
        ];
        env_lines.extend(
            options
                .functions_env
                .iter()
                .map(|(k, v)| format!("{k}={v}")),
        );
        write_private(&env_file, &(env_lines.join("\n") + "\n"));
        let mut watch = Command::new(venv.join("cargo-lambda"));
        watch
            .current_dir(&root)
            .args(["lambda", "watch", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &lambda_port.to_string()])
            .arg("--env-file")
            .arg(&env_file);
        if !options.watch_changes {
            watch.arg("--ignore-changes");
        }
        if let Some(concurrency) = options.functions_concurrency {
            watch.args(["--concurrency", &concurrency.to_string()]);
        }
        if let Some(profile) = &options.functions_profile {
            watch.args(["--profile", profile]);
        }
        let mut functions = Proc::spawn("cargo lambda watch", watch, &dir_path.join("lambda.log"));
        functions.wait_port(lambda_port, Duration::from_secs(60));
        let functions_base = format!("http://127.0.0.1:{lambda_port}/lambda-url");

        step("emulator up; starting the worker");
        let worker_port = ports.worker.unwrap_or_else(free_port);
        let mut worker_cmd = Command::new(bin_dir().join("scoreboard-worker"));
        worker_cmd
            .env("REDIS_URL", &redis_url)
            .env("REDIS_CLUSTER", &redis_cluster)
            .env("STORE", "mongodb")
            .env("MONGODB_URI", &mongo_uri)
            .env("MONGODB_DATABASE", &database)
            .env("METRICS_ADDR", format!("127.0.0.1:{worker_port}"))
            .env("RUST_LOG", "info")
            .envs(options.worker_env.iter().map(|(k, v)| (k, v)));
        let mut worker = Proc::spawn("worker", worker_cmd, &dir_path.join("worker.log"));
        worker.wait_port(worker_port, Duration::from_secs(60));

        step("worker up; starting the SSE server");
        let sse_port = ports.sse.unwrap_or_else(free_port);
        let sse_base = format!("http://127.0.0.1:{sse_port}");
        let sse_metrics_port = ports.sse_metrics.unwrap_or_else(free_port);
        let mut sse_cmd = Command::new(bin_dir().join("scoreboard-sse"));
        sse_cmd
            .env("BIND_ADDR", format!("127.0.0.1:{sse_port}"))
            .env("METRICS_ADDR", format!("127.0.0.1:{sse_metrics_port}"))
            .env("REDIS_URL", &redis_url)
            .env("REDIS_CLUSTER", &redis_cluster)
            .env("JWT_SECRET", &secret)
            .env("DEV_MODE", "true")
            .env(
                "DEV_UPDATE_URL",
                format!("{functions_base}/update/api/v1/scores/update"),
            )
            .env("SSE_MAX_CONNECTIONS_PER_USER", "1000")
            .env("RUST_LOG", "info")
            .envs(options.sse_env.iter().map(|(k, v)| (k, v)));
        let mut sse = Proc::spawn("sse", sse_cmd, &dir_path.join("sse.log"));
        sse.wait_port(sse_port, Duration::from_secs(30));

        let stack = Self {
            redis_url,
            redis_cluster: options.redis_cluster,
            secret,
            worker_base: format!("http://127.0.0.1:{worker_port}"),
            sse_base,
            sse_metrics_base: format!("http://127.0.0.1:{sse_metrics_port}"),
            functions_base,
            mongo_uri,
            database,
            http: reqwest::Client::new(),
            sse: Some(sse),
            worker: Some(worker),
            functions: Some(functions),
            mongo: Some(mongo),
            redis: Some(redis),
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
        scoreboard_testkit::token::hs256(&self.secret, sub, name)
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

    /// The stack's Redis Cluster (to move slots or fail masters over), `None` on standalone Redis.
    pub fn cluster(&self) -> Option<&RedisCluster> {
        match &self.redis {
            Some(Redis::Cluster(cluster)) => Some(cluster),
            _ => None,
        }
    }

    /// Logs of every component, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        match &self.redis {
            Some(Redis::Standalone(redis)) => {
                out.push_str(&format!("---- {redis:?}\n{}\n", redis.log_tail()));
            }
            Some(Redis::Cluster(cluster)) => {
                out.push_str(&format!(
                    "---- redis cluster: masters {:?} (seeds {})\n",
                    cluster.master_ports(),
                    self.redis_url
                ));
            }
            None => {}
        }
        for proc in [&self.mongo, &self.functions, &self.worker, &self.sse]
            .into_iter()
            .flatten()
        {
            out.push_str(&format!("---- {proc:?}\n{}\n", proc.log_tail()));
        }
        out
    }

    /// A demo token from the SSE server's dev endpoint (`POST /dev/token`).
    ///
    /// # Panics
    /// When the endpoint does not answer with a token.
    pub async fn dev_token(&self, name: &str) -> String {
        let answer: serde_json::Value = self
            .http
            .post(format!("{}/dev/token", self.sse_base))
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("dev token endpoint answers")
            .json()
            .await
            .expect("dev token JSON");
        answer["token"]
            .as_str()
            .expect("a token in the answer")
            .to_owned()
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

    /// The directory of the stack's logs and data (a scratch dir for tests).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The first component that has exited, if any, with its log's tail.
    pub fn exited(&mut self) -> Option<String> {
        if let Some(Redis::Standalone(redis)) = &mut self.redis
            && !redis.is_running()
        {
            return Some(format!("{redis:?} exited; log:\n{}", redis.log_tail()));
        }
        if let Some(Redis::Cluster(cluster)) = &mut self.redis
            && let Some(node) = cluster
                .nodes()
                .iter()
                .find(|node| TcpStream::connect(("127.0.0.1", node.port())).is_err())
        {
            return Some(format!(
                "the Redis Cluster node on port {} stopped answering",
                node.port()
            ));
        }
        [
            &mut self.mongo,
            &mut self.functions,
            &mut self.worker,
            &mut self.sse,
        ]
        .into_iter()
        .flatten()
        .find_map(|proc| {
            (!proc.is_running()).then(|| format!("{proc:?} exited; log:\n{}", proc.log_tail()))
        })
    }
}

/// Progress on stderr (shown for failing tests), with the time since the first step, so a slow start says
/// where it is.
fn step(what: &str) {
    static START: OnceLock<Instant> = OnceLock::new();
    let since = START.get_or_init(Instant::now).elapsed();
    eprintln!("e2e: [{:>6.1}s] {what}", since.as_secs_f64());
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

/// Writes a file only its owner can read (it holds the JWT secret).
fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("create env file");
    file.write_all(text.as_bytes()).expect("write env file");
}
