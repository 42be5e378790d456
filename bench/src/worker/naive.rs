//! The naive drain the worker is compared with: it reads every partition stream through a consumer
//! group (`XREADGROUP`, up to 100 entries per stream per read) and, per event, awaits one store update
//! (`$inc`, upsert), one `ZINCRBY` on the partition's set, one `PUBLISH` and one `XACK`, one by one —
//! what a straightforward consumer does.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mongodb::Collection;
use mongodb::bson::{Document, doc};
use redis::AsyncCommands;
use redis::streams::StreamReadReply;
use scoreboard_shared::partition::Partitioner;
use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::entry::{FIELD_INCREMENT, FIELD_TIMESTAMP, FIELD_USER};
use scoreboard_shared::redis::keys::PartitionKeys;

use super::load::now_ms;

/// The naive consumer's own consumer group on the partition streams.
const NAIVE_GROUP: &str = "naive";

/// Drains `events` entries from the streams of `partitions` partitions the naive way; returns the reads
/// done and the lag histogram (ms, counted from the entry's `ts` or the drain's start, whichever is later).
///
/// # Errors
/// When Redis or the store fails, or the drain outlasts `timeout`.
pub async fn drain(
    redis: &mut RedisConn,
    scores: &Collection<Document>,
    partitions: u16,
    events: usize,
    timeout: Duration,
    durable: bool,
) -> anyhow::Result<(usize, Histogram<u64>)> {
    // The batched worker writes with majority + journal (docs/design.md §5.3); `durable` holds the naive
    // consumer to the same, so the two can also be compared at equal durability.
    let concern = durable.then(|| {
        mongodb::options::WriteConcern::builder()
            .w(mongodb::options::Acknowledgment::Majority)
            .journal(true)
            .build()
    });
    let partitioner = Partitioner::new(partitions);
    let streams: Vec<String> = partitioner
        .all()
        .map(|p| PartitionKeys::new(p).updates())
        .collect();
    for stream in &streams {
        let _: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(stream)
            .arg(NAIVE_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(redis)
            .await;
    }
    let started = Instant::now();
    let start_ms = now_ms();
    let mut lag = Histogram::<u64>::new(3)?;
    let (mut done, mut reads) = (0, 0);
    while done < events {
        anyhow::ensure!(
            started.elapsed() < timeout,
            "naive drain not finished after {}s: {done} of {events} events",
            timeout.as_secs()
        );
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg(NAIVE_GROUP)
            .arg("naive")
            .arg("COUNT")
            .arg(100)
            .arg("BLOCK")
            .arg(100)
            .arg("STREAMS")
            .arg(&streams);
        for _ in &streams {
            read.arg(">");
        }
        let reply: Option<StreamReadReply> = read.query_async(redis).await?;
        reads += 1;
        for stream in reply.into_iter().flat_map(|r| r.keys) {
            for entry in stream.ids {
                let user: String = entry.get(FIELD_USER).unwrap_or_default();
                let inc: i64 = entry.get(FIELD_INCREMENT).unwrap_or(0);
                let ts: u64 = entry.get(FIELD_TIMESTAMP).unwrap_or(0);
                let partition = PartitionKeys::new(partitioner.partition_of(&user));
                let update = scores
                    .update_one(doc! {"_id": &user}, doc! {"$inc": {"score": inc}})
                    .upsert(true);
                match &concern {
                    Some(concern) => update.write_concern(concern.clone()).await?,
                    None => update.await?,
                };
                let _: f64 = redis.zincr(partition.leaderboard(), &user, inc).await?;
                let _: i64 = redis.publish(partition.changed(), &user).await?;
                let _: i64 = redis.xack(&stream.key, NAIVE_GROUP, &[&entry.id]).await?;
                lag.record(now_ms().saturating_sub(ts.max(start_ms)))?;
                done += 1;
            }
        }
    }
    Ok((reads, lag))
}
