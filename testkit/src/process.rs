//! Spawning a server process, waiting (bounded) until it accepts connections, and killing it on drop.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on loopback (bound then released; the caller starts its server on it right away).
pub fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral loopback port");
    listener.local_addr().expect("local addr").port()
}

/// Polls `check` every 20 ms until it is true or `timeout` passes; returns whether it became true.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Why a child never came up on its port.
#[derive(Debug)]
pub enum NotListening {
    /// The process exited first.
    Exited(ExitStatus),
    /// The port stayed closed past the timeout.
    TimedOut,
}

/// Waits (bounded) until `port` on loopback accepts TCP connections, or `child` exits.
///
/// # Errors
/// [`NotListening`] when the child exits first or the timeout passes.
pub fn wait_for_port(child: &mut Child, port: u16, timeout: Duration) -> Result<(), NotListening> {
    let mut exited = None;
    let up = wait_until(timeout, || {
        if let Ok(Some(status)) = child.try_wait() {
            exited = Some(status);
            return true;
        }
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
    });
    match (exited, up) {
        (Some(status), _) => Err(NotListening::Exited(status)),
        (None, true) => Ok(()),
        (None, false) => Err(NotListening::TimedOut),
    }
}

/// Finds `name` on `PATH` (or takes `override_var` when set).
///
/// # Panics
/// When the binary is missing, with `install_hint` in the message.
pub fn find_binary(name: &str, override_var: &str, install_hint: &str) -> PathBuf {
    if let Ok(path) = std::env::var(override_var) {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` not found on PATH (or ${override_var}): {install_hint}")
        })
}

/// A child server process listening on a loopback port; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    name: String,
    port: u16,
    command: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl ServerProcess {
    /// Starts `program args…`, logging to `log`, and waits until `port` accepts TCP connections.
    ///
    /// # Panics
    /// When the process cannot be spawned, exits early, or does not listen within `timeout`.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[String],
        port: u16,
        log: &Path,
        timeout: Duration,
    ) -> Self {
        let mut command = vec![program.display().to_string()];
        command.extend(args.iter().cloned());
        let mut server = Self {
            name: name.to_owned(),
            port,
            command,
            log: log.to_owned(),
            child: None,
        };
        server.spawn(timeout);
        server
    }

    fn spawn(&mut self, timeout: Duration) {
        let log = std::fs::File::create(&self.log).expect("create server log");
        let err_log = log.try_clone().expect("clone log handle");
        let mut child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name));
        let port = self.port;
        match wait_for_port(&mut child, port, timeout) {
            Ok(()) => {}
            Err(NotListening::Exited(status)) => panic!(
                "{} exited at start-up ({status}); log:\n{}",
                self.name,
                self.log_tail()
            ),
            Err(NotListening::TimedOut) => {
                let _ = child.kill();
                panic!(
                    "{} did not listen on port {port} within {timeout:?}; log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
        }
        self.child = Some(child);
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (simulating an outage). Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same arguments.
    ///
    /// # Panics
    /// As [`ServerProcess::start`].
    pub fn restart(&mut self, timeout: Duration) {
        self.stop();
        self.spawn(timeout);
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
