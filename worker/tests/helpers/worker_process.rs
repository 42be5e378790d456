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
}

impl WorkerProcess {
    /// Starts `scoreboard-worker run` with exactly `env` (plus a free `METRICS_ADDR` and `RUST_LOG=info`
    /// unless given), stdout and stderr in one log file.
    pub fn start(env: &[(String, String)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the worker log");
        let log = dir.path().join("worker.log");
        let out = std::fs::File::create(&log).expect("create the worker log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_scoreboard-worker"));
        command
            .env_clear()
            .env("METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
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
        }
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
