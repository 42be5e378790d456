//! Lambda cold start, measured locally: each release `bootstrap` (x86_64 build of the same code that ships
//! for arm64) is started against a tiny Lambda Runtime API emulator and a real `redis-server`.
//!
//! - **init**: process spawn → its first `GET /2018-06-01/runtime/invocation/next` (what Lambda bills as
//!   Init: config, JWT key, Redis client, runtime set-up).
//! - **first invoke**: the first event handed out → its `POST …/response` (first Redis connection and
//!   script load included).
//!
//! Also prints the deploy artifacts' sizes (`target/lambda/*/bootstrap`, from `make release`).
//! `make bench-coldstart` builds the binaries and runs it; `COLDSTART_RUNS` sets the runs per function.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use scoreboard_testkit::{RedisServer, token};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};

const SECRET: &str = "coldstart-secret-that-is-at-least-32-bytes";
const STEP_TIMEOUT: Duration = Duration::from_secs(15);
const DEFAULT_RUNS: usize = 10;

/// One function under test.
struct Function {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
}

const FUNCTIONS: [Function; 2] = [
    Function {
        name: "update",
        method: "POST",
        path: "/api/v1/scores/update",
        body: Some(r#"{"scoreIncrement":10}"#),
    },
    Function {
        name: "leaderboard",
        method: "GET",
        path: "/api/v1/scores/leaderboard",
        body: None,
    },
];

/// What the emulator saw, in order.
#[derive(Debug)]
enum Seen {
    Next(Instant),
    Response(Instant, String),
    Error(String),
}

/// Runs the measurement; when the host release binaries are missing, fails if `required`, else says how
/// to build them.
pub async fn run(required: bool) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    println!("== Lambda artifacts (make release: cargo lambda build --release --arm64)");
    for f in &FUNCTIONS {
        let path = root.join(format!("target/lambda/{}/bootstrap", f.name));
        match std::fs::metadata(&path) {
            Ok(meta) => println!(
                "  {:<12} {:>6.2} MiB  {}",
                f.name,
                meta.len() as f64 / 1_048_576.0,
                path.display()
            ),
            Err(_) => println!(
                "  {:<12} missing ({}); run `make release`",
                f.name,
                path.display()
            ),
        }
    }

    let runs = std::env::var("COLDSTART_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_RUNS);
    let redis = RedisServer::start();
    println!("== Cold start, host build (target/release), {runs} runs each, real redis-server");
    println!(
        "  {:<12} {:>8} {:>10} {:>10} {:>10} {:>14} {:>14}",
        "function", "size", "init p50", "init min", "init max", "1st inv p50", "1st inv max"
    );
    for f in &FUNCTIONS {
        let binary = root.join(format!("target/release/{}", f.name));
        if !binary.is_file() && !required {
            println!(
                "  {:<12} skipped: {} missing; run `make bench-coldstart`",
                f.name,
                binary.display()
            );
            continue;
        }
        if !binary.is_file() {
            bail!(
                "{} is missing: build it with `cargo build --release -p update -p leaderboard` \
                 (or run `make bench-coldstart`)",
                binary.display()
            );
        }
        let size = std::fs::metadata(&binary)?.len() as f64 / 1_048_576.0;
        let mut inits = Vec::with_capacity(runs);
        let mut invokes = Vec::with_capacity(runs);
        for _ in 0..runs {
            let (init, invoke) = measure_once(&binary, f, &redis.url())
                .await
                .with_context(|| format!("cold start of {}", f.name))?;
            inits.push(init);
            invokes.push(invoke);
        }
        inits.sort();
        invokes.sort();
        println!(
            "  {:<12} {:>6.2}Mi {:>10} {:>10} {:>10} {:>14} {:>14}",
            f.name,
            size,
            ms(inits[inits.len() / 2]),
            ms(inits[0]),
            ms(inits[inits.len() - 1]),
            ms(invokes[invokes.len() / 2]),
            ms(invokes[invokes.len() - 1]),
        );
    }
    println!(
        "  (init: spawn → first GET /runtime/invocation/next; 1st inv: event → POST response)"
    );
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The caller's HS256 token, valid for ten minutes.
fn token() -> String {
    token::hs256_with(SECRET, &token::claims("coldstart-user", "Cold Start", 600))
}

fn event(f: &Function) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    Ok(json!({
        "version": "2.0", "routeKey": "$default", "rawPath": f.path, "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {}", token()), "content-type": "application/json"},
        "requestContext": {
            "accountId": "anonymous", "apiId": "coldstart", "domainName": "coldstart.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "coldstart",
            "http": {"method": f.method, "path": f.path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "coldstart"},
            "requestId": "coldstart-1", "routeKey": "$default", "stage": "$default",
            "time": "28/Nov/2026:00:00:00 +0000", "timeEpoch": now
        },
        "body": f.body, "isBase64Encoded": false
    })
    .to_string())
}

