//! Packing a batch into `TransactWriteItems` calls: each event is one conditional marker item and each
//! (user, chunk of events) one `ADD score` on the user item, so a chunk costs `events + 1` items.
//!
//! Invariants the service imposes and this plan keeps: at most `max_items` items per transaction, no item
//! twice in one transaction (so a user appears at most once per transaction and an event id at most
//! once in the whole plan), and every event of the batch lands in exactly one chunk.

use std::collections::{HashMap, HashSet};

use crate::store::{StoreEvent, UserDelta};

/// Some of one user's events, applied together with one `ADD` of their sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunk<'a> {
    pub user_id: &'a str,
    pub display_name: Option<&'a str>,
    pub events: Vec<&'a StoreEvent>,
}

impl Chunk<'_> {
    /// Items this chunk puts in a transaction: one marker per event plus the user update.
    pub fn items(&self) -> usize {
        self.events.len() + 1
    }

    pub fn increment(&self) -> u64 {
        self.events.iter().map(|e| e.increment).sum()
    }
}

/// The chunks of one transaction.
pub(crate) type Transaction<'a> = Vec<Chunk<'a>>;

/// Splits `batch` into transactions of at most `max_items` items (`max_items >= 2`).
///
/// A repeated event id (within or across deltas) is kept once, at its first occurrence; a user named by
/// several deltas keeps the latest display name. Users are packed first-fit in batch order.
pub(crate) fn plan(batch: &[UserDelta], max_items: usize) -> Vec<Transaction<'_>> {
    assert!(
        max_items >= 2,
        "a transaction needs room for a marker and an update"
    );
    let per_chunk = max_items - 1;
    let mut seen_events: HashSet<&str> = HashSet::new();
    let mut names: HashMap<&str, &str> = HashMap::new();
    for delta in batch {
        if let Some(name) = delta.display_name.as_deref() {
            names.insert(delta.user_id.as_str(), name);
        }
    }

    let mut chunks: Vec<Chunk<'_>> = Vec::new();
    for delta in batch {
        let fresh: Vec<&StoreEvent> = delta
            .events
            .iter()
            .filter(|e| seen_events.insert(e.event_id.as_str()))
            .collect();
        for events in fresh.chunks(per_chunk) {
            chunks.push(Chunk {
                user_id: &delta.user_id,
                display_name: names.get(delta.user_id.as_str()).copied(),
                events: events.to_vec(),
            });
        }
    }

    let mut transactions: Vec<(usize, HashSet<&str>, Transaction<'_>)> = Vec::new();
    for chunk in chunks {
        let slot = transactions.iter_mut().find(|(items, users, _)| {
            items + chunk.items() <= max_items && !users.contains(chunk.user_id)
        });
        match slot {
            Some((items, users, tx)) => {
                *items += chunk.items();
                users.insert(chunk.user_id);
                tx.push(chunk);
            }
            None => transactions.push((chunk.items(), HashSet::from([chunk.user_id]), vec![chunk])),
        }
    }
    transactions.into_iter().map(|(_, _, tx)| tx).collect()
}

/// The distinct user ids of a batch, in first-seen order.
pub(crate) fn users(batch: &[UserDelta]) -> Vec<&str> {
    let mut seen = HashSet::new();
    batch
        .iter()
        .map(|d| d.user_id.as_str())
        .filter(|u| seen.insert(*u))
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn delta(user: &str, ids: &[&str]) -> UserDelta {
        UserDelta {
            user_id: user.to_owned(),
            display_name: None,
            events: ids
                .iter()
                .map(|id| StoreEvent {
                    event_id: (*id).to_owned(),
                    increment: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn small_batch_is_one_transaction() {
        let batch = [delta("a", &["1", "2"]), delta("b", &["3"])];
        let plan = plan(&batch, 100);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].iter().map(Chunk::items).sum::<usize>(), 5);
    }

    #[test]
    fn a_user_with_more_events_than_fit_is_split_across_transactions() {
        let ids: Vec<String> = (0..250).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let batch = [delta("a", &refs)];
        let plan = plan(&batch, 100);
        assert_eq!(plan.len(), 3);
        assert_eq!(plan[0][0].events.len(), 99);
        assert_eq!(plan[2][0].events.len(), 250 - 198);
    }

    #[test]
    fn repeated_event_ids_are_kept_once() {
        let batch = [delta("a", &["1", "1", "2"]), delta("b", &["2", "3"])];
        let plan = plan(&batch, 100);
        let ids: Vec<&str> = plan
            .iter()
            .flatten()
            .flat_map(|c| c.events.iter().map(|e| e.event_id.as_str()))
            .collect();
        assert_eq!(ids, ["1", "2", "3"]);
    }

    proptest! {
        #[test]
        fn plan_respects_service_limits_and_keeps_every_event(
            sizes in proptest::collection::vec(1usize..150, 1..40),
            max_items in 2usize..=100,
        ) {
            let mut next = 0;
            let batch: Vec<UserDelta> = sizes.iter().enumerate().map(|(u, n)| {
                let ids: Vec<String> = (0..*n).map(|_| { next += 1; next.to_string() }).collect();
                let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                delta(&format!("user{u}"), &refs)
            }).collect();
            let plan = plan(&batch, max_items);
            let mut all = HashSet::new();
            for tx in &plan {
                prop_assert!(tx.iter().map(Chunk::items).sum::<usize>() <= max_items);
                let users: HashSet<&str> = tx.iter().map(|c| c.user_id).collect();
                prop_assert_eq!(users.len(), tx.len());
                for chunk in tx {
                    prop_assert!(!chunk.events.is_empty());
                    for e in &chunk.events {
                        prop_assert!(all.insert(e.event_id.clone()));
                    }
                }
            }
            prop_assert_eq!(all.len(), sizes.iter().sum::<usize>());
        }
    }
}
