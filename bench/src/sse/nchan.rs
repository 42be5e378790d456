//! nginx + nchan as the peer the SSE server is compared with: Debian's `nginx` and `libnginx-mod-nchan`
//! (installed by `make bench-peers`, never here). One worker process, EventSource subscribers on the SSE
//! server's path, a publisher location on loopback, one message per channel; its own prefix directory
//! (config, pid, logs, temp paths) and free ports, removed when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use scoreboard_testkit::free_port;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use super::wait_port;

const CONFIG: &str = include_str!("../../peers/nchan.conf");
const NGINX: [&str; 2] = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"];
const MODULE: [&str; 2] = [
    "/usr/lib/nginx/modules/ngx_nchan_module.so",
    "/usr/local/lib/nginx/modules/ngx_nchan_module.so",
];

/// A running nginx + nchan.
#[derive(Debug)]
pub struct Nchan {
    master: Child,
    /// Subscribers connect here (`/api/v1/scores/events`).
    pub port: u16,
    pub_port: u16,
    prefix: PathBuf,
}

/// The nginx binary and the nchan module, when both are installed.
fn installed() -> Option<(PathBuf, PathBuf)> {
    let nginx = NGINX.iter().map(PathBuf::from).find(|p| p.exists())?;
    let module = MODULE.iter().map(PathBuf::from).find(|p| p.exists())?;
    Some((nginx, module))
}

impl Nchan {
    /// Starts nginx with nchan; `None` when either is not installed.
    pub async fn start() -> anyhow::Result<Option<Self>> {
        let Some((nginx, module)) = installed() else {
            return Ok(None);
        };
        let prefix = std::env::temp_dir().join(format!("bench-nchan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&prefix);
        std::fs::create_dir_all(&prefix).context("nchan prefix directory")?;
        let (port, pub_port) = (free_port(), free_port());
        let config = CONFIG
            .replace("@MODULE@", &module.display().to_string())
            .replace("@PREFIX@", &prefix.display().to_string())
            .replace("@SUB_PORT@", &port.to_string())
            .replace("@PUB_PORT@", &pub_port.to_string());
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, config)?;
        let master = Command::new(&nginx)
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(prefix.join("error.log"))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {}", nginx.display()))?;
        let nchan = Self {
            master,
            port,
            pub_port,
            prefix,
        };
        let limit = Duration::from_secs(15);
        let started = async {
            wait_port(port, limit).await?;
            wait_port(pub_port, limit).await
        };
        if let Err(error) = started.await {
            let log = std::fs::read_to_string(nchan.prefix.join("error.log")).unwrap_or_default();
            anyhow::bail!("nginx + nchan did not start: {error:#}\n{log}");
        }
        Ok(Some(nchan))
    }

    /// The master and its worker (the worker holds the connections).
    pub fn pids(&self) -> Vec<u32> {
        let Some(master) = self.master.id() else {
            return Vec::new();
        };
        let mut pids = vec![master];
        pids.extend(children(master));
        pids
    }

    /// Publishes `body` to the channel (one connection per message, as a publisher would).
    pub async fn publish(&self, body: &str) -> anyhow::Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.pub_port)).await?;
        let request = format!(
            "POST /pub HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::with_capacity(1024);
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .context("nchan publisher answer")??;
        let status = answer.get(9..12).and_then(|s| std::str::from_utf8(s).ok());
        anyhow::ensure!(
            matches!(status, Some("201" | "202")),
            "nchan publish answered {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(80)])
        );
        Ok(())
    }
}

impl Drop for Nchan {
    fn drop(&mut self) {
        // A killed master leaves its worker running: stop the worker by its pid, then the master.
        let workers = self.pids().into_iter().skip(1);
        for pid in workers {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.master.start_kill();
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

/// Child pids of `pid` (Linux `/proc/<pid>/task/<pid>/children`).
fn children(pid: u32) -> Vec<u32> {
    let path = Path::new("/proc")
        .join(pid.to_string())
        .join("task")
        .join(pid.to_string())
        .join("children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}
