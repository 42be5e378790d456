//! Applying one batch to the store exactly once by watermark (`docs/design.md` §5.3, §5.6): read the
//! batch's users (`wm`, score) — those the owner's [`ReadCache`] remembers are not read again — drop events
//! at or below `wm`, write the rest with a compare-and-set on the `wm` read, and re-read and re-filter the
//! users whose write missed. A user whose write the store refuses
//! (an error known to be permanent) is retried a few times; if a re-read still shows `wm` below its events,
//! only that user's events become dead letters and the rest of the batch goes on.

use std::collections::HashMap;
use std::time::Duration;

use scoreboard_shared::partition::{EventId, StreamId};
use scoreboard_shared::redis::entry::{
    FIELD_INCREMENT, FIELD_NAME, FIELD_REQUEST, FIELD_TIMESTAMP, FIELD_USER, FIELD_VERSION,
    SCHEMA_VERSION, StreamEvent,
};

use super::read_cache::ReadCache;
use super::scripts::DeadLetter;
use crate::metrics;
use crate::store::{
    StoreError, UserRecord, UserTotal, UserWrite, Watermark, WatermarkStore, WriteOutcome,
};

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
    /// Store calls made (a read and a write per round; no read when every user was remembered).
    pub round_trips: u32,
}

/// One user's events of the batch, in stream order.
struct UserEvents<'a> {
    user: &'a str,
    events: Vec<&'a StreamEvent>,
    entry_ids: Vec<StreamId>,
}

/// Applies `events` (all of partition `partition`, in stream order, ids parsed) to `store`, reading only
/// the users `cache` does not remember and remembering what it reads and writes.
///
/// # Errors
/// A store error for the whole call: transient ones may be retried by calling again (each user's write is
/// atomic and watermarked, so a retry never counts twice). On an error the cache is cleared: any subset of the
/// writes may have been applied.
pub async fn apply(
    store: &dyn WatermarkStore,
    cache: &mut ReadCache,
    partition: u16,
    generation: u32,
    events: &[(StreamId, StreamEvent)],
) -> Result<Applied, StoreError> {
    let result = apply_batch(store, cache, partition, generation, events).await;
    if result.is_err() {
        cache.clear();
    }
    result
}

