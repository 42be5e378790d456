//! `make dev`: the whole stack, started by the same [`Stack`] the end-to-end tests use, on fixed loopback
//! ports with its logs and data under `.dev/`. Prints the URLs, a demo token and curl examples, then runs
//! until Ctrl-C / SIGTERM (or until a component exits) and stops everything it started.
//!
//! Ports: `DEV_REDIS_PORT` (6379), `DEV_MONGO_PORT` (27017), `DEV_LAMBDA_PORT` (9000), `DEV_SSE_PORT`
//! (8080), `DEV_SSE_METRICS_PORT` (9092), `DEV_WORKER_PORT` (9091).
//!
//! `DEV_REDIS_CLUSTER=1` runs the stack on a local Redis Cluster of 3 masters (free loopback ports, data in
//! a temp dir gone at exit; `DEV_REDIS_PORT` is unused) instead of the standalone server: every component
//! gets `REDIS_CLUSTER=true` and the nodes' URLs as `REDIS_URL` seeds. The banner names the nodes.
//!
//! `DEV_OBSERVABILITY=1` also starts `prometheus-redis-exporter` (`DEV_REDIS_EXPORTER_PORT`, 9121) and
//! Prometheus (`DEV_PROMETHEUS_PORT`, 9090) on loopback, scraping the worker, the SSE metrics listener and
//! the exporter with `ops/prometheus/alerts.yml` loaded (config and data under `.dev/prometheus/`); see
//! docs/operations.md. On a cluster the exporter scrapes every node (its `/scrape?target=` mode).

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use scoreboard_e2e::{Ports, Proc, Stack, StackOptions, workspace_root};

fn port(var: &str, default: u16) -> u16 {
    match std::env::var(var) {
        Ok(raw) if !raw.is_empty() => raw
            .parse()
            .unwrap_or_else(|_| fail(&format!("{var}={raw:?} is not a port"))),
        _ => default,
    }
}

fn flag(var: &str) -> bool {
    match std::env::var(var).as_deref() {
        Ok("1" | "true") => true,
        Ok("" | "0" | "false") | Err(_) => false,
        Ok(other) => fail(&format!("{var}={other:?}: use 1 or 0")),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("dev: {message}");
    std::process::exit(1);
}

/// A per-checkout HS256 secret, created once, readable only by its owner.
fn jwt_secret(dev_dir: &Path) -> String {
    let path = dev_dir.join("jwt_secret");
    if let Ok(secret) = std::fs::read_to_string(&path)
        && secret.trim().len() >= 32
    {
        return secret.trim().to_owned();
    }
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .unwrap_or_else(|e| fail(&format!("cannot read /dev/urandom: {e}")));
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
        file.write_all(secret.as_bytes())
            .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
    }
    secret
}

