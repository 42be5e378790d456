//! How a stack is started (standalone Redis or a Redis Cluster, ports, state dir, secret, extra
//! environment) and where its binaries and the workspace are: the knobs the tests and `make dev` turn
//! differently.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// The workspace root (where `Cargo.toml`, `.tools/` and `target/` live).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ has a parent")
        .to_owned()
}

/// Where `cargo build` puts binaries for the running profile (`target/debug`): a test runs from
/// `target/debug/deps/<test>`, the dev binary from `target/debug/scoreboard-dev`.
pub(crate) fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("binary has a directory");
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.parent().expect("deps has a parent").to_owned()
    } else {
        dir.to_owned()
    }
}

/// Masters of the stack's Redis Cluster (no replicas: like the standalone server, each master is
/// durable through AOF `appendfsync always`).
pub const CLUSTER_MASTERS: usize = 3;

/// Fixed ports; `None` takes a free one.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ports {
    /// The standalone Redis (a cluster's nodes always take free ports).
    pub redis: Option<u16>,
    pub mongo: Option<u16>,
    pub functions: Option<u16>,
    pub worker: Option<u16>,
    pub sse: Option<u16>,
    /// The SSE server's private metrics listener.
    pub sse_metrics: Option<u16>,
}

/// How to start the stack. The default is the tests': free ports, a temp dir, a fixed test secret,
/// quiet functions, no rebuild on source changes.
#[derive(Debug, Default, Clone)]
pub struct StackOptions {
    /// Run on a local Redis Cluster of [`CLUSTER_MASTERS`] masters instead of one standalone server: every
    /// component gets `REDIS_CLUSTER=true` and the nodes' URLs as `REDIS_URL` seeds.
    pub redis_cluster: bool,
    /// Extra environment for the components (e.g. a higher rate limit for load).
    pub functions_env: Vec<(String, String)>,
    pub worker_env: Vec<(String, String)>,
    pub sse_env: Vec<(String, String)>,
    pub ports: Ports,
    /// Where logs and data live (kept); `None`: a temp dir removed with the stack.
    pub state_dir: Option<PathBuf>,
    /// The HS256 secret every component verifies with; `None`: the test secret.
    pub jwt_secret: Option<String>,
    /// `RUST_LOG` of the functions (default `warn`).
    pub functions_log: Option<String>,
    /// Let `cargo lambda watch` rebuild the functions when their sources change (dev).
    pub watch_changes: bool,
    /// Concurrent instances per function in the emulator (`cargo lambda watch --concurrency`; its
    /// default, 1, serialises every call, unlike Lambda).
    pub functions_concurrency: Option<u16>,
    /// The cargo profile the emulator builds the functions with (default: the dev profile).
    pub functions_profile: Option<String>,
}

/// Where the stack keeps its files: a caller's directory, or a temp dir removed on drop.
#[derive(Debug)]
pub(crate) enum StateDir {
    Kept(PathBuf),
    Temp(TempDir),
}

impl StateDir {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Self::Kept(path) => path,
            Self::Temp(dir) => dir.path(),
        }
    }
}
