//! The update handler in-process against a real `redis-server`: requests/s and p50/p99 latency for 1 and 2
//! concurrent callers, with HS256 and RS256 tokens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use jsonwebtoken::{Algorithm, EncodingKey};
use scoreboard_shared::config::Env;
use scoreboard_testkit::{RedisServer, fixture, token};
use serde_json::json;
use update::UpdateService;

const REQUESTS_PER_CASE: usize = 20_000;
const TIME_LIMIT: Duration = Duration::from_secs(20);
const USERS: usize = 1_000;
const HS_SECRET: &str = "bench-secret-that-is-at-least-32-bytes-long";

struct Case {
    name: &'static str,
    auth_var: &'static str,
    auth_value: String,
    algorithm: Algorithm,
    key: EncodingKey,
}

const ISSUER: &str = "https://idp.bench.example/";
const AUDIENCE: &str = "scoreboard-bench";

fn cases() -> anyhow::Result<Vec<Case>> {
    Ok(vec![
        Case {
            name: "HS256",
            auth_var: "JWT_SECRET",
            auth_value: HS_SECRET.to_owned(),
            algorithm: Algorithm::HS256,
            key: EncodingKey::from_secret(HS_SECRET.as_bytes())?,
        },
        Case {
            name: "RS256",
            auth_var: "JWT_PUBLIC_KEY",
            auth_value: fixture("rsa1.pub.pem"),
            algorithm: Algorithm::RS256,
            key: EncodingKey::from_rsa_pem(fixture("rsa1.key.pem").as_bytes())?,
        },
    ])
}

fn event(token: &str) -> String {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/api/v1/scores/update", "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {token}"), "content-type": "application/json"},
        "requestContext": {
            "accountId": "anonymous", "apiId": "bench", "domainName": "bench.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "bench",
            "http": {"method": "POST", "path": "/api/v1/scores/update", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "bench", "routeKey": "$default", "stage": "$default",
            "time": "28/Nov/2026:16:00:00 +0000", "timeEpoch": 0
        },
        "body": "{\"scoreIncrement\":1}", "isBase64Encoded": false
    })
    .to_string()
}

pub async fn run() -> anyhow::Result<()> {
    let redis = RedisServer::start();
    let url = redis.url();
    println!("== update handler (in-process, real redis-server {url}) ==");
    println!(
        "{REQUESTS_PER_CASE} requests per case (or {TIME_LIMIT:?}), {USERS} users, body {{\"scoreIncrement\":1}}"
    );
    println!(
        "{:<7} {:>11} {:>12} {:>10} {:>10} {:>10}",
        "alg", "concurrency", "requests/s", "p50 µs", "p99 µs", "accepted"
    );
    for case in cases()? {
        let service = Arc::new(UpdateService::from_env(&Env::from_pairs([
            ("REDIS_URL", url.as_str()),
            (case.auth_var, case.auth_value.as_str()),
            ("RATE_LIMIT_PER_SEC", "10000"),
            ("RATE_LIMIT_BURST", "100000"),
            ("STREAM_MAX_BACKLOG", "1000000000"),
            // A public key must be bound to one issuer and audience (as in production).
            ("JWT_ISSUER", ISSUER),
            ("JWT_AUDIENCE", AUDIENCE),
        ]))?);
        let events: Arc<Vec<String>> = Arc::new(
            (0..USERS)
                .map(|u| {
                    let mut claims =
                        token::claims(&format!("user-{u}"), &format!("User {u}"), 3_600);
                    claims["iss"] = ISSUER.into();
                    claims["aud"] = AUDIENCE.into();
                    event(&token::sign(case.algorithm, &case.key, None, &claims))
                })
                .collect(),
        );
        for concurrency in [1usize, 2] {
            let _: () = redis::cmd("FLUSHALL")
                .query_async(&mut redis.connection().await)
                .await?;
            let (elapsed, histogram, accepted) = drive(&service, &events, concurrency).await?;
            let count = histogram.len();
            println!(
                "{:<7} {:>11} {:>12.0} {:>10} {:>10} {:>10}",
                case.name,
                concurrency,
                count as f64 / elapsed.as_secs_f64(),
                histogram.value_at_quantile(0.50),
                histogram.value_at_quantile(0.99),
                accepted
            );
        }
    }
    Ok(())
}

async fn drive(
    service: &Arc<UpdateService>,
    events: &Arc<Vec<String>>,
    concurrency: usize,
) -> anyhow::Result<(Duration, Histogram<u64>, usize)> {
    let started = Instant::now();
    let deadline = started + TIME_LIMIT;
    let per_task = REQUESTS_PER_CASE / concurrency;
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let (service, events) = (service.clone(), events.clone());
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new(3).expect("histogram");
                let mut accepted = 0;
                for i in 0..per_task {
                    if Instant::now() > deadline {
                        break;
                    }
                    let raw = &events[(task + i * concurrency) % events.len()];
                    let request = lambda_http::request::from_str(raw).expect("bench event");
                    let t0 = Instant::now();
                    let response = service.handle(request).await;
                    histogram
                        .record(t0.elapsed().as_micros() as u64)
                        .expect("record");
                    accepted += usize::from(response.status() == 202);
                }
                (histogram, accepted)
            })
        })
        .collect();
    let mut total = Histogram::<u64>::new(3)?;
    let mut accepted = 0;
    for task in tasks {
        let (histogram, n) = task.await?;
        total.add(histogram)?;
        accepted += n;
    }
    Ok((started.elapsed(), total, accepted))
}
