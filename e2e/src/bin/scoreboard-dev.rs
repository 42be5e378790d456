//! `make dev`: the whole stack, started by the same [`Stack`] the end-to-end tests use, on fixed loopback
//! ports with its logs and data under `.dev/`. Prints the URLs, a demo token and curl examples, then runs
//! until Ctrl-C / SIGTERM (or until a component exits) and stops everything it started.
//!
//! Ports: `DEV_REDIS_PORT` (6379), `DEV_MONGO_PORT` (27017), `DEV_LAMBDA_PORT` (9000), `DEV_SSE_PORT`
//! (8080), `DEV_WORKER_PORT` (9091).

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use scoreboard_e2e::{Ports, Stack, StackOptions, workspace_root};

fn port(var: &str, default: u16) -> u16 {
    match std::env::var(var) {
        Ok(raw) if !raw.is_empty() => raw
            .parse()
            .unwrap_or_else(|_| fail(&format!("{var}={raw:?} is not a port"))),
        _ => default,
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
    let ports = Ports {
        redis: Some(port("DEV_REDIS_PORT", 6379)),
        mongo: Some(port("DEV_MONGO_PORT", 27017)),
        functions: Some(port("DEV_LAMBDA_PORT", 9000)),
        worker: Some(port("DEV_WORKER_PORT", 9091)),
        sse: Some(port("DEV_SSE_PORT", 8080)),
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
    let dev_dir = workspace_root().join(".dev");
    std::fs::create_dir_all(&dev_dir)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", dev_dir.display())));
    let sse_port = ports.sse.unwrap_or_default();
    let options = StackOptions {
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
    let token = stack.dev_token("Ada").await;
    print_banner(&stack, &token);

    let exited = tokio::select! {
        () = scoreboard_shared::shutdown::signal() => None,
        exited = async {
            loop {
                if let Some(exited) = stack.exited() {
                    return exited;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        } => Some(exited),
    };
    eprintln!("dev: stopping…");
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
  │ Update function  POST {update}
  │ Leaderboard fn   GET  {leaderboard}
  │ SSE stream       GET  {events}
  │ Metrics          {sse}/metrics   {worker}/metrics
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
        worker = stack.worker_base,
        logs = stack.dir().display(),
    );
}
