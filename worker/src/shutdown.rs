//! One shutdown signal for SIGTERM and Ctrl-C, shared by the worker loop and the HTTP server. The loop
//! checks it between batches, so the batch in hand is always finished and committed.

use tokio::sync::watch;

/// A cloneable view of "shutdown was requested".
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// The sending side; dropping it does not trigger shutdown.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl Shutdown {
    /// A new signal and its trigger.
    pub fn new() -> (ShutdownTrigger, Self) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Self(rx))
    }

    /// Never triggered (tests driving single steps).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(false);
        std::mem::forget(tx);
        Self(rx)
    }

    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once shutdown is requested.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|t| *t).await;
    }
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}
