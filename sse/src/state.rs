//! What every handler shares: config, the authenticator, the snapshot hub, the connection caps and the
//! "closing" switch (a shared [`Shutdown`]) that ends every stream and the Pub/Sub loop on shutdown. Built
//! once per process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics_exporter_prometheus::PrometheusHandle;
use scoreboard_shared::auth::Authenticator;
use scoreboard_shared::config::ConfigError;
use scoreboard_shared::shutdown::{Shutdown, ShutdownTrigger};

use crate::config::SseConfig;
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
    limiter: ConnectionLimiter,
    /// Triggered once by [`AppState::close`]; the view is kept here so the channel stays open.
    close: ShutdownTrigger,
    closing: Shutdown,
    subscribed: AtomicBool,
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
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                auth,
                hub: Hub::new(),
                limiter,
                close,
                closing,
                subscribed: AtomicBool::new(false),
                prometheus: telemetry::prometheus(),
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

    /// Whether the Pub/Sub subscription is up.
    pub fn is_subscribed(&self) -> bool {
        self.inner.subscribed.load(Ordering::Relaxed)
    }

    pub(crate) fn set_subscribed(&self, up: bool) {
        self.inner.subscribed.store(up, Ordering::Relaxed);
    }
}
