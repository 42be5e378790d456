//! The process-wide heartbeat tick: one timer for every open stream. Each tick wakes every stream once, which
//! writes a `: heartbeat` comment (so proxies keep idle streams open) and checks its
//! [`Deadline`](crate::lifetime::Deadline). No stream holds a timer of its own.

use std::sync::Arc;
use std::time::Duration;

use scoreboard_shared::shutdown::Shutdown;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

/// The tick count, in a `watch`: receivers wake on each tick.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    tx: Arc<watch::Sender<u64>>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeat {
    pub fn new() -> Self {
        let (tx, _) = watch::channel(0);
        Self { tx: Arc::new(tx) }
    }

    /// A receiver that wakes on every later tick.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// Wakes every receiver once.
    pub fn beat(&self) {
        self.tx.send_modify(|ticks| *ticks = ticks.wrapping_add(1));
    }
}

/// Beats every `period` until `closing` is triggered.
pub async fn run(heartbeat: Heartbeat, period: Duration, mut closing: Shutdown) {
    let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = closing.wait() => return,
            _ = ticks.tick() => heartbeat.beat(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_receiver_wakes_on_each_tick_until_closing() {
        let heartbeat = Heartbeat::new();
        let (close, closing) = Shutdown::new();
        let mut a = heartbeat.subscribe();
        let mut b = heartbeat.subscribe();
        let ticker = tokio::spawn(run(heartbeat.clone(), Duration::from_millis(20), closing));
        let limit = Duration::from_secs(5);
        for _ in 0..3 {
            tokio::time::timeout(limit, a.changed())
                .await
                .unwrap()
                .unwrap();
            tokio::time::timeout(limit, b.changed())
                .await
                .unwrap()
                .unwrap();
        }
        close.trigger();
        tokio::time::timeout(limit, ticker).await.unwrap().unwrap();
        assert!(*a.borrow_and_update() >= 3);
    }
}