#[tokio::main]
async fn main() {
    let redis_cluster = flag("DEV_REDIS_CLUSTER");
    let ports = Ports {
        // A cluster's nodes take free ports.
        redis: (!redis_cluster).then(|| port("DEV_REDIS_PORT", 6379)),
        mongo: Some(port("DEV_MONGO_PORT", 27017)),
        functions: Some(port("DEV_LAMBDA_PORT", 9000)),
        worker: Some(port("DEV_WORKER_PORT", 9091)),
        sse: Some(port("DEV_SSE_PORT", 8080)),
        sse_metrics: Some(port("DEV_SSE_METRICS_PORT", 9092)),
    };
    for port in [
        ports.redis,
        ports.mongo,
        ports.functions,
        ports.worker,
        ports.sse,
    ]
    .into_iter()
    .flatten()
    {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            fail(&format!(
                "port {port} is in use (another `make dev`?); stop it or set DEV_*_PORT"
            ));
        }
    }
    let observability = flag("DEV_OBSERVABILITY").then(ObservabilityPorts::from_env);
    if let Some(obs) = &observability {
        obs.check_free();
    }
    let dev_dir = workspace_root().join(".dev");
    std::fs::create_dir_all(&dev_dir)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", dev_dir.display())));
    let sse_port = ports.sse.unwrap_or_default();
    let options = StackOptions {
        redis_cluster,
        ports,
        state_dir: Some(dev_dir.clone()),
        jwt_secret: Some(jwt_secret(&dev_dir)),
        functions_log: Some("info".to_owned()),
        watch_changes: true,
        sse_env: vec![(
            "CORS_ALLOWED_ORIGINS".to_owned(),
            format!("http://127.0.0.1:{sse_port}"),
        )],
        ..StackOptions::default()
    };
    eprintln!("dev: building and starting the stack (the first run compiles for a few minutes)…");
    let mut stack = Stack::start(options).await;
    let mut observability =
        observability.map(|ports| Observability::start(&stack, &dev_dir, ports));
    let token = stack.dev_token("Ada").await;
    print_banner(&stack, &token);
    if let Some(obs) = &observability {
        obs.print_banner();
    }

    let exited = tokio::select! {
        () = scoreboard_shared::shutdown::signal() => None,
        exited = async {
            loop {
                if let Some(exited) = stack.exited() {
                    return exited;
                }
                if let Some(exited) = observability.as_mut().and_then(Observability::exited) {
                    return exited;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        } => Some(exited),
    };
    eprintln!("dev: stopping…");
    drop(observability);
    drop(stack);
    match exited {
        None => eprintln!("dev: stopped"),
        Some(exited) => fail(&exited),
    }
}

fn print_banner(stack: &Stack, token: &str) {
    let sse = &stack.sse_base;
    let (update, leaderboard) = (stack.update_url(), stack.leaderboard_url());
    println!(
        r#"
  ┌─ Scoreboard is running ──────────────────────────────────────────────────────
  │ Demo page        {sse}/
  │ Redis            {redis}
  │ Update function  POST {update}
  │ Leaderboard fn   GET  {leaderboard}
  │ SSE stream       GET  {events}
  │ Metrics          {sse_metrics}/metrics   {worker}/metrics
  │ Logs             {logs}/
  └──────────────────────────────────────────────────────────────────────────────

  Token for demo user "Ada" (valid 1 h; mint more: POST {sse}/dev/token {{"name":"…"}}):

    export TOKEN={token}

  Try it:

    curl -i -X POST {update} \
      -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{{"scoreIncrement": 10}}'
    curl -s {leaderboard} -H "Authorization: Bearer $TOKEN"
    curl -N {events} -H "Authorization: Bearer $TOKEN"

  Ctrl-C stops everything.
"#,
        events = stack.events_url(),
        redis = redis_line(stack),
        worker = stack.worker_base,
        sse_metrics = stack.sse_metrics_base,
        logs = stack.dir().display(),
    );
}

/// Where Redis is, for the banner: the server, or the cluster's nodes and how to reach one with redis-cli.
fn redis_line(stack: &Stack) -> String {
    match stack.cluster() {
        None => stack.redis_url.clone(),
        Some(cluster) => {
            let masters = cluster.master_ports();
            format!(
                "Redis Cluster, {} masters on ports {masters:?} (REDIS_CLUSTER=true)\n  │                  redis-cli -c -p {}",
                masters.len(),
                masters.first().copied().unwrap_or_default(),
            )
        }
    }
}

/// `DEV_OBSERVABILITY=1`: the ports of the local Prometheus and redis_exporter.
#[derive(Debug, Clone, Copy)]
struct ObservabilityPorts {
    prometheus: u16,
    redis_exporter: u16,
}

impl ObservabilityPorts {
    fn from_env() -> Self {
        Self {
            prometheus: port("DEV_PROMETHEUS_PORT", 9090),
            redis_exporter: port("DEV_REDIS_EXPORTER_PORT", 9121),
        }
    }

    fn check_free(&self) {
        for (binary, package) in [
            (PROMETHEUS, "prometheus"),
            (REDIS_EXPORTER, "prometheus-redis-exporter"),
        ] {
            if !Path::new(binary).exists() {
                fail(&format!(
                    "{binary} not found; run `make setup` (Debian package {package})"
                ));
            }
        }
        for port in [self.prometheus, self.redis_exporter] {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                fail(&format!(
                    "port {port} is in use (another Prometheus? the Debian service?); stop it or set \
                     DEV_PROMETHEUS_PORT / DEV_REDIS_EXPORTER_PORT"
                ));
            }
        }
    }
}

