//! One client's event stream: a `retry:` hint, the current snapshot (unless `Last-Event-ID` says the client
//! has it), then the newest snapshot each time the hub moves forward, and a `: heartbeat` comment on each
//! shared heartbeat tick. Ends when the process starts closing, or at the stream's [`Deadline`] (token
//! `exp` or `SSE_MAX_STREAM_SECS`) with a final comment saying why; the deadline is checked on each tick
//! and before each event, so a stream ends at most one heartbeat interval late and holds no timer.
//!
//! [`ClientEvents`] yields shared, pre-encoded [`Piece`]s: a snapshot is the hub's bytes for that version,
//! never a per-client copy. The same state serves both ways a stream is written: straight to the socket
//! ([`crate::direct`]) or as a hyper response body ([`body_stream`]), whichever takes it from its
//! [`StreamSlot`] first.
//!
//! The events hold the client's [`ConnectionGuard`], so its slot is released whenever they are dropped.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use scoreboard_shared::shutdown::Shutdown;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::hub::Frame;
use crate::lifetime::Deadline;
use crate::limits::ConnectionGuard;
use crate::telemetry;
use crate::wire::Piece;

/// The SSE event name of a snapshot.
pub const EVENT_NAME: &str = "leaderboard";
/// The comment written on each heartbeat tick.
pub const HEARTBEAT: &str = "heartbeat";
/// Gaps wider than this are a cache rebuild moving the version forward (the worker may jump it), not
/// versions a slow client missed, so they are not counted as skipped.
const MAX_COUNTED_GAP: u64 = 10_000;

/// One client's stream state: two `watch` receivers, the closing switch, the deadline and the slot.
#[derive(Debug)]
pub struct ClientEvents {
    frames: watch::Receiver<Arc<Frame>>,
    ticks: watch::Receiver<u64>,
    /// False once the heartbeat is gone (its sender dropped), so a closed channel is not polled in a loop.
    ticking: bool,
    closing: Shutdown,
    deadline: Deadline,
    last_sent: u64,
    /// What to send before waiting, last first (emptied, and its allocation freed, after connect).
    pending: Vec<Piece>,
    /// Set once the final comment is queued: the stream ends when `pending` is drained.
    finished: bool,
    _guard: ConnectionGuard,
}

/// What a new stream starts from.
#[derive(Debug)]
pub struct StreamStart {
    pub frames: watch::Receiver<Arc<Frame>>,
    /// The shared heartbeat tick ([`crate::heartbeat::Heartbeat::subscribe`]).
    pub ticks: watch::Receiver<u64>,
    pub closing: Shutdown,
    /// When the stream ends and why.
    pub deadline: Deadline,
    /// The client's `Last-Event-ID`, when it sent a canonical number.
    pub last_event_id: Option<u64>,
    pub retry: Duration,
    pub guard: ConnectionGuard,
}

enum Wake {
    Frame,
    Tick,
    TicksGone,
}

impl ClientEvents {
    /// The stream of one client, starting with the retry hint and (unless it has it) the current snapshot.
    pub fn new(start: StreamStart) -> Self {
        let StreamStart {
            mut frames,
            ticks,
            closing,
            deadline,
            last_event_id,
            retry,
            guard,
        } = start;
        let current = frames.borrow_and_update().clone();
        let mut first = vec![Piece::retry(retry)];
        if last_event_id != Some(current.version) {
            first.push(frame_piece(&current));
        }
        let mut events = Self {
            frames,
            ticks,
            ticking: true,
            closing,
            deadline,
            last_sent: current.version,
            pending: Vec::new(),
            finished: false,
            _guard: guard,
        };
        // A token accepted only thanks to the clock-skew leeway has already expired: say so after the snapshot.
        if let Some(last) = events.end_if_due() {
            first.push(last);
        }
        first.reverse();
        events.pending = first;
        events
    }

