//! A child process in its own process group, logging to a file, stopped on drop — and also when the test
//! process dies without dropping it (a nextest timeout kills it): a shell leader runs the server beside a
//! watchdog that reads the test's pipe and stops the whole group when the pipe closes.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use scoreboard_testkit::{NotListening, wait_for_port, wait_until};

/// A running child process group.
#[derive(Debug)]
pub struct Proc {
    name: String,
    log: PathBuf,
    child: Child,
    /// Closing this (drop, or the test process dying) stops the group.
    _lifeline: Option<ChildStdin>,
}

/// Runs `"$@"` in the background, stops the group when stdin closes, and exits with the server's status.
/// (Background jobs of a non-interactive shell get `/dev/null` as stdin, hence the copy on fd 3.)
const WATCHDOG: &str = r#"exec 3<&0
"$@" </dev/null 3<&- & server=$!
{ cat <&3 >/dev/null; kill -TERM 0; } &
exec 3<&-
wait "$server""#;

impl Proc {
    /// Spawns `command` (stdout and stderr to `log`) in a new process group.
    ///
    /// # Panics
    /// When the program cannot be spawned.
    pub fn spawn(name: &str, command: Command, log: &Path) -> Self {
        let out = std::fs::File::create(log).expect("create log");
        let err = out.try_clone().expect("clone log");
        let mut wrapped = Command::new("sh");
        wrapped
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(command.get_program())
            .args(command.get_args())
            .envs(
                command
                    .get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            );
        if let Some(dir) = command.get_current_dir() {
            wrapped.current_dir(dir);
        }
        let mut child = wrapped
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        let lifeline = child.stdin.take();
        Self {
            name: name.to_owned(),
            log: log.to_owned(),
            child,
            _lifeline: lifeline,
        }
    }

    /// Waits (bounded) until `port` accepts TCP connections.
    ///
    /// # Panics
    /// When the process exits first or the port stays closed past `timeout`, with the log's tail.
    pub fn wait_port(&mut self, port: u16, timeout: Duration) {
        match wait_for_port(&mut self.child, port, timeout) {
            Ok(()) => {}
            Err(NotListening::Exited(status)) => panic!(
                "{} exited at start-up ({status}); log:\n{}",
                self.name,
                self.log_tail()
            ),
            Err(NotListening::TimedOut) => panic!(
                "{} did not listen on {port} within {timeout:?}; log:\n{}",
                self.name,
                self.log_tail()
            ),
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `TERM`) to the whole group.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([
                format!("-{signal}"),
                "--".into(),
                format!("-{}", self.child.id()),
            ])
            .status();
    }

    /// The last 40 lines of the log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.is_running() {
            self.signal("TERM");
            if !wait_until(Duration::from_secs(3), || !self.is_running()) {
                self.signal("KILL");
            }
        }
        // Helpers left in the group (if the leader went first) get a KILL too.
        self.signal("KILL");
        let _ = self.child.wait();
    }
}

/// Polls `check` every 50 ms until it is true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
