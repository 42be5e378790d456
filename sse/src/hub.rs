//! The latest snapshot of this process, in a `tokio::sync::watch`: one slot, never a queue.
//!
//! Invariant: the held version only moves forward. A slow client reads whatever is newest when it gets
//! round to it and skips the versions in between; the process never buffers versions per client.

use std::sync::Arc;

use scoreboard_shared::snapshot::Snapshot;
use tokio::sync::watch;

use crate::stream::EVENT_NAME;
use crate::telemetry;
use crate::wire::Piece;

/// One snapshot, serialised and encoded once for every client.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub version: u64,
    /// The snapshot JSON as sent in `data:`.
    pub json: String,
    /// The whole `leaderboard` event, ready to write (every client shares these bytes).
    pub piece: Piece,
}

impl Frame {
    fn new(version: u64, json: String) -> Self {
        let piece = Piece::event(EVENT_NAME, version, &json);
        Self {
            version,
            json,
            piece,
        }
    }
}

/// Holds the newest [`Frame`] and hands out receivers.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: Arc<watch::Sender<Arc<Frame>>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// Starts at the empty board (version 0).
    pub fn new() -> Self {
        let empty = Snapshot::empty();
        let json = serde_json::to_string(&empty).unwrap_or_default();
        let (tx, _) = watch::channel(Arc::new(Frame::new(empty.version, json)));
        Self { tx: Arc::new(tx) }
    }

    /// A receiver that sees the current frame and every later one it gets round to.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Frame>> {
        self.tx.subscribe()
    }

    /// The frame held now.
    pub fn current(&self) -> Arc<Frame> {
        self.tx.borrow().clone()
    }

    /// Offers a snapshot JSON (from Pub/Sub or `{sb}:top`). Kept only when it parses and is newer than
    /// what is held; returns whether it was kept.
    pub fn offer_json(&self, payload: &[u8]) -> bool {
        match serde_json::from_slice::<Snapshot>(payload) {
            Ok(snapshot) => self.offer(&snapshot),
            Err(error) => {
                tracing::warn!(error = %error, bytes = payload.len(), "ignoring malformed snapshot");
                false
            }
        }
    }

    /// Offers a snapshot; kept only when its version is newer than the one held.
    pub fn offer(&self, snapshot: &Snapshot) -> bool {
        let Ok(json) = serde_json::to_string(snapshot) else {
            return false;
        };
        let kept = self.tx.send_if_modified(|held| {
            if snapshot.version > held.version {
                *held = Arc::new(Frame::new(snapshot.version, json));
                true
            } else {
                false
            }
        });
        if kept {
            telemetry::snapshot_version(snapshot.version);
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(version: u64) -> Snapshot {
        Snapshot {
            version,
            ..Snapshot::empty()
        }
    }

    #[test]
    fn only_moves_forward() {
        let hub = Hub::new();
        assert!(hub.offer(&snap(3)));
        assert!(!hub.offer(&snap(2)));
        assert!(!hub.offer(&snap(3)));
        assert_eq!(hub.current().version, 3);
    }

    #[test]
    fn a_slow_receiver_sees_only_the_newest() {
        let hub = Hub::new();
        let mut rx = hub.subscribe();
        for v in 1..=100 {
            hub.offer(&snap(v));
        }
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().version, 100);
        assert!(!rx.has_changed().unwrap());
    }

    #[test]
    fn malformed_payloads_are_ignored() {
        let hub = Hub::new();
        assert!(!hub.offer_json(b"{not json"));
        assert!(hub.offer_json(br#"{"version":1,"updatedAt":"t","entries":[]}"#));
        assert_eq!(
            hub.current().json,
            r#"{"version":1,"updatedAt":"t","entries":[]}"#
        );
    }
}
