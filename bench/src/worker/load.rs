//! Load for the worker benchmark: which user each event goes to (uniform or Zipf(1.1) over the users)
//! and pre-filling each user's partition stream `{sb:p}:updates` with entries in the shared v1 schema
//! (pipelined `XADD`s), stamped with [`now_ms`] (the clock lag is measured against). The
//! [`Prefilled`] record of what was appended is what the drains check their progress and lag against.

use rand::Rng;
use scoreboard_shared::partition::{Partitioner, StreamId};
use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::entry::{
    FIELD_INCREMENT, FIELD_NAME, FIELD_REQUEST, FIELD_TIMESTAMP, FIELD_USER, FIELD_VERSION,
    SCHEMA_VERSION,
};
use scoreboard_shared::redis::keys::PartitionKeys;

/// `XADD`s per pipeline.
const CHUNK: usize = 1_000;

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

/// What was appended: per partition, each entry's id and `ts` in stream order.
#[derive(Debug)]
pub struct Prefilled {
    pub partitions: Vec<Vec<(StreamId, u64)>>,
    pub events: usize,
    pub distinct_users: usize,
    /// The sum of all increments: what the store's totals must add up to once drained.
    pub increments: u64,
}

/// Appends `events` entries (v1 schema, `ts` = now, each to its user's partition of `partitions`) in
/// pipelined chunks.
///
/// # Errors
/// When Redis fails or answers an id that does not parse.
pub async fn prefill(
    redis: &mut RedisConn,
    sampler: &UserSampler,
    partitions: u16,
    events: usize,
) -> anyhow::Result<Prefilled> {
    let partitioner = Partitioner::new(partitions);
    let mut rng = rand::rng();
    let mut seen = std::collections::HashSet::new();
    let mut filled = Prefilled {
        partitions: vec![Vec::new(); usize::from(partitions)],
        events: 0,
        distinct_users: 0,
        increments: 0,
    };
    while filled.events < events {
        let chunk = (events - filled.events).min(CHUNK);
        let ts = now_ms();
        let ts_text = ts.to_string();
        let mut pipe = redis::pipe();
        let mut targets = Vec::with_capacity(chunk);
        for _ in 0..chunk {
            let user = sampler.sample(&mut rng);
            seen.insert(user);
            let user_id = format!("user-{user:06}");
            let partition = partitioner.partition_of(&user_id);
            let inc: u64 = rng.random_range(1..=100);
            filled.increments += inc;
            targets.push(partition);
            pipe.cmd("XADD")
                .arg(PartitionKeys::new(partition).updates())
                .arg("*")
                .arg(&[
                    (FIELD_VERSION, SCHEMA_VERSION),
                    (FIELD_USER, user_id.as_str()),
                    (FIELD_NAME, &format!("Player {user}")),
                ])
                .arg(&[
                    (FIELD_INCREMENT, inc.to_string().as_str()),
                    (FIELD_TIMESTAMP, ts_text.as_str()),
                    (FIELD_REQUEST, "bench"),
                ]);
        }
        let ids: Vec<String> = pipe.query_async(redis).await?;
        for (partition, id) in targets.into_iter().zip(ids) {
            let id: StreamId = id.parse()?;
            filled.partitions[usize::from(partition)].push((id, ts));
        }
        filled.events += chunk;
    }
    filled.distinct_users = seen.len();
    Ok(filled)
}
