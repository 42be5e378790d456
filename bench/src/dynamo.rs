//! The DynamoDB store against DynamoDB Local: events/s, ms per batch and store calls per batch for the
//! watermark write path (one consistent read, then one conditional `UpdateItem` per user in parallel):
//! fresh batches with few and with many events per user, and a batch read again after it was applied
//! (a takeover re-reading from the cursor: everything filtered by `wm`, no write).
//!
//! DynamoDB Local is a JVM on SQLite on loopback: its latencies say little about the service; the calls
//! per batch (`BatchGetItem`s, `UpdateItem`s) are the portable figures.

use std::time::{Duration, Instant};

use anyhow::Context;
use scoreboard_shared::partition::StreamId;
use scoreboard_testkit::DynamoLocal;
use scoreboard_worker::config::{Env, StoreConfig};
use scoreboard_worker::store::dynamo::{DynamoStats, DynamoStore};
use scoreboard_worker::store::{UserWrite, Watermark, WatermarkStore};

const BATCHES_PER_CASE: usize = 40;
const TIME_LIMIT: Duration = Duration::from_secs(20);
const PARTITION: u16 = 0;

struct Case {
    name: &'static str,
    users: usize,
    events_per_user: u64,
    /// Whether the batch was applied before (a re-read after a takeover).
    reread: bool,
}

const CASES: [Case; 3] = [
    Case {
        name: "100 users x 1 event",
        users: 100,
        events_per_user: 1,
        reread: false,
    },
    Case {
        name: "50 users x 10 events",
        users: 50,
        events_per_user: 10,
        reread: false,
    },
    Case {
        name: "50 x 10, read again",
        users: 50,
        events_per_user: 10,
        reread: true,
    },
];

pub async fn run() -> anyhow::Result<()> {
    let server = DynamoLocal::start();
    let mut env = server.child_env();
    env.extend([
        ("STORE".to_owned(), "dynamodb".to_owned()),
        ("DYNAMODB_TABLE".to_owned(), "bench".to_owned()),
        ("DYNAMODB_ENSURE_TABLE".to_owned(), "true".to_owned()),
    ]);
    let StoreConfig::DynamoDb(config) = StoreConfig::from_env(&Env::from_pairs(env))? else {
        anyhow::bail!("STORE=dynamodb did not select DynamoDB");
    };
    let store = DynamoStore::connect(config)
        .await
        .context("connect to DynamoDB Local")?;

    println!("== DynamoDB store on DynamoDB Local ({BATCHES_PER_CASE} batches per case)");
    println!(
        "  {:<24} {:>8} {:>9} {:>8} {:>10} {:>8}",
        "case", "events/s", "ms/batch", "gets/b", "updates/b", "retries"
    );
    let mut seq = 0u64;
    for (c, case) in CASES.iter().enumerate() {
        let batches: Vec<Vec<String>> = (0..BATCHES_PER_CASE)
            .map(|b| (0..case.users).map(|u| format!("c{c}-b{b}-u{u}")).collect())
            .collect();
        if case.reread {
            for users in &batches {
                seq += 1;
                apply(&store, users, case.events_per_user, seq).await?;
            }
        }
        let before = store.stats();
        let started = Instant::now();
        let (mut done, mut events, mut updates) = (0usize, 0u64, 0usize);
        for users in &batches {
            if started.elapsed() > TIME_LIMIT {
                break;
            }
            if !case.reread {
                seq += 1;
            }
            updates += apply(&store, users, case.events_per_user, seq).await?;
            done += 1;
            events += users.len() as u64 * case.events_per_user;
        }
        let elapsed = started.elapsed();
        let delta = diff(store.stats(), before);
        let per = |n: f64| n / done.max(1) as f64;
        println!(
            "  {:<24} {:>8.0} {:>9.1} {:>8.2} {:>10.1} {:>8}",
            case.name,
            events as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1000.0 / done.max(1) as f64,
            per(delta.batch_gets as f64),
            per(updates as f64),
            delta.retries,
        );
    }
    println!(
        "  (gets: consistent BatchGetItem of up to 100 keys; updates: conditional UpdateItem, one per user"
    );
    println!("   with fresh events; a batch read again is filtered by wm and writes nothing)");
    Ok(())
}

/// One batch as an owner applies it: read, filter by `wm`, conditional writes. Returns the writes made.
async fn apply(
    store: &DynamoStore,
    users: &[String],
    events_per_user: u64,
    seq: u64,
) -> anyhow::Result<usize> {
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let read = store.read(PARTITION, &names).await?;
    let last = Watermark::new(
        1,
        StreamId {
            ms: seq,
            seq: events_per_user,
        },
    );
    let writes: Vec<UserWrite> = users
        .iter()
        .filter_map(|user| {
            let record = read.users.iter().find(|r| &r.user_id == user);
            let wm = record.and_then(|r| r.wm);
            if wm.is_some_and(|wm| wm >= last) {
                return None;
            }
            Some(UserWrite {
                user_id: user.clone(),
                expected_wm: wm,
                expected_score: record.map_or(0, |r| r.score),
                increment: events_per_user,
                display_name: Some(format!("User {user}")),
                new_wm: last,
            })
        })
        .collect();
    if writes.is_empty() {
        return Ok(0);
    }
    store.write(PARTITION, &writes, read.hw, last).await?;
    Ok(writes.len())
}

fn diff(after: DynamoStats, before: DynamoStats) -> DynamoStats {
    DynamoStats {
        batch_gets: after.batch_gets - before.batch_gets,
        retries: after.retries - before.retries,
    }
}
