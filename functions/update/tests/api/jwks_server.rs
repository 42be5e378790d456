//! A local JWKS endpoint for the JWT tests: the test sets what it answers (a key set, any body, a status, a
//! delay), can start it late on a chosen port, and reads how many fetches it served.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::helpers::fixture;

/// What the endpoint answers.
#[derive(Clone)]
struct Reply {
    status: StatusCode,
    body: String,
    delay: Duration,
}

pub struct JwksServer {
    reply: Arc<Mutex<Reply>>,
    fetches: Arc<AtomicUsize>,
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    /// Serves `{"keys": initial}` on a free port.
    pub async fn start(initial: Vec<Value>) -> Self {
        Self::serve(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            initial,
        )
    }

    /// Serves `{"keys": initial}` on `port` (one chosen before the server existed).
    pub async fn start_on(port: u16, initial: Vec<Value>) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("bind 127.0.0.1:{port}: {e}"));
        Self::serve(listener, initial)
    }

    /// The JWKS URL a server on `port` has.
    pub fn url_for(port: u16) -> String {
        format!("http://127.0.0.1:{port}/.well-known/jwks.json")
    }

    fn serve(listener: tokio::net::TcpListener, initial: Vec<Value>) -> Self {
        let reply = Arc::new(Mutex::new(Reply {
            status: StatusCode::OK,
            body: json!({ "keys": initial }).to_string(),
            delay: Duration::ZERO,
        }));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (r, f) = (reply.clone(), fetches.clone());
        let app = Router::new().route(
            "/.well-known/jwks.json",
            get(move || {
                let (r, f) = (r.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    let reply = r.lock().unwrap().clone();
                    tokio::time::sleep(reply.delay).await;
                    (
                        reply.status,
                        [("content-type", "application/json")],
                        reply.body,
                    )
                }
            }),
        );
        let url = Self::url_for(listener.local_addr().unwrap().port());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            reply,
            fetches,
            url,
            task,
        }
    }

    /// Answer `{"keys": keys}` from now on.
    pub fn publish(&self, keys: Vec<Value>) {
        self.answer(StatusCode::OK, &json!({ "keys": keys }).to_string());
    }

    /// Answer `status` with `body` from now on.
    pub fn answer(&self, status: StatusCode, body: &str) {
        let mut reply = self.reply.lock().unwrap();
        reply.status = status;
        reply.body = body.to_owned();
    }

    /// Hold every answer back by `delay`.
    pub fn delay(&self, delay: Duration) {
        self.reply.lock().unwrap().delay = delay;
    }

    /// Fetches served so far.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Stops listening.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// The public JWK of fixture key `name` (`rsa1`, `rsa2`; `kid` = name).
pub fn jwk(name: &str) -> Value {
    serde_json::from_str(&fixture(&format!("{name}.jwk.json"))).unwrap()
}

/// Runs `attempt` every 50 ms until it yields `Some`, for at most `limit`; `None` when it never did.
pub async fn poll<T, F>(limit: Duration, mut attempt: impl FnMut() -> F) -> Option<T>
where
    F: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(done) = attempt().await {
            return Some(done);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
