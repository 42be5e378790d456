//! What every handler shares: config, the authenticator, the snapshot hub, the heartbeat tick, the
//! connection caps, the Pub/Sub liveness that `/healthz` reports, and the "closing" switch (a shared
//! [`Shutdown`]) that ends every stream and the Pub/Sub loop on shutdown. Built once per process.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;
use scoreboard_shared::auth::Authenticator;
use scoreboard_shared::config::ConfigError;
use scoreboard_shared::shutdown::{Shutdown, ShutdownTrigger};

use crate::config::SseConfig;
use crate::heartbeat::Heartbeat;
use crate::hub::Hub;
use crate::limits::ConnectionLimiter;
use crate::telemetry;

/// Cheap to clone; shared by every request.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: SseConfig,
    auth: Authenticator,
    hub: Hub,
    heartbeat: Heartbeat,
    limiter: ConnectionLimiter,
    /// Triggered once by [`AppState::close`]; the view is kept here so the channel stays open.
    close: ShutdownTrigger,
    closing: Shutdown,
    liveness: Mutex<Liveness>,
    prometheus: PrometheusHandle,
    http: reqwest::Client,
}

impl AppState {
    /// # Errors
    /// When the configured JWT key cannot be used.
    pub fn new(config: SseConfig) -> Result<Self, ConfigError> {
        scoreboard_shared::tls::install_crypto_provider();
        let auth = Authenticator::new(&config.auth)?;
        let limiter =
            ConnectionLimiter::new(config.max_connections, config.max_connections_per_user);
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(2))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|_| ConfigError::new("DEV_UPDATE_URL", "cannot build an HTTP client"))?;
        let (close, closing) = Shutdown::new();
        let prometheus = telemetry::prometheus();
        // Present from the start (0 until the first subscription), so an alert on it never sees a gap.
        telemetry::pubsub_subscribed(false);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                auth,
                hub: Hub::new(),
                heartbeat: Heartbeat::new(),
                limiter,
                close,
                closing,
                liveness: Mutex::new(Liveness {
                    subscribed: false,
                    down_since: Instant::now(),
                }),
                prometheus,
                http,
            }),
        })
    }

    pub fn config(&self) -> &SseConfig {
        &self.inner.config
    }

    pub(crate) fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }

    pub(crate) fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub(crate) fn heartbeat(&self) -> &Heartbeat {
        &self.inner.heartbeat
    }

    pub(crate) fn limiter(&self) -> &ConnectionLimiter {
        &self.inner.limiter
    }

    pub(crate) fn prometheus(&self) -> &PrometheusHandle {
        &self.inner.prometheus
    }

    /// The HTTP client of the dev update proxy.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Triggered once when the process starts shutting down.
    pub(crate) fn closing(&self) -> Shutdown {
        self.inner.closing.clone()
    }

    /// Ends every stream and the Pub/Sub loop.
    pub(crate) fn close(&self) {
        self.inner.close.trigger();
    }

    /// Whether the Pub/Sub subscription is up (subscribed and answering pings).
    pub fn is_subscribed(&self) -> bool {
        self.liveness().subscribed
    }

    /// Whether the process should get traffic: subscribed, or without a live subscription for no longer
    /// than `SSE_UNHEALTHY_AFTER_SECS` (a resubscription in progress).
    pub fn is_healthy(&self) -> bool {
        let liveness = self.liveness();
        liveness.subscribed || liveness.down_since.elapsed() <= self.config().unhealthy_after
    }

    /// The subscription is live.
    pub(crate) fn set_subscribed(&self) {
        self.liveness().subscribed = true;
        telemetry::pubsub_subscribed(true);
    }

    /// The subscription has not been live since `since` (kept if it was already down earlier).
    pub(crate) fn set_unsubscribed(&self, since: Instant) {
        let mut liveness = self.liveness();
        if liveness.subscribed {
            liveness.subscribed = false;
            liveness.down_since = since;
        }
        drop(liveness);
        telemetry::pubsub_subscribed(false);
    }

    fn liveness(&self) -> std::sync::MutexGuard<'_, Liveness> {
        self.inner
            .liveness
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether the Pub/Sub subscription is live, and since when it has not been.
#[derive(Debug)]
struct Liveness {
    subscribed: bool,
    /// When the subscription was last lost (or the process started, before the first one).
    down_since: Instant,
}
