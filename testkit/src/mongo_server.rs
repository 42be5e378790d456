//! A MongoDB-protocol server per test: `nx-27017` (PyPI, MongoDB wire protocol on SQLite) on a free port
//! with its data, pid file and log in the test's own temp dir — or, when `MONGODB_URI` is set, a real
//! `mongod` at that URI with a fresh database name per instance so tests never share data.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{ServerProcess, free_port};

const INSTALL_HINT: &str = "run `make setup` (it installs nx-27017==0.8.1 into .tools/venv), \
                            or set NX_27017_BIN, or point MONGODB_URI at a real mongod";
/// nx-27017 is a Python process; its first start can take a few seconds on a loaded CI machine.
const START_TIMEOUT: Duration = Duration::from_secs(30);

static DATABASES: AtomicU32 = AtomicU32::new(0);

/// A MongoDB-protocol server for one test; a spawned one is stopped when dropped.
#[derive(Debug)]
pub struct MongoServer {
    uri: String,
    database: String,
    spawned: Option<(ServerProcess, TempDir)>,
}

impl MongoServer {
    /// A real `mongod` when `MONGODB_URI` is set, otherwise a fresh nx-27017.
    ///
    /// # Panics
    /// When nx-27017 is missing or does not start.
    pub fn start() -> Self {
        match std::env::var("MONGODB_URI") {
            Ok(uri) if !uri.trim().is_empty() => Self {
                uri,
                database: unique_database(),
                spawned: None,
            },
            _ => Self::spawn(),
        }
    }

    /// Always a fresh nx-27017 (tests that stop and restart the server need one they own).
    ///
    /// # Panics
    /// When nx-27017 is missing or does not start.
    pub fn spawn() -> Self {
        let binary = find_nx();
        let dir = tempfile::tempdir().expect("temp dir for nx-27017");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("create nx-27017 data dir");
        let port = free_port();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let args = vec![
            "--host".to_owned(),
            "127.0.0.1".to_owned(),
            "--port".to_owned(),
            port.to_string(),
            "--data-dir".to_owned(),
            data.display().to_string(),
            "--pid-file".to_owned(),
            path("nx-27017.pid"),
            "--log-file".to_owned(),
            path("nx-27017.log"),
        ];
        let process = ServerProcess::start(
            "nx-27017",
            &binary,
            &args,
            port,
            &dir.path().join("nx-27017.out"),
            START_TIMEOUT,
        );
        Self {
            uri: format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
            database: unique_database(),
            spawned: Some((process, dir)),
        }
    }

    /// The connection string (for a real `mongod`, whatever `MONGODB_URI` holds).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// A database name no other instance in this process uses.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Whether this is a spawned nx-27017 (and can be stopped and restarted).
    pub fn is_spawned(&self) -> bool {
        self.spawned.is_some()
    }

    /// Kills the server (outage simulation); its data stays on disk.
    ///
    /// # Panics
    /// For an external `mongod`, which a test cannot stop.
    pub fn stop(&mut self) {
        self.process().stop();
    }

    /// Starts the server again on the same port with the same data.
    ///
    /// # Panics
    /// For an external `mongod`, or when the server does not come back.
    pub fn restart(&mut self) {
        self.process().restart(START_TIMEOUT);
    }

    fn process(&mut self) -> &mut ServerProcess {
        match &mut self.spawned {
            Some((process, _)) => process,
            None => panic!("an external MONGODB_URI server cannot be stopped by a test"),
        }
    }
}

fn unique_database() -> String {
    let n = DATABASES.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("sbtest_{}_{n}_{nanos}", std::process::id())
}

/// `$NX_27017_BIN`, then `PATH`, then `.tools/venv/bin` of the workspace root.
fn find_nx() -> PathBuf {
    if let Ok(path) = std::env::var("NX_27017_BIN") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin");
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([venv])
        .map(|dir| dir.join("nx-27017"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("`nx-27017` not found on PATH or in .tools/venv/bin: {INSTALL_HINT}")
        })
}
