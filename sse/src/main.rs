//! The SSE container: config from the environment, bind, serve until SIGTERM.

use anyhow::Context;
use scoreboard_shared::config::Env;
use scoreboard_shared::shutdown::Shutdown;
use scoreboard_sse::{AppState, SseConfig, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    scoreboard_shared::logging::init();
    let config = SseConfig::from_env(&Env::from_process()).context("configuration")?;
    let bind_addr = config.bind_addr;
    let state = AppState::new(config).context("configuration")?;
    let listener = tokio::net::TcpListener::bind(bind_addr)
        .await
        .with_context(|| format!("bind {bind_addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "sse listening");
    run(listener, state, Shutdown::on_signal()).await?;
    tracing::info!("sse stopped");
    Ok(())
}
