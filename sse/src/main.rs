//! The SSE container: config from the environment, bind the public (`BIND_ADDR`) and the metrics
//! (`METRICS_ADDR`) listeners, serve until SIGTERM.

use anyhow::Context;
use scoreboard_shared::config::Env;
use scoreboard_shared::shutdown::Shutdown;
use scoreboard_sse::{AppState, SseConfig, run_with_metrics};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    scoreboard_shared::logging::init();
    let config = SseConfig::from_env(&Env::from_process()).context("configuration")?;
    let (bind_addr, metrics_addr) = (config.bind_addr, config.metrics_addr);
    let state = AppState::new(config).context("configuration")?;
    let listener = tokio::net::TcpListener::bind(bind_addr)
        .await
        .with_context(|| format!("bind BIND_ADDR {bind_addr}"))?;
    let metrics_listener = tokio::net::TcpListener::bind(metrics_addr)
        .await
        .with_context(|| format!("bind METRICS_ADDR {metrics_addr}"))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        metrics_addr = %metrics_listener.local_addr()?,
        "sse listening"
    );
    run_with_metrics(listener, metrics_listener, state, Shutdown::on_signal()).await?;
    tracing::info!("sse stopped");
    Ok(())
}