    /// The next piece to write; `None` when the stream is over (closing, or after the final comment).
    /// Cancel-safe: nothing is consumed across an `.await`.
    pub async fn next(&mut self) -> Option<Piece> {
        if let Some(piece) = self.pending.pop() {
            if self.pending.is_empty() {
                self.pending = Vec::new();
            }
            return Some(piece);
        }
        if self.finished {
            return None;
        }
        loop {
            let wake = tokio::select! {
                biased;
                () = self.closing.wait() => return None,
                changed = self.frames.changed() => match changed {
                    Ok(()) => Wake::Frame,
                    Err(_) => return None,
                },
                changed = self.ticks.changed(), if self.ticking => match changed {
                    Ok(()) => Wake::Tick,
                    Err(_) => Wake::TicksGone,
                },
            };
            if let Some(last) = self.end_if_due() {
                return Some(last);
            }
            match wake {
                Wake::TicksGone => self.ticking = false,
                Wake::Tick => return Some(Piece::heartbeat()),
                Wake::Frame => {
                    let frame = self.frames.borrow_and_update().clone();
                    if frame.version <= self.last_sent {
                        continue;
                    }
                    let skipped = frame.version - self.last_sent - 1;
                    if skipped > 0 && skipped <= MAX_COUNTED_GAP && self.last_sent > 0 {
                        telemetry::versions_skipped(skipped);
                    }
                    self.last_sent = frame.version;
                    return Some(frame_piece(&frame));
                }
            }
        }
    }

    /// The final comment, once, when the deadline has passed.
    fn end_if_due(&mut self) -> Option<Piece> {
        if self.finished || !self.deadline.has_passed(Instant::now()) {
            return None;
        }
        self.finished = true;
        let reason = self.deadline.reason;
        telemetry::stream_closed(reason.label());
        Some(Piece::comment(reason.comment()))
    }
}

fn frame_piece(frame: &Frame) -> Piece {
    telemetry::event_sent();
    frame.piece.clone()
}

/// Where a stream waits until it is written, one way or the other: the response carries it in its
/// extensions (for [`crate::direct`]) and in its body ([`body_stream`]); whichever takes it first writes it.
#[derive(Debug, Clone)]
pub struct StreamSlot(Arc<Mutex<Option<ClientEvents>>>);

impl StreamSlot {
    pub fn new(events: ClientEvents) -> Self {
        Self(Arc::new(Mutex::new(Some(events))))
    }

