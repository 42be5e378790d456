//! The one Redis Pub/Sub subscription of this process, feeding the hub.
//!
//! Subscribe first, then read `{sb}:top`: a snapshot published in between arrives on the channel, so nothing
//! is missed. When the subscription is lost, resubscribe with the shared capped, jittered exponential
//! [`Backoff`] and re-read `{sb}:top`, so every client converges on the newest snapshot. The client comes
//! from [`scoreboard_shared::redis::client`], so `rediss://` trusts `REDIS_CA_CERT_FILE` when it is set.

use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;
use scoreboard_shared::backoff::Backoff;
use scoreboard_shared::redis::keys;
use scoreboard_shared::shutdown::Shutdown;

use crate::state::AppState;
use crate::telemetry;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The pacing of resubscriptions: 100 ms doubling up to 5 s, reset after each successful subscribe.
fn backoff() -> Backoff {
    Backoff::new(FIRST_BACKOFF, MAX_BACKOFF)
}

/// Runs until the process starts closing.
pub async fn run(state: AppState) {
    let mut closing = state.closing();
    let client = match scoreboard_shared::redis::client(&state.config().redis) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %error, "cannot use REDIS_URL for Pub/Sub");
            return;
        }
    };
    let mut backoff = backoff();
    let mut attempt: u64 = 0;
    loop {
        if closing.is_triggered() {
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
        let pause = backoff.next_delay();
        tokio::select! {
            () = closing.wait() => return,
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
    closing: &mut Shutdown,
    backoff: &mut Backoff,
) -> redis::RedisResult<Ended> {
    let timeout = state.config().redis.connect_timeout;
    let mut pubsub = within(timeout, client.get_async_pubsub()).await?;
    within(timeout, pubsub.subscribe(keys::EVENTS_CHANNEL)).await?;
    load_top(state, client).await?;
    state.set_subscribed(true);
    backoff.reset();
    tracing::info!(
        channel = keys::EVENTS_CHANNEL,
        version = state.hub().current().version,
        "subscribed"
    );
    let mut messages = pubsub.on_message();
    loop {
        tokio::select! {
            () = closing.wait() => return Ok(Ended::Closing),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each pause lies in `[ceiling/2, ceiling]`, the ceiling doubling from 100 ms up to 5 s, so many
    /// processes losing one Redis do not reconnect in lockstep; a successful subscribe starts over.
    #[test]
    fn jitter_stays_within_half_and_full() {
        for _ in 0..20 {
            let mut backoff = backoff();
            let mut ceiling = FIRST_BACKOFF;
            for _ in 0..12 {
                let pause = backoff.next_delay();
                assert!(
                    pause >= ceiling / 2 && pause <= ceiling,
                    "{pause:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
                ceiling = (ceiling * 2).min(MAX_BACKOFF);
            }
            assert_eq!(ceiling, MAX_BACKOFF, "reaches the cap");
            backoff.reset();
            assert!(backoff.next_delay() <= FIRST_BACKOFF, "reset starts over");
        }
    }
}
