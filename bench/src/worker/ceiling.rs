//! The store's own ceiling for a batched consumer: only the durable per-user writes a batch of `batch`
//! events needs, sent back to back by one client with nothing else — no stream read, no store read,
//! no Redis commit. Any design that writes each user's document with its own statement (the contract's
//! per-user compare-and-set, docs/design.md §5.3) drains at most this fast on the server, so its gain
//! over the naive consumer is bounded by `ceiling / naive`.
//!
//! Two shapes: [`Shape::Upsert`], the worker's statements (one unordered `update`, `upsert: true`,
//! filtered on `{_id, wm}`), and [`Shape::InsertNew`], the cheapest durable write set a batch could
//! make (an `insert` of the users never written, an `update` of the others: two commands).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mongodb::Database;
use mongodb::bson::{Bson, DateTime, Document, doc};
use rand::Rng;
use scoreboard_shared::partition::Partitioner;
use scoreboard_worker::store::mongo::lenient_u64;

use super::load::UserSampler;

/// Which statements a batch is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Upsert,
    InsertNew,
}

impl Shape {
    pub fn label(self) -> &'static str {
        match self {
            Self::Upsert => "ceil-ups",
            Self::InsertNew => "ceil-ins",
        }
    }
}

/// Writes `events` sampled events to `collection` of `db` with write concern majority + journal, in
/// batches of `batch` events of one partition of `partitions` (as the owners batch them; a partition's
/// last batch may be smaller); returns the time taken and the number of commands and batches sent.
///
/// # Errors
/// When the server fails a command or refuses a statement (every statement must apply: the users'
/// watermarks are tracked here, so no compare-and-set can miss).
pub async fn write_only(
    db: &Database,
    collection: &str,
    sampler: &UserSampler,
    events: usize,
    partitions: u16,
    batch: usize,
    shape: Shape,
) -> anyhow::Result<(Duration, u64, u64)> {
    anyhow::ensure!(batch > 0, "batch must be positive");
    let mut rng = rand::rng();
    let partitioner = Partitioner::new(partitions);
    let mut queued: Vec<Vec<(usize, i64)>> = vec![Vec::new(); usize::from(partitions)];
    let mut batches: Vec<Vec<(usize, i64)>> = Vec::with_capacity(events / batch + queued.len());
    for _ in 0..events {
        let user = sampler.sample(&mut rng);
        let queue = &mut queued[usize::from(partitioner.partition_of(&user_id(user)))];
        queue.push((user, rng.random_range(1..=100)));
        if queue.len() == batch {
            batches.push(std::mem::take(queue));
        }
    }
    batches.extend(queued.into_iter().filter(|q| !q.is_empty()));
    // Each written user's last watermark (a counter stands for `<gen>-<ms>-<seq>`).
    let mut wm: HashMap<usize, u64> = HashMap::new();
    let mut next_wm = 0u64;
    let mut commands = 0u64;
    let started = Instant::now();
    for events in &batches {
        let mut increments: HashMap<usize, i64> = HashMap::with_capacity(events.len());
        for &(user, increment) in events {
            *increments.entry(user).or_default() += increment;
        }
        let (mut inserts, mut updates) = (Vec::new(), Vec::new());
        for (user, increment) in increments {
            next_wm += 1;
            let new_wm = format!("1-{next_wm}-0");
            let previous = wm.insert(user, next_wm);
            let id = user_id(user);
            if shape == Shape::InsertNew && previous.is_none() {
                inserts.push(doc! {
                    "_id": id, "score": increment, "wm": new_wm, "p": 0,
                    "name": format!("Player {user}"), "updatedAt": DateTime::now(),
                });
            } else {
                let expected = previous.map_or(Bson::Null, |w| Bson::String(format!("1-{w}-0")));
                updates.push(doc! {
                    "q": {"_id": id, "wm": expected},
                    "u": {
                        "$inc": {"score": increment},
                        "$set": {"wm": new_wm, "p": 0, "name": format!("Player {user}"),
                                 "updatedAt": DateTime::now()},
                    },
                    "upsert": true,
                });
            }
        }
        if !inserts.is_empty() {
            let count = inserts.len();
            run(db, doc! {"insert": collection, "documents": inserts}, count).await?;
            commands += 1;
        }
        if !updates.is_empty() {
            let count = updates.len();
            run(db, doc! {"update": collection, "updates": updates}, count).await?;
            commands += 1;
        }
    }
    Ok((started.elapsed(), commands, batches.len() as u64))
}

/// The id the load gives user number `user`.
fn user_id(user: usize) -> String {
    format!("user-{user:06}")
}

/// Sends one unordered, majority + journal write command of `count` statements; every one must apply.
async fn run(db: &Database, mut command: Document, count: usize) -> anyhow::Result<()> {
    command.insert("ordered", false);
    command.insert("writeConcern", doc! {"w": "majority", "j": true});
    let reply = db.run_command(command).await?;
    anyhow::ensure!(
        reply.get_array("writeErrors").is_err() && reply.get_document("writeConcernError").is_err(),
        "the ceiling's write failed: {reply}"
    );
    let written = reply.get("n").and_then(lenient_u64).unwrap_or(0);
    anyhow::ensure!(
        written == count as u64,
        "the ceiling's write applied {written} of {count} statements"
    );
    Ok(())
}
