//! Load for the worker benchmark: which user each event goes to (uniform or Zipf(1.1) over the users)
//! and pre-filling `{sb}:updates` with entries in the shared v1 schema, stamped with [`now_ms`] (the clock
//! lag is measured against).

use rand::Rng;
use redis::aio::ConnectionManager;
use scoreboard_shared::redis::entry::{
    FIELD_INCREMENT, FIELD_NAME, FIELD_REQUEST, FIELD_TIMESTAMP, FIELD_USER, FIELD_VERSION,
    SCHEMA_VERSION,
};
use scoreboard_shared::redis::keys;

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How often each user is picked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Popularity {
    Uniform,
    Zipf(f64),
}

impl std::fmt::Display for Popularity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Uniform => write!(f, "uniform"),
            Self::Zipf(s) => write!(f, "zipf({s})"),
        }
    }
}

/// Samples user indexes `0..users` with the given popularity (inverse CDF for Zipf).
#[derive(Debug)]
pub struct UserSampler {
    users: usize,
    cdf: Option<Vec<f64>>,
}

impl UserSampler {
    pub fn new(users: usize, popularity: Popularity) -> Self {
        let cdf = match popularity {
            Popularity::Uniform => None,
            Popularity::Zipf(s) => {
                let mut acc = 0.0;
                let mut cdf: Vec<f64> = (1..=users)
                    .map(|k| {
                        acc += 1.0 / (k as f64).powf(s);
                        acc
                    })
                    .collect();
                for p in &mut cdf {
                    *p /= acc;
                }
                Some(cdf)
            }
        };
        Self { users, cdf }
    }

    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        match &self.cdf {
            None => rng.random_range(0..self.users),
            Some(cdf) => {
                let u: f64 = rng.random();
                cdf.partition_point(|p| *p < u).min(self.users - 1)
            }
        }
    }
}

/// Appends `events` entries (v1 schema, `ts` = now) in pipelined chunks; returns the distinct users.
///
/// # Errors
/// When Redis fails.
pub async fn prefill(
    redis: &mut ConnectionManager,
    sampler: &UserSampler,
    events: usize,
) -> anyhow::Result<usize> {
    let mut rng = rand::rng();
    let mut seen = std::collections::HashSet::new();
    let mut done = 0;
    while done < events {
        let chunk = (events - done).min(1_000);
        let ts = now_ms().to_string();
        let mut pipe = redis::pipe();
        for _ in 0..chunk {
            let user = sampler.sample(&mut rng);
            seen.insert(user);
            let inc = rng.random_range(1..=100u32).to_string();
            pipe.cmd("XADD")
                .arg(keys::UPDATES)
                .arg("*")
                .arg(&[
                    (FIELD_VERSION, SCHEMA_VERSION),
                    (FIELD_USER, &format!("user-{user:06}")),
                    (FIELD_NAME, &format!("Player {user}")),
                ])
                .arg(&[
                    (FIELD_INCREMENT, inc.as_str()),
                    (FIELD_TIMESTAMP, ts.as_str()),
                    (FIELD_REQUEST, "bench"),
                ])
                .ignore();
        }
        let _: () = pipe.query_async(redis).await?;
        done += chunk;
    }
    Ok(seen.len())
}
