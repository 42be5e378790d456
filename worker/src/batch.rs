//! Coalescing a batch of events into one delta per user (docs/design.md §5): increments summed, event ids kept
//! in stream order, the latest display name wins. Pure, so it is unit-tested without servers.

use scoreboard_shared::redis::entry::StreamEvent;

use crate::store::{StoreEvent, UserDelta};

/// One delta per user, users in order of first appearance.
pub fn coalesce(events: &[StreamEvent]) -> Vec<UserDelta> {
    let mut index = std::collections::HashMap::<&str, usize>::new();
    let mut deltas: Vec<UserDelta> = Vec::new();
    for event in events {
        let slot = *index.entry(event.user.as_str()).or_insert_with(|| {
            deltas.push(UserDelta {
                user_id: event.user.clone(),
                display_name: None,
                events: Vec::new(),
            });
            deltas.len() - 1
        });
        let delta = &mut deltas[slot];
        if event.name.is_some() {
            delta.display_name.clone_from(&event.name);
        }
        delta.events.push(StoreEvent {
            event_id: event.id.clone(),
            increment: event.inc,
        });
    }
    deltas
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, user: &str, name: Option<&str>, inc: u64) -> StreamEvent {
        StreamEvent {
            id: id.into(),
            user: user.into(),
            name: name.map(Into::into),
            inc,
            ts_ms: 0,
            req: "r".into(),
        }
    }

    #[test]
    fn sums_per_user_and_keeps_order_and_latest_name() {
        let deltas = coalesce(&[
            event("1-0", "a", Some("Ann"), 5),
            event("1-1", "b", None, 1),
            event("1-2", "a", None, 7),
            event("1-3", "a", Some("Annie"), 1),
        ]);
        assert_eq!(deltas.len(), 2);
        assert_eq!(deltas[0].user_id, "a");
        assert_eq!(deltas[0].total_increment(), 13);
        assert_eq!(deltas[0].display_name.as_deref(), Some("Annie"));
        assert_eq!(
            deltas[0].event_ids().collect::<Vec<_>>(),
            ["1-0", "1-2", "1-3"]
        );
        assert_eq!(
            (deltas[1].total_increment(), deltas[1].display_name.clone()),
            (1, None)
        );
    }

    #[test]
    fn empty_batch_is_empty() {
        assert!(coalesce(&[]).is_empty());
    }
}