/// Starts `binary` against a fresh emulator; returns (init, first invocation).
async fn measure_once(
    binary: &Path,
    f: &Function,
    redis_url: &str,
) -> anyhow::Result<(Duration, Duration)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let event = Arc::new(Mutex::new(Some(event(f)?)));
    let server = tokio::spawn(serve(listener, event, seen_tx));

    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", f.name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/coldstart")
        .env("AWS_REGION", "eu-west-1")
        .env("REDIS_URL", redis_url)
        .env("JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawn {}", binary.display()))?;

    let result = async {
        let init = match next_seen(&mut seen_rx).await? {
            Seen::Next(at) => at - started,
            Seen::Error(error) => bail!("init failed: {error}"),
            other => bail!("expected the first /next, got {other:?}"),
        };
        let handed_out = Instant::now();
        let invoke = match next_seen(&mut seen_rx).await? {
            Seen::Response(at, body) => {
                anyhow::ensure!(
                    body.contains("\"statusCode\":20"),
                    "first invocation did not succeed: {body}"
                );
                at - handed_out
            }
            Seen::Error(error) => bail!("invocation failed: {error}"),
            other => bail!("expected a response, got {other:?}"),
        };
        Ok((init, invoke))
    }
    .await;
    let _ = child.kill().await;
    server.abort();
    if result.is_err() {
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ =
                tokio::time::timeout(Duration::from_secs(1), err.read_to_string(&mut stderr)).await;
        }
        return result.with_context(|| format!("function log:\n{stderr}"));
    }
    result
}

async fn next_seen(rx: &mut mpsc::UnboundedReceiver<Seen>) -> anyhow::Result<Seen> {
    tokio::time::timeout(STEP_TIMEOUT, rx.recv())
        .await
        .context("the function did not call the runtime API in time")?
        .context("emulator stopped")
}

/// The Runtime API subset a function calls: hands out one event, records responses and errors; later
/// `/next` calls wait forever (the process is killed).
async fn serve(
    listener: TcpListener,
    event: Arc<Mutex<Option<String>>>,
    seen: mpsc::UnboundedSender<Seen>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(connection(stream, event.clone(), seen.clone()));
    }
}

async fn connection(
    stream: TcpStream,
    event: Arc<Mutex<Option<String>>>,
    seen: mpsc::UnboundedSender<Seen>,
) -> anyhow::Result<()> {
    let mut stream = BufReader::new(stream);
    // Keep-alive: one request after another on the same connection (bounded per connection).
    for _ in 0..64 {
        let mut request_line = String::new();
        if stream.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).await?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse()?;
            }
        }
        let mut body = vec![0; content_length];
        stream.read_exact(&mut body).await?;
        let body = String::from_utf8_lossy(&body).into_owned();
        let now = Instant::now();
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));

        let reply = if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let _ = seen.send(Seen::Next(now));
            match event.lock().await.take() {
                Some(event) => {
                    let deadline =
                        SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() + 30_000;
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         lambda-runtime-aws-request-id: coldstart-1\r\n\
                         lambda-runtime-deadline-ms: {deadline}\r\n\
                         lambda-runtime-invoked-function-arn: arn:aws:lambda:eu-west-1:000000000000:function:coldstart\r\n\
                         lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\n\
                         content-length: {}\r\n\r\n{event}",
                        event.len()
                    )
                }
                None => std::future::pending().await,
            }
        } else {
            let _ = if path.ends_with("/response") {
                seen.send(Seen::Response(now, body))
            } else {
                seen.send(Seen::Error(format!("{method} {path}: {body}")))
            };
            "HTTP/1.1 202 Accepted\r\ncontent-length: 16\r\n\r\n{\"status\":\"OK\"}\n".to_owned()
        };
        stream.get_mut().write_all(reply.as_bytes()).await?;
    }
    Ok(())
}
