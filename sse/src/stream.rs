//! One client's event stream: a `retry:` hint, the current snapshot (unless `Last-Event-ID` says the client
//! has it), then the newest snapshot each time the hub moves forward. Ends when the process starts closing.
//!
//! The stream holds the client's [`ConnectionGuard`], so its slot is released whenever the stream is dropped.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::Event;
use futures::Stream;
use scoreboard_shared::shutdown::Shutdown;
use tokio::sync::watch;

use crate::hub::Frame;
use crate::limits::ConnectionGuard;
use crate::telemetry;

/// The SSE event name of a snapshot.
pub const EVENT_NAME: &str = "leaderboard";
/// Gaps wider than this are a cache rebuild moving the version forward (the worker may jump it), not
/// versions a slow client missed, so they are not counted as skipped.
const MAX_COUNTED_GAP: u64 = 10_000;

struct ClientState {
    frames: watch::Receiver<Arc<Frame>>,
    closing: Shutdown,
    last_sent: u64,
    pending: VecDeque<Event>,
    _guard: ConnectionGuard,
}

/// What a new stream starts from.
#[derive(Debug)]
pub struct StreamStart {
    pub frames: watch::Receiver<Arc<Frame>>,
    pub closing: Shutdown,
    /// The client's `Last-Event-ID`, when it sent a number.
    pub last_event_id: Option<u64>,
    pub retry: Duration,
    pub guard: ConnectionGuard,
}

/// Builds the event stream for one client.
pub fn client_events(start: StreamStart) -> impl Stream<Item = Result<Event, Infallible>> {
    let StreamStart {
        mut frames,
        closing,
        last_event_id,
        retry,
        guard,
    } = start;
    let current = frames.borrow_and_update().clone();
    let mut pending = VecDeque::from([Event::default().retry(retry)]);
    if last_event_id != Some(current.version) {
        pending.push_back(frame_event(&current));
    }
    let state = ClientState {
        frames,
        closing,
        last_sent: current.version,
        pending,
        _guard: guard,
    };
    futures::stream::unfold(state, next_event)
}

async fn next_event(mut s: ClientState) -> Option<(Result<Event, Infallible>, ClientState)> {
    if let Some(event) = s.pending.pop_front() {
        return Some((Ok(event), s));
    }
    loop {
        let changed = tokio::select! {
            biased;
            () = s.closing.wait() => false,
            changed = s.frames.changed() => changed.is_ok(),
        };
        if !changed {
            return None;
        }
        let frame = s.frames.borrow_and_update().clone();
        if frame.version <= s.last_sent {
            continue;
        }
        let skipped = frame.version - s.last_sent - 1;
        if skipped > 0 && skipped <= MAX_COUNTED_GAP && s.last_sent > 0 {
            metrics::counter!(telemetry::VERSIONS_SKIPPED).increment(skipped);
        }
        s.last_sent = frame.version;
        return Some((Ok(frame_event(&frame)), s));
    }
}

fn frame_event(frame: &Frame) -> Event {
    metrics::counter!(telemetry::EVENTS_SENT).increment(1);
    Event::default()
        .event(EVENT_NAME)
        .id(frame.version.to_string())
        .data(&frame.json)
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use scoreboard_shared::snapshot::Snapshot;

    use super::*;
    use crate::hub::Hub;
    use crate::limits::ConnectionLimiter;

    fn start(hub: &Hub, closing: &Shutdown, last: Option<u64>) -> StreamStart {
        StreamStart {
            frames: hub.subscribe(),
            closing: closing.clone(),
            last_event_id: last,
            retry: Duration::from_secs(2),
            guard: ConnectionLimiter::new(10, 10).try_acquire("u").unwrap(),
        }
    }

    fn snap(version: u64) -> Snapshot {
        Snapshot {
            version,
            ..Snapshot::empty()
        }
    }

    #[tokio::test]
    async fn sends_retry_then_snapshot_then_only_newer_versions() {
        let hub = Hub::new();
        hub.offer(&snap(4));
        let (close, closing) = Shutdown::new();
        let mut events = Box::pin(client_events(start(&hub, &closing, None)));
        let first = events.next().await.unwrap().unwrap();
        assert!(format!("{first:?}").contains("retry"));
        let second = events.next().await.unwrap().unwrap();
        assert!(format!("{second:?}").contains("leaderboard"));
        hub.offer(&snap(5));
        let third = events.next().await.unwrap().unwrap();
        assert!(format!("{third:?}").contains('5'));
        close.trigger();
        assert!(events.next().await.is_none(), "stream ends on shutdown");
    }

    #[tokio::test]
    async fn last_event_id_equal_to_current_skips_the_snapshot() {
        let hub = Hub::new();
        hub.offer(&snap(7));
        let (_close, closing) = Shutdown::new();
        let mut events = Box::pin(client_events(start(&hub, &closing, Some(7))));
        let _retry = events.next().await.unwrap();
        let next = tokio::time::timeout(Duration::from_millis(50), events.next()).await;
        assert!(next.is_err(), "no duplicate snapshot");
    }
}
