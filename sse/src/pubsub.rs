//! The one Redis Pub/Sub subscription of this process, feeding the hub.
//!
//! Subscribe first, then read `{sb}:top`: a snapshot published in between arrives on the channel, so nothing
//! is missed. When the subscription is lost, resubscribe with capped, jittered exponential backoff and
//! re-read `{sb}:top`, so every client converges on the newest snapshot.

use std::time::Duration;

use futures::StreamExt;
use rand::Rng;
use redis::AsyncCommands;
use scoreboard_shared::keys;
use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::state::AppState;
use crate::telemetry;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs until the process starts closing.
pub async fn run(state: AppState) {
    let mut closing = state.closing();
    let client = match redis::Client::open(state.config().redis.url.expose_secret()) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %error, "cannot use REDIS_URL for Pub/Sub");
            return;
        }
    };
    let mut backoff = FIRST_BACKOFF;
    let mut attempt: u64 = 0;
    loop {
        if *closing.borrow() {
            return;
        }
        if attempt > 0 {
            metrics::counter!(telemetry::PUBSUB_RECONNECTS).increment(1);
        }
        attempt += 1;
        match subscribe_and_follow(&state, &client, &mut closing, &mut backoff).await {
            Ok(Ended::Closing) => return,
            Ok(Ended::Lost) => tracing::warn!("Pub/Sub connection lost; resubscribing"),
            Err(error) => tracing::warn!(error = %error, "Pub/Sub subscribe failed; retrying"),
        }
        state.set_subscribed(false);
        let pause = jitter(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
        tokio::select! {
            _ = closing.wait_for(|c| *c) => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

enum Ended {
    Closing,
    Lost,
}

async fn subscribe_and_follow(
    state: &AppState,
    client: &redis::Client,
    closing: &mut watch::Receiver<bool>,
    backoff: &mut Duration,
) -> redis::RedisResult<Ended> {
    let timeout = state.config().redis.connect_timeout;
    let mut pubsub = within(timeout, client.get_async_pubsub()).await?;
    within(timeout, pubsub.subscribe(keys::EVENTS_CHANNEL)).await?;
    load_top(state, client).await?;
    state.set_subscribed(true);
    *backoff = FIRST_BACKOFF;
    tracing::info!(
        channel = keys::EVENTS_CHANNEL,
        version = state.hub().current().version,
        "subscribed"
    );
    let mut messages = pubsub.on_message();
    loop {
        tokio::select! {
            _ = closing.wait_for(|c| *c) => return Ok(Ended::Closing),
            message = messages.next() => match message {
                Some(message) => {
                    state.hub().offer_json(message.get_payload_bytes());
                }
                None => return Ok(Ended::Lost),
            },
        }
    }
}

/// Reads `{sb}:top` once and offers it to the hub (absent means the board is still empty).
async fn load_top(state: &AppState, client: &redis::Client) -> redis::RedisResult<()> {
    let timeout = state.config().redis.response_timeout;
    let mut conn = within(timeout, client.get_multiplexed_async_connection()).await?;
    let top: Option<Vec<u8>> = within(timeout, conn.get(keys::TOP)).await?;
    if let Some(top) = top {
        state.hub().offer_json(&top);
    }
    Ok(())
}

async fn within<T>(
    limit: Duration,
    fut: impl Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "redis timed out",
        )))
    })
}

/// Somewhere in `[d/2, d]`, so many processes losing one Redis do not reconnect in lockstep.
fn jitter(d: Duration) -> Duration {
    let half = d / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_full() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(2));
            assert!(
                j >= Duration::from_secs(1) && j <= Duration::from_secs(2),
                "{j:?}"
            );
        }
    }
}
