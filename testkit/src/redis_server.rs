//! A real `redis-server` per test (or suite): free port, own temp dir, no persistence unless asked.

use std::time::Duration;

use tempfile::TempDir;

use crate::process::{ServerProcess, find_binary, free_port};

const INSTALL_HINT: &str = "install it with `make setup` (Debian: apt-get install -y redis-server)";

/// A running `redis-server`, stopped when dropped.
#[derive(Debug)]
pub struct RedisServer {
    process: ServerProcess,
    _dir: TempDir,
}

impl RedisServer {
    /// Starts a server without persistence.
    ///
    /// # Panics
    /// When `redis-server` is missing or does not start.
    pub fn start() -> Self {
        Self::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// Starts a server with extra arguments (e.g. AOF for durability tests).
    ///
    /// # Panics
    /// When `redis-server` is missing or does not start.
    pub fn start_with(extra: &[&str]) -> Self {
        let binary = find_binary("redis-server", "REDIS_SERVER_BIN", INSTALL_HINT);
        let dir = tempfile::tempdir().expect("temp dir for redis");
        let port = free_port();
        let mut args = vec![
            "--port".to_owned(),
            port.to_string(),
            "--bind".to_owned(),
            "127.0.0.1".to_owned(),
            "--dir".to_owned(),
            dir.path().display().to_string(),
            "--daemonize".to_owned(),
            "no".to_owned(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let log = dir.path().join("redis.log");
        let process = ServerProcess::start(
            "redis-server",
            &binary,
            &args,
            port,
            &log,
            Duration::from_secs(10),
        );
        Self { process, _dir: dir }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.process.port())
    }

    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// A client for direct inspection in tests.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("redis url")
    }

    /// A multiplexed async connection for direct inspection in tests.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .expect("connect to test redis")
    }

    /// Kills the server (outage simulation).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Restarts on the same port (data is lost unless persistence was configured) and returns once the
    /// server answers `PING`: a server still loading its AOF or RDB listens but refuses commands.
    ///
    /// # Panics
    /// When it does not answer within 30 s.
    pub fn restart(&mut self) {
        self.process.restart(Duration::from_secs(10));
        let client = self.client();
        let answers = crate::process::wait_until(Duration::from_secs(30), || {
            client
                .get_connection_with_timeout(Duration::from_secs(1))
                .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection))
                .is_ok()
        });
        assert!(answers, "redis-server did not finish loading within 30 s");
    }
}
