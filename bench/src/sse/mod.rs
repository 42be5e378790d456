//! `-- sse`: how far one SSE process goes. Prints (1) fan-out side by side with nginx + nchan (when installed
//! by `make bench-peers`): RSS per connection at 1k, 5k and 10k clients, the time for a new version to reach
//! every client (p50/p99), server CPU per 1,000 deliveries and the clients' own CPU, and (2) end-to-end
//! latency from the update's `202` to the SSE event at a steady 1,000 updates/s, with the update handler in
//! process and with the update function under the Lambda emulator. `-- sse e2e` runs (2) alone,
//! `-- sse e2e in-process` or `-- sse e2e emulator` one of its two paths.
//!
//! The SSE server runs as a child process (this binary re-executed with `--serve-sse`) and the worker as its
//! own binary (built with this profile), so RSS is the server's alone; clients are raw TCP readers here.
//!
//! This module owns what the SSE benchmarks share: the child processes (SSE server, worker), waiting for a
//! port, reading RSS, and the bench tokens (minted by the test kit). [`fanout`] and [`e2e`] are the two measurements; [`client`]
//! is the raw SSE reader both use.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use scoreboard_shared::shutdown::{Shutdown, signal};
use scoreboard_testkit::token;
use tokio::process::{Child, Command};

mod client;
mod e2e;
mod fanout;
mod nchan;

pub(crate) use client::{Arrival, follow};

/// The HS256 secret the SSE server and the update handler verify the bench tokens with.
pub(crate) const SECRET: &str = "bench-sse-secret-0123456789abcdef012345";

/// Runs the SSE benchmarks, or serves as one of their child processes.
pub async fn run() -> anyhow::Result<()> {
    match std::env::args().nth(2).as_deref() {
        Some("--serve-sse") => serve_sse().await,
        Some("e2e") => {
            println!("\n== End to end: 202 from the update function → SSE event at the client ==");
            e2e::run(std::env::args().nth(3).as_deref()).await
        }
        _ => {
            if raise_open_files()? {
                return Ok(());
            }
            println!(
                "\n== SSE fan-out vs nginx + nchan (one server process each; clients are raw TCP readers) =="
            );
            fanout::run().await?;
            println!("\n== End to end: 202 from the update handler → SSE event at the client ==");
            e2e::run(None).await
        }
    }
}

async fn serve_sse() -> anyhow::Result<()> {
    let env = scoreboard_shared::config::Env::from_process();
    let config = scoreboard_sse::SseConfig::from_env(&env).context("sse config")?;
    let listener = tokio::net::TcpListener::bind(config.bind_addr).await?;
    let state = scoreboard_sse::AppState::new(config)?;
    // The trigger lives in the signal task: dropping it would end `Shutdown::wait` at once.
    let (trigger, shutdown) = Shutdown::new();
    tokio::spawn(async move {
        signal().await;
        trigger.trigger();
    });
    scoreboard_sse::run(listener, state, shutdown).await?;
    Ok(())
}

/// Makes sure this process may hold 10k client sockets: when the soft open-file limit is below the hard
/// one, runs this benchmark again under `sh -c 'ulimit -Sn <hard>'` (no `unsafe` `setrlimit` here) and
/// returns `true` once that run has finished.
fn raise_open_files() -> anyhow::Result<bool> {
    const MARK: &str = "SCOREBOARD_BENCH_NOFILE_RAISED";
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let Some((soft, hard)) = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| {
            let mut numbers = l.split_whitespace().skip(3);
            Some((numbers.next()?.to_owned(), numbers.next()?.to_owned()))
        })
    else {
        return Ok(false);
    };
    println!("open files: soft limit {soft}, hard limit {hard}");
    if soft == hard || std::env::var_os(MARK).is_some() {
        return Ok(false);
    }
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -Sn "$(ulimit -Hn)" && exec "$@""#)
        .arg("sh")
        .arg(std::env::current_exe()?)
        .arg("sse")
        .env(MARK, "1")
        .status()
        .context("re-run with the raised open-file limit")?;
    anyhow::ensure!(status.success(), "the benchmark failed: {status}");
    Ok(true)
}

/// Starts this binary as the SSE server child with `env`, killed on drop.
pub(crate) fn spawn_sse(env: &[(&str, String)]) -> anyhow::Result<Child> {
    spawn(std::env::current_exe()?, &["sse", "--serve-sse"], env)
}

/// Builds (when stale) and starts the worker binary of this profile with `env`, killed on drop.
pub(crate) fn spawn_worker(env: &[(&str, String)]) -> anyhow::Result<Child> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("bench binary has a directory")?;
    let profile = dir
        .file_name()
        .and_then(|p| p.to_str())
        .context("profile directory name")?;
    let profile = if profile == "debug" { "dev" } else { profile };
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "-q",
                "--profile",
                profile,
                "-p",
                "scoreboard-worker",
            ])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .context("run cargo build for the worker")?;
    anyhow::ensure!(status.success(), "building scoreboard-worker failed");
    spawn(dir.join("scoreboard-worker"), &["run"], env)
}

fn spawn(
    program: std::path::PathBuf,
    args: &[&str],
    env: &[(&str, String)],
) -> anyhow::Result<Child> {
    Command::new(&program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawn {}", program.display()))
}

/// Waits (bounded) until `port` on loopback accepts connections.
pub(crate) async fn wait_port(port: u16, limit: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "port {port} not open after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Resident set size of `pid`, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS in /proc/<pid>/status")
}

/// An HS256 token for `sub` (also its name), valid for a day.
pub(crate) fn token_for(sub: &str) -> String {
    token::hs256_with(SECRET, &token::claims(sub, sub, 86_400))
}

/// Starts the MongoDB-protocol server (nx-27017 from the project venv) with its files under `dir`,
/// killed on drop; returns it and its port once it listens.
pub(crate) async fn start_mongo(dir: &std::path::Path) -> anyhow::Result<(Child, u16)> {
    let port = scoreboard_testkit::free_port();
    let nx = format!("{}/../.tools/venv/bin/nx-27017", env!("CARGO_MANIFEST_DIR"));
    let child = Command::new(&nx)
        .args(["--host", "127.0.0.1", "-p", &port.to_string()])
        .arg("--db")
        .arg(dir.join("mongo.db"))
        .arg("--pid-file")
        .arg(dir.join("nx.pid"))
        .arg("--log-file")
        .arg(dir.join("nx.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow::anyhow!("start {nx} (run `make setup`): {e}"))?;
    wait_port(port, Duration::from_secs(30)).await?;
    Ok((child, port))
}
