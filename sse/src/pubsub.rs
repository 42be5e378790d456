//! The one Redis Pub/Sub subscription of this process, feeding the hub.
//!
//! Subscribe first, then read `{sb}:top`: a snapshot published in between arrives on the channel, so nothing
//! is missed. When the subscription is lost, resubscribe with the shared capped, jittered exponential
//! [`Backoff`] and re-read `{sb}:top`, so every client converges on the newest snapshot. The subscription
//! is [`scoreboard_shared::redis::Subscription`]: `SUBSCRIBE` on standalone Redis, `SSUBSCRIBE` on a
//! cluster, where a slot move ends it with a `sunsubscribe` push and takes this same resubscribe path.
//!
//! Liveness: a half-open link (Redis frozen, a dead peer behind a NAT) delivers nothing and never closes.
//! So the subscription connection is pinged every `SSE_PUBSUB_PING_SECS` (PING is allowed in subscribed
//! mode); no pong within `SSE_PUBSUB_PING_TIMEOUT_MS` counts as a loss, from the moment the ping was
//! sent, and takes the resubscribe path. The process's liveness (for `/healthz`) lives in [`AppState`].

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use redis::AsyncCommands;
use scoreboard_shared::backoff::Backoff;
use scoreboard_shared::redis::subscription::Pinger;
use scoreboard_shared::redis::{Notice, RedisConn, Subscription, connect_lazy, keys};
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
    let mut redis = match connect_lazy(&state.config().redis) {
        Ok(redis) => redis,
        Err(error) => {
            tracing::error!(error = %error, "cannot use REDIS_URL");
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
        let down_since =
            match subscribe_and_follow(&state, &mut redis, &mut closing, &mut backoff).await {
                Ok(Ended::Closing) => return,
                Ok(Ended::Lost(why)) => {
                    tracing::warn!(why, "Pub/Sub subscription lost; resubscribing");
                    Instant::now()
                }
                Ok(Ended::Unresponsive { since }) => {
                    metrics::counter!(telemetry::PUBSUB_PINGS_MISSED).increment(1);
                    tracing::warn!(
                        timeout_ms = state.config().pubsub_ping_timeout.as_millis(),
                        "Pub/Sub connection answers no ping; resubscribing"
                    );
                    since
                }
                Err(error) => {
                    tracing::warn!(error = %error, "Pub/Sub subscribe failed; retrying");
                    Instant::now()
                }
            };
        state.set_unsubscribed(down_since);
        let pause = backoff.next_delay();
        tokio::select! {
            () = closing.wait() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

enum Ended {
    Closing,
    /// The connection closed, or the server ended the subscription (a slot moved).
    Lost(&'static str),
    /// A ping sent at `since` got no pong in time: the link is half-open.
    Unresponsive {
        since: Instant,
    },
}

/// The outcome of one ping: `Ok` when the pong came in time.
type Pong = BoxFuture<'static, Result<(), PingFailure>>;

enum PingFailure {
    TimedOut,
    Failed(redis::RedisError),
}

async fn subscribe_and_follow(
    state: &AppState,
    redis: &mut RedisConn,
    closing: &mut Shutdown,
    backoff: &mut Backoff,
) -> redis::RedisResult<Ended> {
    let config = &state.config().redis;
    let timeout = config.connect_timeout + config.response_timeout;
    let mut subscription = within(
        timeout,
        Subscription::open(config, vec![keys::EVENTS_CHANNEL.to_owned()]),
    )
    .await?;
    let pinger = subscription.pinger();
    load_top(state, redis).await?;
    state.set_subscribed();
    backoff.reset();
    tracing::info!(
        channel = keys::EVENTS_CHANNEL,
        version = state.hub().current().version,
        "subscribed"
    );
    let period = state.config().pubsub_ping;
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // At most one ping in flight; messages keep flowing while it waits for its pong.
    let mut in_flight: Option<(Instant, Pong)> = None;
    loop {
        tokio::select! {
            () = closing.wait() => return Ok(Ended::Closing),
            notice = subscription.next() => match notice {
                Notice::Message { payload, .. } => {
                    state.hub().offer_json(&payload);
                }
                Notice::Lost(why) => return Ok(Ended::Lost(why)),
            },
            _ = pings.tick(), if in_flight.is_none() => {
                let limit = state.config().pubsub_ping_timeout;
                in_flight = Some((Instant::now(), ping(pinger.clone(), limit)));
            }
            (sent, pong) = pong(&mut in_flight) => {
                in_flight = None;
                match pong {
                    Ok(()) => {}
                    Err(PingFailure::TimedOut) => return Ok(Ended::Unresponsive { since: sent }),
                    Err(PingFailure::Failed(error)) => return Err(error),
                }
            }
        }
    }
}

/// Resolves with the send time and outcome of the ping in flight; never, while there is none.
async fn pong(in_flight: &mut Option<(Instant, Pong)>) -> (Instant, Result<(), PingFailure>) {
    match in_flight {
        Some((sent, pong)) => (*sent, pong.as_mut().await),
        None => std::future::pending().await,
    }
}

/// One ping on the subscription connection, bounded by `limit`.
fn ping(mut pinger: Pinger, limit: Duration) -> Pong {
    Box::pin(async move {
        match tokio::time::timeout(limit, pinger.ping()).await {
            Ok(Ok(())) => Ok(()),
            // The connection's own response timeout may fire first: the same silence.
            Ok(Err(error)) if error.is_timeout() => Err(PingFailure::TimedOut),
            Ok(Err(error)) => Err(PingFailure::Failed(error)),
            Err(_) => Err(PingFailure::TimedOut),
        }
    })
}

/// Reads `{sb}:top` once and offers it to the hub (absent means the board is still empty).
async fn load_top(state: &AppState, redis: &mut RedisConn) -> redis::RedisResult<()> {
    let timeout = state.config().redis.connect_timeout + state.config().redis.response_timeout;
    let top: Option<Vec<u8>> = within(timeout, redis.get(keys::TOP)).await?;
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
