//! The one shutdown signal of the long-running containers (worker, SSE): SIGTERM (a container stop) or
//! Ctrl-C triggers a [`Shutdown`] that loops `select!` on and check between units of work, so the work in
//! hand is always finished. Tests trigger it by hand through [`ShutdownTrigger`].

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

    /// Triggered by SIGTERM or Ctrl-C (spawns the listener; call inside a Tokio runtime).
    pub fn on_signal() -> Self {
        let (trigger, shutdown) = Self::new();
        tokio::spawn(async move {
            signal().await;
            trigger.trigger();
        });
        shutdown
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

    /// Completes once shutdown is requested. A dropped trigger never requests it: the wait then pends.
    pub async fn wait(&mut self) {
        if self.0.wait_for(|t| *t).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Completes once shutdown is requested, consuming this view (for `with_graceful_shutdown`).
    pub async fn triggered(mut self) {
        self.wait().await;
    }
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

/// Completes on SIGTERM or Ctrl-C, whichever comes first.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_view_sees_the_trigger() {
        let (trigger, shutdown) = Shutdown::new();
        let mut other = shutdown.clone();
        assert!(!shutdown.is_triggered());
        trigger.trigger();
        other.wait().await;
        assert!(shutdown.is_triggered());
        assert!(!Shutdown::never().is_triggered());
    }

    #[tokio::test]
    async fn dropping_the_trigger_does_not_shut_down() {
        let (trigger, mut shutdown) = Shutdown::new();
        drop(trigger);
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), shutdown.wait()).await;
        assert!(waited.is_err(), "still waiting");
        assert!(!shutdown.is_triggered());
    }
}
