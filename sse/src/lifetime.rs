//! When a stream must end: at its token's `exp` or after `SSE_MAX_STREAM_SECS`, whichever comes first, and
//! the SSE comment that tells the client why. A stream checks its [`Deadline`] on the shared heartbeat tick
//! and before each event, so no stream holds a timer of its own.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::time::Instant;

/// Why a stream was closed by the server (not by shutdown or the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The token's `exp` passed: the browser reconnects with a fresh token.
    TokenExpired,
    /// The stream lived `SSE_MAX_STREAM_SECS`.
    LifetimeReached,
}

impl EndReason {
    /// The text of the final SSE comment (`: token expired`).
    pub fn comment(self) -> &'static str {
        match self {
            Self::TokenExpired => "token expired",
            Self::LifetimeReached => "stream lifetime reached",
        }
    }

    /// The `reason` label of `sse_streams_closed_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::TokenExpired => "token_expired",
            Self::LifetimeReached => "max_lifetime",
        }
    }
}

/// The moment a stream ends and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub at: Instant,
    pub reason: EndReason,
}

impl Deadline {
    /// The earlier of the token's expiry (`None`: the token has no readable `exp`) and `max_lifetime`
    /// from `now`; on a tie the token wins, since that is what the client must act on.
    pub fn earliest(now: Instant, token_left: Option<Duration>, max_lifetime: Duration) -> Self {
        match token_left {
            Some(left) if left <= max_lifetime => Self {
                at: now + left,
                reason: EndReason::TokenExpired,
            },
            _ => Self {
                at: now + max_lifetime,
                reason: EndReason::LifetimeReached,
            },
        }
    }

    pub fn has_passed(&self, now: Instant) -> bool {
        now >= self.at
    }
}

#[derive(Deserialize)]
struct ExpiryClaim {
    exp: Option<u64>,
}

/// How long `token` has left before its `exp` (zero when it already passed: a token accepted within the
/// clock-skew leeway), or `None` when it has no integer `exp`.
///
/// Only for a token the authenticator has just verified: this reads the payload without checking the
/// signature again. `scoreboard_shared::auth::Principal` does not expose `exp`, hence the second read.
pub fn token_time_left(token: &str, now: SystemTime) -> Option<Duration> {
    let claim: ExpiryClaim = jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
    let expires = UNIX_EPOCH.checked_add(Duration::from_secs(claim.exp?))?;
    Some(expires.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "lifetime-test-secret-0123456789abcdef";

    fn token(ttl_secs: i64) -> String {
        scoreboard_testkit::token::hs256_with(
            SECRET,
            &scoreboard_testkit::token::claims("u1", "Ann", ttl_secs),
        )
    }

    #[test]
    fn the_earlier_end_wins() {
        let now = Instant::now();
        let hour = Duration::from_secs(3_600);
        let token_first = Deadline::earliest(now, Some(Duration::from_secs(3)), hour);
        assert_eq!(token_first.reason, EndReason::TokenExpired);
        assert_eq!(token_first.at, now + Duration::from_secs(3));
        let lifetime_first = Deadline::earliest(now, Some(hour * 2), hour);
        assert_eq!(lifetime_first.reason, EndReason::LifetimeReached);
        assert_eq!(lifetime_first.at, now + hour);
        assert_eq!(
            Deadline::earliest(now, None, hour).reason,
            EndReason::LifetimeReached
        );
        assert!(token_first.has_passed(now + Duration::from_secs(3)));
        assert!(!token_first.has_passed(now + Duration::from_secs(2)));
    }

    #[test]
    fn time_left_comes_from_the_exp_claim() {
        let now = SystemTime::now();
        let left = token_time_left(&token(120), now).expect("exp");
        assert!(
            left > Duration::from_secs(115) && left <= Duration::from_secs(121),
            "{left:?}"
        );
        assert_eq!(
            token_time_left(&token(-10), now),
            Some(Duration::ZERO),
            "expired within the leeway: end at once"
        );
        assert_eq!(token_time_left("not.a.token", now), None);
        let no_exp =
            scoreboard_testkit::token::hs256_with(SECRET, &serde_json::json!({"sub": "u"}));
        assert_eq!(token_time_left(&no_exp, now), None);
    }
}