    /// The events, once.
    pub fn take(&self) -> Option<ClientEvents> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// The events of `slot` as a response body (SSE text per item); empty when the slot was already taken.
pub fn body_stream(slot: StreamSlot) -> impl Stream<Item = Result<Bytes, Infallible>> {
    futures::stream::unfold((slot, None::<ClientEvents>), |(slot, events)| async move {
        let mut events = match events {
            Some(events) => events,
            None => slot.take()?,
        };
        let piece = events.next().await?;
        Some((Ok(piece.sse), (slot, Some(events))))
    })
}

/// Builds the events of one client as an SSE text stream (one message per item).
#[cfg(test)]
pub fn client_events(start: StreamStart) -> impl Stream<Item = Result<Bytes, Infallible>> {
    body_stream(StreamSlot::new(ClientEvents::new(start)))
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use scoreboard_shared::snapshot::Snapshot;

    use super::*;
    use crate::heartbeat::Heartbeat;
    use crate::hub::Hub;
    use crate::lifetime::EndReason;
    use crate::limits::ConnectionLimiter;

    const HOUR: Duration = Duration::from_secs(3_600);
    const LIMIT: Duration = Duration::from_secs(5);

    fn start_with(
        hub: &Hub,
        heartbeat: &Heartbeat,
        closing: &Shutdown,
        last: Option<u64>,
        deadline: Deadline,
    ) -> StreamStart {
        StreamStart {
            frames: hub.subscribe(),
            ticks: heartbeat.subscribe(),
            closing: closing.clone(),
            deadline,
            last_event_id: last,
            retry: Duration::from_secs(2),
            guard: ConnectionLimiter::new(10, 10).try_acquire("u").unwrap(),
        }
    }

    fn start(hub: &Hub, closing: &Shutdown, last: Option<u64>) -> StreamStart {
        let far = Deadline::earliest(Instant::now(), None, HOUR);
        start_with(hub, &Heartbeat::new(), closing, last, far)
    }

    fn snap(version: u64) -> Snapshot {
        Snapshot {
            version,
            ..Snapshot::empty()
        }
    }

    /// An item's wire text (`: heartbeat\n\n`, `event: leaderboard\n…`).
    async fn next_text(
        events: &mut (impl Stream<Item = Result<Bytes, Infallible>> + Unpin),
    ) -> String {
        let event = tokio::time::timeout(LIMIT, events.next())
            .await
            .expect("an event within the bound")
            .expect("the stream is still open")
            .unwrap();
        String::from_utf8(event.to_vec()).unwrap()
    }

    fn due_now(reason: EndReason) -> Deadline {
        Deadline {
            at: Instant::now(),
            reason,
        }
    }

    #[tokio::test]
    async fn sends_retry_then_snapshot_then_only_newer_versions() {
        let hub = Hub::new();
        hub.offer(&snap(4));
        let (close, closing) = Shutdown::new();
        let mut events = Box::pin(client_events(start(&hub, &closing, None)));
        assert!(next_text(&mut events).await.starts_with("retry: 2000\n\n"));
        assert!(
            next_text(&mut events)
                .await
                .starts_with("event: leaderboard\nid: 4\n")
        );
        hub.offer(&snap(5));
        assert!(next_text(&mut events).await.contains("id: 5\n"));
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

    #[tokio::test]
    async fn each_shared_tick_writes_a_heartbeat_comment() {
        let hub = Hub::new();
        let heartbeat = Heartbeat::new();
        let (_close, closing) = Shutdown::new();
        let far = Deadline::earliest(Instant::now(), None, HOUR);
        let mut events = Box::pin(client_events(start_with(
            &hub, &heartbeat, &closing, None, far,
        )));
        assert!(next_text(&mut events).await.contains("retry"));
        assert!(next_text(&mut events).await.contains(EVENT_NAME));
        for _ in 0..2 {
            heartbeat.beat();
            assert!(next_text(&mut events).await.contains(": heartbeat"));
        }
    }

    #[tokio::test]
    async fn a_passed_deadline_ends_the_stream_on_the_next_tick_with_its_reason() {
        for reason in [EndReason::TokenExpired, EndReason::LifetimeReached] {
            let hub = Hub::new();
            let heartbeat = Heartbeat::new();
            let (_close, closing) = Shutdown::new();
            // Due in 50 ms: nothing happens until a tick (or an event) comes after it.
            let deadline = Deadline {
                at: Instant::now() + Duration::from_millis(50),
                reason,
            };
            let mut events = Box::pin(client_events(start_with(
                &hub, &heartbeat, &closing, None, deadline,
            )));
            assert!(next_text(&mut events).await.contains("retry"));
            assert!(next_text(&mut events).await.contains(EVENT_NAME));
            tokio::time::sleep_until(deadline.at).await;
            heartbeat.beat();
            let last = next_text(&mut events).await;
            assert!(last.contains(&format!(": {}", reason.comment())), "{last}");
            let end = tokio::time::timeout(LIMIT, events.next()).await.unwrap();
            assert!(end.is_none(), "the body ends after the comment");
        }
    }

    #[tokio::test]
    async fn a_passed_deadline_is_checked_before_sending_an_event() {
        let hub = Hub::new();
        let (_close, closing) = Shutdown::new();
        let mut events = Box::pin(client_events(start_with(
            &hub,
            &Heartbeat::new(),
            &closing,
            Some(0),
            Deadline {
                at: Instant::now() + Duration::from_millis(20),
                reason: EndReason::TokenExpired,
            },
        )));
        assert!(next_text(&mut events).await.contains("retry"));
        tokio::time::sleep(Duration::from_millis(30)).await;
        hub.offer(&snap(9));
        let last = next_text(&mut events).await;
        assert!(last.contains(": token expired"), "not the snapshot: {last}");
        assert!(events.next().await.is_none());
    }

    #[tokio::test]
    async fn a_token_already_expired_at_connect_gets_the_board_then_the_comment() {
        let hub = Hub::new();
        hub.offer(&snap(3));
        let (_close, closing) = Shutdown::new();
        let mut events = Box::pin(client_events(start_with(
            &hub,
            &Heartbeat::new(),
            &closing,
            None,
            due_now(EndReason::TokenExpired),
        )));
        assert!(next_text(&mut events).await.contains("retry"));
        assert!(next_text(&mut events).await.contains(EVENT_NAME));
        assert!(next_text(&mut events).await.contains(": token expired"));
        assert!(events.next().await.is_none());
    }

    #[tokio::test]
    async fn a_stopped_heartbeat_does_not_stop_the_snapshots() {
        let hub = Hub::new();
        let heartbeat = Heartbeat::new();
        let (_close, closing) = Shutdown::new();
        let far = Deadline::earliest(Instant::now(), None, HOUR);
        let mut events = Box::pin(client_events(start_with(
            &hub,
            &heartbeat,
            &closing,
            Some(0),
            far,
        )));
        assert!(next_text(&mut events).await.contains("retry"));
        drop(heartbeat);
        let offer = {
            let hub = hub.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                hub.offer(&snap(1));
            })
        };
        assert!(next_text(&mut events).await.contains("id: 1"));
        offer.await.unwrap();
    }
}