/// The body of the `redis-exporter` scrape job: the exporter's own `/metrics` (standalone Redis), or each
/// cluster node through the exporter's `/scrape?target=`.
fn redis_scrape(cluster: bool, nodes: &[&str], exporter: u16) -> String {
    if !cluster {
        return format!("    static_configs: [{{ targets: ['127.0.0.1:{exporter}'] }}]\n");
    }
    let targets: Vec<String> = nodes.iter().map(|node| format!("'{node}'")).collect();
    format!(
        "    metrics_path: /scrape
    static_configs: [{{ targets: [{targets}] }}]
    relabel_configs:
      - {{ source_labels: [__address__], target_label: __param_target }}
      - {{ source_labels: [__param_target], target_label: instance }}
      - {{ target_label: __address__, replacement: '127.0.0.1:{exporter}' }}
",
        targets = targets.join(", ")
    )
}

const PROMETHEUS: &str = "/usr/bin/prometheus";
const REDIS_EXPORTER: &str = "/usr/bin/prometheus-redis-exporter";

/// Prometheus and redis_exporter beside the stack; stopped (like the stack's processes) when dropped.
#[derive(Debug)]
struct Observability {
    url: String,
    // Dropped in reverse start order: Prometheus, then the exporter.
    prometheus: Proc,
    redis_exporter: Proc,
}

impl Observability {
    fn start(stack: &Stack, dev_dir: &Path, ports: ObservabilityPorts) -> Self {
        let dir = dev_dir.join("prometheus");
        std::fs::create_dir_all(dir.join("data"))
            .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", dir.display())));
        eprintln!("dev: starting prometheus-redis-exporter and Prometheus (DEV_OBSERVABILITY=1)");

        // On a cluster: `/metrics` shows the first node, and Prometheus scrapes each node through
        // `/scrape?target=<node>` (the exporter's multi-target mode).
        let nodes: Vec<&str> = stack.redis_url.split(',').collect();
        let mut exporter_cmd = Command::new(REDIS_EXPORTER);
        exporter_cmd
            .arg(format!("--redis.addr={}", nodes[0]))
            .arg(format!(
                "--web.listen-address=127.0.0.1:{}",
                ports.redis_exporter
            ));
        let mut redis_exporter = Proc::spawn(
            "prometheus-redis-exporter",
            exporter_cmd,
            &dev_dir.join("redis-exporter.log"),
        );
        redis_exporter.wait_port(ports.redis_exporter, Duration::from_secs(20));

        let rules = workspace_root().join("ops/prometheus/alerts.yml");
        let host = |base: &str| base.trim_start_matches("http://").to_owned();
        let config = format!(
            "# Written by `DEV_OBSERVABILITY=1 make dev` (e2e/src/bin/scoreboard-dev.rs) at each start.
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - {rules}
scrape_configs:
  - job_name: scoreboard-worker
    static_configs: [{{ targets: ['{worker}'] }}]
  - job_name: scoreboard-sse
    static_configs: [{{ targets: ['{sse}'] }}]
  - job_name: redis-exporter
{redis_job}",
            rules = rules.display(),
            worker = host(&stack.worker_base),
            sse = host(&stack.sse_metrics_base),
            redis_job = redis_scrape(stack.redis_cluster, &nodes, ports.redis_exporter),
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config)
            .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", config_path.display())));

        let mut prometheus_cmd = Command::new(PROMETHEUS);
        prometheus_cmd
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg("--storage.tsdb.retention.time=2d")
            .arg(format!(
                "--web.listen-address=127.0.0.1:{}",
                ports.prometheus
            ));
        let mut prometheus = Proc::spawn(
            "prometheus",
            prometheus_cmd,
            &dev_dir.join("prometheus.log"),
        );
        prometheus.wait_port(ports.prometheus, Duration::from_secs(30));
        Self {
            url: format!("http://127.0.0.1:{}", ports.prometheus),
            prometheus,
            redis_exporter,
        }
    }

    fn print_banner(&self) {
        let url = &self.url;
        println!(
            "  Prometheus       {url}/   (alerts {url}/alerts, rules from ops/prometheus/alerts.yml)\n  \
             Check            curl -s {url}/api/v1/alerts\n"
        );
    }

    fn exited(&mut self) -> Option<String> {
        [&mut self.prometheus, &mut self.redis_exporter]
            .into_iter()
            .find_map(|proc| {
                (!proc.is_running()).then(|| format!("{proc:?} exited; log:\n{}", proc.log_tail()))
            })
    }
}
