//! The naive drain the worker is compared with: per event one store update (`$inc`, upsert), one
//! `ZINCRBY`, one `PUBLISH` and one `XACK` — what a straightforward consumer does.

use std::time::Instant;

use hdrhistogram::Histogram;
use mongodb::Collection;
use mongodb::bson::{Document, doc};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use redis::streams::StreamReadReply;
use scoreboard_shared::redis::entry::{FIELD_INCREMENT, FIELD_TIMESTAMP, FIELD_USER};
use scoreboard_shared::redis::keys;

use super::load::now_ms;

/// Drains `events` entries the naive way; returns the reads (batches) done and the lag histogram (ms).
///
/// # Errors
/// When Redis or the store fails.
pub async fn drain(
    redis: &mut ConnectionManager,
    scores: &Collection<Document>,
    events: usize,
) -> anyhow::Result<(usize, Histogram<u64>)> {
    let _: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(keys::UPDATES)
        .arg(keys::CONSUMER_GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(redis)
        .await;
    let mut lag = Histogram::<u64>::new(3)?;
    let (mut done, mut reads) = (0, 0);
    let deadline = Instant::now() + std::time::Duration::from_secs(600);
    while done < events {
        anyhow::ensure!(
            Instant::now() < deadline,
            "naive drain took over 10 minutes"
        );
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(keys::CONSUMER_GROUP)
            .arg("naive")
            .arg("COUNT")
            .arg(100)
            .arg("BLOCK")
            .arg(100)
            .arg("STREAMS")
            .arg(keys::UPDATES)
            .arg(">")
            .query_async(redis)
            .await?;
        reads += 1;
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            let user: String = entry.get(FIELD_USER).unwrap_or_default();
            let inc: i64 = entry.get(FIELD_INCREMENT).unwrap_or(0);
            let ts: u64 = entry.get(FIELD_TIMESTAMP).unwrap_or(0);
            scores
                .update_one(doc! {"_id": &user}, doc! {"$inc": {"score": inc}})
                .upsert(true)
                .await?;
            let _: f64 = redis.zincr(keys::LEADERBOARD, &user, inc).await?;
            let _: i64 = redis.publish(keys::EVENTS_CHANNEL, &user).await?;
            let _: i64 = redis
                .xack(keys::UPDATES, keys::CONSUMER_GROUP, &[&entry.id])
                .await?;
            lag.record(now_ms().saturating_sub(ts))?;
            done += 1;
        }
    }
    Ok((reads, lag))
}
