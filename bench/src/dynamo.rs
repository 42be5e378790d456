//! The DynamoDB store against DynamoDB Local: events/s, ms per batch and round trips per batch for fresh
//! batches (few events per user, many events per user), a full re-delivery and a half re-delivery.
//!
//! DynamoDB Local is a JVM on SQLite on loopback: its latencies say little about the service; the round
//! trips per batch (transactions, `BatchGetItem`s, per-event transactions) are the portable figures.

use std::time::{Duration, Instant};

use anyhow::Context;
use scoreboard_testkit::DynamoLocal;
use scoreboard_worker::config::{Env, StoreConfig};
use scoreboard_worker::store::dynamo::{DynamoStats, DynamoStore};
use scoreboard_worker::store::{ScoreStore, StoreEvent, UserDelta};

const BATCHES_PER_CASE: usize = 40;
const TIME_LIMIT: Duration = Duration::from_secs(20);

struct Case {
    name: &'static str,
    users: usize,
    events_per_user: usize,
    /// Fraction of each batch's events that were applied before (re-delivery).
    replayed: f64,
}

const CASES: [Case; 4] = [
    Case {
        name: "100 users x 1 event",
        users: 100,
        events_per_user: 1,
        replayed: 0.0,
    },
    Case {
        name: "50 users x 10 events",
        users: 50,
        events_per_user: 10,
        replayed: 0.0,
    },
    Case {
        name: "50 x 10, all re-delivered",
        users: 50,
        events_per_user: 10,
        replayed: 1.0,
    },
    Case {
        name: "50 x 10, half re-delivered",
        users: 50,
        events_per_user: 10,
        replayed: 0.5,
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
        "  {:<28} {:>8} {:>9} {:>10} {:>8} {:>9} {:>10}",
        "case", "events/s", "ms/batch", "tx/batch", "gets", "per-evt", "dups/batch"
    );
    let mut next_event = 0u64;
    for (c, case) in CASES.iter().enumerate() {
        let mut batches = Vec::new();
        for b in 0..BATCHES_PER_CASE {
            let mut batch = Vec::with_capacity(case.users);
            for u in 0..case.users {
                let events = (0..case.events_per_user)
                    .map(|_| {
                        next_event += 1;
                        StoreEvent {
                            event_id: format!("{next_event}-0"),
                            increment: 1 + next_event % 7,
                        }
                    })
                    .collect();
                batch.push(UserDelta {
                    user_id: format!("c{c}-b{b}-u{u}"),
                    display_name: Some(format!("User {u}")),
                    events,
                });
            }
            batches.push(batch);
        }
        // Apply the replayed share beforehand (a crash after the store write, before the ack).
        if case.replayed > 0.0 {
            for batch in &batches {
                let pre: Vec<UserDelta> = batch
                    .iter()
                    .map(|d| {
                        let keep = (d.events.len() as f64 * case.replayed).ceil() as usize;
                        UserDelta {
                            events: d.events[..keep].to_vec(),
                            ..d.clone()
                        }
                    })
                    .collect();
                store.apply_batch(&pre).await?;
            }
        }

        let before = store.stats();
        let started = Instant::now();
        let mut done = 0usize;
        let mut events = 0usize;
        for batch in &batches {
            if started.elapsed() > TIME_LIMIT {
                break;
            }
            store.apply_batch(batch).await?;
            done += 1;
            events += batch.iter().map(|d| d.events.len()).sum::<usize>();
        }
        let elapsed = started.elapsed();
        let delta = diff(store.stats(), before);
        let per = |n: u64| n as f64 / done.max(1) as f64;
        println!(
            "  {:<28} {:>8.0} {:>9.1} {:>10.2} {:>8.2} {:>9.1} {:>10.1}",
            case.name,
            events as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1000.0 / done.max(1) as f64,
            per(delta.batch_transactions),
            per(delta.batch_gets),
            per(delta.per_event_transactions),
            per(delta.duplicate_events),
        );
    }
    println!(
        "  (tx: TransactWriteItems of up to 100 items; gets: consistent BatchGetItem for the totals;"
    );
    println!(
        "   per-evt: two-item transactions after a cancellation; dups: events skipped as already applied)"
    );
    Ok(())
}

fn diff(after: DynamoStats, before: DynamoStats) -> DynamoStats {
    DynamoStats {
        batch_transactions: after.batch_transactions - before.batch_transactions,
        cancelled_transactions: after.cancelled_transactions - before.cancelled_transactions,
        per_event_transactions: after.per_event_transactions - before.per_event_transactions,
        duplicate_events: after.duplicate_events - before.duplicate_events,
        batch_gets: after.batch_gets - before.batch_gets,
        retries: after.retries - before.retries,
    }
}
