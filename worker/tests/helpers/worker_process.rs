//! The real `scoreboard-worker` binary as a child process, its output in a file, waited on with a
//! bound: for tests of how the process starts and stops (exit status, the message it leaves).

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use scoreboard_testkit::free_port;
use tempfile::TempDir;

/// A running (or exited) worker process; killed on drop.
#[derive(Debug)]
pub struct WorkerProcess {
    child: Child,
    log: PathBuf,
    started: Instant,
    _dir: TempDir,
    /// The environment it was started with, for [`WorkerProcess::restart`].
    env: Vec<(String, String)>,
    /// Where its `/healthz` and `/metrics` listen.
    metrics_addr: String,
}

impl WorkerProcess {
    /// Starts `scoreboard-worker run` with exactly `env` (plus a free `METRICS_ADDR` and `RUST_LOG=info`
    /// unless given), stdout and stderr in one log file.
    pub fn start(env: &[(String, String)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the worker log");
        let log = dir.path().join("worker.log");
        let out = std::fs::File::create(&log).expect("create the worker log");
        let metrics_addr = env
            .iter()
            .find(|(k, _)| k == "METRICS_ADDR")
            .map_or_else(|| format!("127.0.0.1:{}", free_port()), |(_, v)| v.clone());
        let mut command = Command::new(env!("CARGO_BIN_EXE_scoreboard-worker"));
        command
            .env_clear()
            .env("METRICS_ADDR", &metrics_addr)
            .env("RUST_LOG", "info")
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone the log handle"))
            .stderr(out);
        let started = Instant::now();
        let child = command.spawn().expect("start scoreboard-worker");
        Self {
            child,
            log,
            started,
            _dir: dir,
            env: env.to_vec(),
            metrics_addr,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `host:port` of its `/healthz` and `/metrics`.
    pub fn metrics_addr(&self) -> &str {
        &self.metrics_addr
    }

    /// The `WORKER_ID` it was started with, if one was given.
    pub fn worker_id(&self) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == "WORKER_ID")
            .map(|(_, v)| v.as_str())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("poll the worker").is_none()
    }

    /// `kill -9`: SIGKILL, then reaps the process (nothing runs after this returns).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `kill -TERM <pid>`: asks for a graceful shutdown; does not wait (see [`Self::exit_within`]).
    pub fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
    }

    /// Kills the process if it still runs (SIGKILL) and starts it again with the same environment,
    /// metrics address and log file (appended to, after a marker line).
    pub fn restart(&mut self) {
        self.kill9();
        let mut out = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .expect("open the worker log");
        let _ = std::io::Write::write_all(&mut out, b"----- restarted -----\n");
        let mut command = Command::new(env!("CARGO_BIN_EXE_scoreboard-worker"));
        command
            .env_clear()
            .env("METRICS_ADDR", &self.metrics_addr)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone the log handle"))
            .stderr(out);
        self.started = Instant::now();
        self.child = command.spawn().expect("restart scoreboard-worker");
    }

    /// `GET /metrics`, or `None` while the port does not answer.
    pub async fn metrics(&self) -> Option<String> {
        let url = format!("http://{}/metrics", self.metrics_addr);
        let response = reqwest::get(url).await.ok()?;
        response.text().await.ok()
    }

    /// The last `lines` lines of its output (for assertion messages).
    pub fn output_tail(&self, lines: usize) -> String {
        let output = self.output();
        let all: Vec<&str> = output.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Polls (every 50 ms, without blocking the runtime) until the process exits or `bound` has
    /// passed since it started; returns the exit status and how long it ran, or `None` if it still runs.
    pub async fn exit_within(&mut self, bound: Duration) -> Option<(ExitStatus, Duration)> {
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the worker") {
                return Some((status, self.started.elapsed()));
            }
            if self.started.elapsed() >= bound {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the process wrote so far (logs on stdout, the final error on stderr).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(key, value)` pairs as owned strings.
pub fn env_pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
