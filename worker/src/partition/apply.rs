//! Applying one batch to the store exactly once by watermark (`docs/design.md` §5.3, §5.6): read the
//! batch's users (`wm`, score), drop events at or below `wm`, write the rest with a compare-and-set on the
//! `wm` read, and re-read and re-filter the users whose write missed. A user whose write the store refuses
//! (an error known to be permanent) is retried a few times; if a re-read still shows `wm` below its events,
//! only that user's events become dead letters and the rest of the batch goes on.

use std::collections::HashMap;
use std::time::Duration;

use scoreboard_shared::partition::{EventId, StreamId};
use scoreboard_shared::redis::entry::{
    FIELD_INCREMENT, FIELD_NAME, FIELD_REQUEST, FIELD_TIMESTAMP, FIELD_USER, FIELD_VERSION,
    SCHEMA_VERSION, StreamEvent,
};

use super::scripts::DeadLetter;
use crate::store::{StoreError, UserTotal, UserWrite, Watermark, WatermarkStore, WriteOutcome};

/// Write attempts a refused user gets before its events are dead-lettered.
pub const MAX_REFUSALS: u32 = 3;
/// Read-and-write rounds before a batch whose users keep missing their compare-and-set is given back
/// to the caller as a transient error (another writer is active: the lease will tell).
const MAX_ROUNDS: u32 = 8;

/// What applying a batch did.
#[derive(Debug, Default)]
pub struct Applied {
    /// The absolute total of every user of the batch the store could give (filtered users too).
    pub totals: Vec<UserTotal>,
    /// Events of users the store refused.
    pub dead: Vec<DeadLetter>,
    /// Events applied now (not already applied before).
    pub applied_events: usize,
    /// Store calls made (a read and a write per round).
    pub round_trips: u32,
}

/// One user's events of the batch, in stream order.
struct UserEvents<'a> {
    user: &'a str,
    events: Vec<&'a StreamEvent>,
    entry_ids: Vec<StreamId>,
}

/// Applies `events` (all of partition `partition`, in stream order, ids parsed) to `store`.
///
/// # Errors
/// A store error for the whole call: transient ones may be retried by calling again (each user's write is
/// atomic and watermarked, so a retry never counts twice).
pub async fn apply(
    store: &dyn WatermarkStore,
    partition: u16,
    generation: u32,
    events: &[(StreamId, StreamEvent)],
) -> Result<Applied, StoreError> {
    let users = group(events);
    let Some(batch_hw) = events.iter().map(|(id, _)| *id).max() else {
        return Ok(Applied::default());
    };
    let hw = Watermark::new(generation, batch_hw);
    let mut applied = Applied::default();
    let mut pending: Vec<usize> = (0..users.len()).collect();
    let mut refusals: HashMap<usize, (u32, StoreError)> = HashMap::new();
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        if rounds > MAX_ROUNDS {
            return Err(StoreError::unavailable(format!(
                "partition {partition}: {} users kept missing their watermark compare-and-set",
                pending.len()
            )));
        }
        if refusals.values().any(|(n, _)| *n > 0) {
            tokio::time::sleep(Duration::from_millis(50 * u64::from(rounds))).await;
        }
        let names: Vec<&str> = pending.iter().map(|&i| users[i].user).collect();
        let read = store.read(partition, &names).await?;
        applied.round_trips += 1;
        let records: HashMap<&str, _> =
            read.users.iter().map(|r| (r.user_id.as_str(), r)).collect();
        let mut writes = Vec::new();
        let mut written = Vec::new();
        let mut dead_now = Vec::new();
        for &i in &pending {
            let user = &users[i];
            let record = records.get(user.user).copied();
            let wm = record.and_then(|r| r.wm);
            let fresh: Vec<usize> = (0..user.events.len())
                .filter(|&k| wm.is_none_or(|wm| Watermark::new(generation, user.entry_ids[k]) > wm))
                .collect();
            if fresh.is_empty() {
                if let Some(record) = record {
                    applied.totals.push(UserTotal {
                        user_id: record.user_id.clone(),
                        display_name: record.display_name.clone(),
                        score: record.score,
                    });
                }
                continue;
            }
            if let Some((count, error)) = refusals.get(&i)
                && *count >= MAX_REFUSALS
            {
                dead_now.push((i, fresh, error.to_string()));
                continue;
            }
            let last = *fresh.last().expect("fresh is not empty");
            writes.push(UserWrite {
                user_id: user.user.to_owned(),
                expected_wm: wm,
                expected_score: record.map_or(0, |r| r.score),
                increment: fresh.iter().map(|&k| user.events[k].inc).sum(),
                display_name: fresh
                    .iter()
                    .rev()
                    .find_map(|&k| user.events[k].name.clone())
                    .or_else(|| record.and_then(|r| r.display_name.clone())),
                new_wm: Watermark::new(generation, user.entry_ids[last]),
            });
            written.push((i, fresh.len()));
        }
        for (i, fresh, error) in dead_now {
            let user = &users[i];
            tracing::warn!(partition, user = user.user, events = fresh.len(), error = %error,
                "the store refuses this user's writes: its events go to the DLQ");
            for k in fresh {
                let id = user.entry_ids[k];
                applied.dead.push(DeadLetter {
                    event_id: EventId {
                        partition,
                        entry: id,
                    }
                    .to_string(),
                    user: user.user.to_owned(),
                    reason: "store refused".to_owned(),
                    error: error.clone(),
                    fields_json: entry_fields_json(user.events[k]),
                });
            }
        }
        if writes.is_empty() {
            break;
        }
        let outcomes = store.write(partition, &writes, read.hw, hw).await?;
        applied.round_trips += 1;
        let mut next = Vec::new();
        for ((write, (i, fresh)), outcome) in writes.into_iter().zip(written).zip(outcomes) {
            match outcome {
                WriteOutcome::Applied { score } => {
                    applied.applied_events += fresh;
                    applied.totals.push(UserTotal {
                        user_id: write.user_id,
                        display_name: write.display_name,
                        score,
                    });
                }
                WriteOutcome::Conflict => next.push(i),
                WriteOutcome::Refused(error) => {
                    let entry = refusals.entry(i).or_insert((0, error));
                    entry.0 += 1;
                    next.push(i);
                }
            }
        }
        pending = next;
    }
    Ok(applied)
}

/// A valid entry's fields as the JSON object a dead letter keeps (what `dlq replay` reads back), built
/// only for the events that are dead-lettered.
fn entry_fields_json(event: &StreamEvent) -> String {
    let mut fields = serde_json::Map::new();
    fields.insert(FIELD_VERSION.into(), SCHEMA_VERSION.into());
    fields.insert(FIELD_USER.into(), event.user.clone().into());
    if let Some(name) = &event.name {
        fields.insert(FIELD_NAME.into(), name.clone().into());
    }
    fields.insert(FIELD_INCREMENT.into(), event.inc.to_string().into());
    fields.insert(FIELD_TIMESTAMP.into(), event.ts_ms.to_string().into());
    fields.insert(FIELD_REQUEST.into(), event.req.clone().into());
    serde_json::Value::Object(fields).to_string()
}

fn group(events: &[(StreamId, StreamEvent)]) -> Vec<UserEvents<'_>> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut users: Vec<UserEvents<'_>> = Vec::new();
    for (id, event) in events {
        let slot = *index.entry(event.user.as_str()).or_insert_with(|| {
            users.push(UserEvents {
                user: event.user.as_str(),
                events: Vec::new(),
                entry_ids: Vec::new(),
            });
            users.len() - 1
        });
        users[slot].events.push(event);
        users[slot].entry_ids.push(*id);
    }
    users
}
