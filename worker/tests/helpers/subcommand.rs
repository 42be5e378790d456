//! A `scoreboard-worker` subcommand (`dlq list`, `dlq replay`, `rebuild`) run to completion as a child
//! process with a bound, its stdout and stderr kept apart (`dlq list` prints JSON lines on stdout).

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How a subcommand ended.
#[derive(Debug)]
pub struct SubcommandRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl SubcommandRun {
    /// Panics with the output unless the command exited 0.
    pub fn assert_success(&self, what: &str) -> &Self {
        assert!(
            self.status.success(),
            "{what} exited {:?}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `scoreboard-worker <args>` with exactly `env` (plus `RUST_LOG=warn` and, unless given, a
/// placeholder `MONGODB_URI`: these subcommands only talk to Redis, but the configuration is read
/// whole), polling without blocking the runtime; kills it and panics after `bound`.
pub async fn run_subcommand(
    args: &[&str],
    env: &[(String, String)],
    bound: Duration,
) -> SubcommandRun {
    let dir = tempfile::tempdir().expect("temp dir for the subcommand output");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let out = std::fs::File::create(&out_path).expect("create stdout file");
    let err = std::fs::File::create(&err_path).expect("create stderr file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_scoreboard-worker"));
    command.env_clear().env("RUST_LOG", "warn");
    if !env.iter().any(|(k, _)| k == "MONGODB_URI" || k == "STORE") {
        command.env("MONGODB_URI", "mongodb://127.0.0.1:9");
    }
    command
        .envs(env.iter().cloned())
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let started = Instant::now();
    let mut child = command.spawn().expect("start scoreboard-worker");
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the subcommand") {
            break status;
        }
        if started.elapsed() >= bound {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "scoreboard-worker {args:?} still ran after {bound:?}\nstdout:\n{}\nstderr:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    SubcommandRun {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        elapsed: started.elapsed(),
    }
}
