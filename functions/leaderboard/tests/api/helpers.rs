//! Arrangements for the leaderboard function's handler tests: a Redis per test and the service built
//! from env pairs; tokens and events from the test kit.

use leaderboard::LeaderboardService;
use scoreboard_shared::config::Env;
use scoreboard_testkit::RedisServer;
pub use scoreboard_testkit::lambda_event::{Answer, answer, event};

pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

/// An HS256 token for `sub`, valid for an hour.
pub fn hs_token(sub: &str) -> String {
    scoreboard_testkit::token::hs256(SECRET, sub, &format!("Player {sub}"))
}

/// A Redis server plus the leaderboard service configured against it.
pub struct LeaderboardHarness {
    pub redis: RedisServer,
    pub service: LeaderboardService,
}

impl LeaderboardHarness {
    pub fn start(extra: &[(&str, &str)]) -> Self {
        let redis = RedisServer::start();
        let url = redis.url();
        let mut pairs: Vec<(&str, &str)> = vec![("REDIS_URL", &url), ("JWT_SECRET", SECRET)];
        pairs.extend_from_slice(extra);
        let service = LeaderboardService::from_env(&Env::from_pairs(pairs.iter().copied()))
            .expect("valid test config");
        Self { redis, service }
    }

    pub async fn get(&self, path: &str, token: Option<&str>, extra: &[(&str, &str)]) -> Answer {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(auth) = auth.as_deref() {
            headers.push(("authorization", auth));
        }
        answer(
            self.service
                .handle(event("GET", path, &headers, None))
                .await,
        )
    }
}