async fn apply_batch(
    store: &dyn WatermarkStore,
    cache: &mut ReadCache,
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
        let (records, hw_read) =
            read_users(store, cache, partition, &users, &pending, &mut applied).await?;
        let mut writes = Vec::new();
        let mut written = Vec::new();
        let mut dead_now = Vec::new();
        for &i in &pending {
            let user = &users[i];
            let record = records.get(user.user);
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
            cache.forget(user.user);
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
        let outcomes = store.write(partition, &writes, hw_read, hw).await?;
        applied.round_trips += 1;
        // The write raised `hw` to at least the batch's (a higher stored value costs the next write one
        // compare-and-set miss inside the store, which re-reads it).
        cache.remember_hw(Some(hw_read.map_or(hw, |read| read.max(hw))));
        let mut next = Vec::new();
        for ((write, (i, fresh)), outcome) in writes.into_iter().zip(written).zip(outcomes) {
            match outcome {
                WriteOutcome::Applied { score } => {
                    applied.applied_events += fresh;
                    cache.remember(UserRecord {
                        user_id: write.user_id.clone(),
                        score,
                        display_name: write.display_name.clone(),
                        wm: Some(write.new_wm),
                    });
                    applied.totals.push(UserTotal {
                        user_id: write.user_id,
                        display_name: write.display_name,
                        score,
                    });
                }
                WriteOutcome::Conflict => {
                    cache.forget(&write.user_id);
                    next.push(i);
                }
                WriteOutcome::Refused(error) => {
                    cache.forget(&write.user_id);
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

/// The records of the `pending` users (absent users have none) and the partition's `hw`: remembered ones
/// from `cache`, the rest (and `hw` when not remembered) in one store read, which is then remembered.
async fn read_users(
    store: &dyn WatermarkStore,
    cache: &mut ReadCache,
    partition: u16,
    users: &[UserEvents<'_>],
    pending: &[usize],
    applied: &mut Applied,
) -> Result<(HashMap<String, UserRecord>, Option<Watermark>), StoreError> {
    let mut records = HashMap::with_capacity(pending.len());
    let mut unknown = Vec::new();
    for &i in pending {
        match cache.user(users[i].user) {
            Some(record) => {
                records.insert(record.user_id.clone(), record);
            }
            None => unknown.push(users[i].user),
        }
    }
    metrics::user_records(records.len(), unknown.len());
    let hw = match cache.hw() {
        Some(hw) if unknown.is_empty() => hw,
        _ => {
            let read = store.read(partition, &unknown).await?;
            applied.round_trips += 1;
            cache.remember_hw(read.hw);
            for record in read.users {
                cache.remember(record.clone());
                records.insert(record.user_id.clone(), record);
            }
            read.hw
        }
    };
    Ok((records, hw))
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

#[cfg(test)]
mod tests {
    use crate::store::memory::MemoryStore;

    use super::*;

    const P: u16 = 3;
    const GENERATION: u32 = 1;

    fn event(ms: u64, user: &str, inc: u64) -> (StreamId, StreamEvent) {
        let id = StreamId { ms, seq: 0 };
        let event = StreamEvent {
            id: id.to_string(),
            user: user.to_owned(),
            name: None,
            inc,
            ts_ms: ms,
            req: format!("req-{ms}"),
        };
        (id, event)
    }

    fn total(applied: &Applied, user: &str) -> Option<u64> {
        applied
            .totals
            .iter()
            .find(|t| t.user_id == user)
            .map(|t| t.score)
    }

    #[tokio::test]
    async fn a_batch_of_remembered_users_is_one_write_without_a_read() {
        let store = MemoryStore::new();
        let mut cache = ReadCache::default();
        let first = [event(1, "a", 2), event(2, "b", 3)];
        let applied = apply(&store, &mut cache, P, GENERATION, &first)
            .await
            .unwrap();
        assert_eq!((applied.round_trips, applied.applied_events), (2, 2));

        let second = [event(3, "a", 5), event(4, "b", 7), event(5, "a", 1)];
        let applied = apply(&store, &mut cache, P, GENERATION, &second)
            .await
            .unwrap();
        assert_eq!(applied.round_trips, 1, "no read: both users are remembered");
        assert_eq!(applied.applied_events, 3);
        assert_eq!(
            (total(&applied, "a"), total(&applied, "b")),
            (Some(8), Some(10))
        );
        assert_eq!((store.score("a"), store.score("b")), (Some(8), Some(10)));

        // A new user in the batch: one read, of that user only.
        let third = [event(6, "a", 1), event(7, "c", 4)];
        let applied = apply(&store, &mut cache, P, GENERATION, &third)
            .await
            .unwrap();
        assert_eq!(applied.round_trips, 2);
        assert_eq!((store.score("a"), store.score("c")), (Some(9), Some(4)));
    }

    #[tokio::test]
    async fn a_stale_entry_misses_its_compare_and_set_and_is_read_again_never_counting_twice() {
        let store = MemoryStore::new();
        let mut stale = ReadCache::default();
        apply(&store, &mut stale, P, GENERATION, &[event(1, "a", 1)])
            .await
            .unwrap();
        // Another writer (a newer owner with its own cache) applies the next event of the same user.
        let mut other = ReadCache::default();
        apply(&store, &mut other, P, GENERATION, &[event(2, "a", 10)])
            .await
            .unwrap();
        assert_eq!(store.score("a"), Some(11));

        // The stale owner gets events 2 and 3: its cached wm (event 1) makes event 2 look fresh, the
        // compare-and-set misses, the re-read shows event 2 applied, and only event 3 is added.
        let batch = [event(2, "a", 10), event(3, "a", 100)];
        let applied = apply(&store, &mut stale, P, GENERATION, &batch)
            .await
            .unwrap();
        assert_eq!(applied.round_trips, 3, "write (miss), read, write");
        assert_eq!(applied.applied_events, 1);
        assert_eq!(store.score("a"), Some(111));
        assert_eq!(total(&applied, "a"), Some(111));
        assert_eq!(
            stale.user("a").and_then(|r| r.wm),
            Some(Watermark::new(GENERATION, StreamId { ms: 3, seq: 0 }))
        );
    }

    #[tokio::test]
    async fn events_the_cache_shows_applied_are_dropped_with_the_remembered_total() {
        let store = MemoryStore::new();
        let mut cache = ReadCache::default();
        let batch = [event(1, "a", 4), event(2, "a", 6)];
        apply(&store, &mut cache, P, GENERATION, &batch)
            .await
            .unwrap();
        // The same batch again (a commit that failed after the store write): nothing to read or write.
        let again = apply(&store, &mut cache, P, GENERATION, &batch)
            .await
            .unwrap();
        assert_eq!((again.round_trips, again.applied_events), (0, 0));
        assert_eq!(total(&again, "a"), Some(10));
        assert_eq!(store.score("a"), Some(10));
    }

    #[tokio::test]
    async fn a_failed_write_call_forgets_everything_and_a_refused_user_is_forgotten() {
        let store = MemoryStore::new();
        let mut cache = ReadCache::default();
        apply(
            &store,
            &mut cache,
            P,
            GENERATION,
            &[event(1, "a", 1), event(2, "b", 1)],
        )
        .await
        .unwrap();
        assert_eq!(cache.len(), 2);
        store.fail_next(1);
        let failed = apply(&store, &mut cache, P, GENERATION, &[event(3, "a", 1)]).await;
        assert!(failed.is_err());
        assert!(cache.is_empty() && cache.hw().is_none());

        apply(
            &store,
            &mut cache,
            P,
            GENERATION,
            &[event(3, "a", 1), event(4, "b", 1)],
        )
        .await
        .unwrap();
        store.poison_user("b");
        let applied = apply(
            &store,
            &mut cache,
            P,
            GENERATION,
            &[event(5, "a", 1), event(6, "b", 1)],
        )
        .await
        .unwrap();
        assert_eq!(applied.dead.len(), 1, "b's event is dead-lettered");
        assert!(
            cache.user("b").is_none(),
            "a refused user is read again next time"
        );
        assert_eq!((store.score("a"), store.score("b")), (Some(3), Some(2)));
    }
}
