//! `scoreboard-worker [run|rebuild]`: the stream consumer container (see the crate docs).

use anyhow::Context;
use scoreboard_shared::logging;
use scoreboard_shared::redis::connect_lazy;
use scoreboard_shared::shutdown::Shutdown;
use scoreboard_worker::app::{self, Command, Settings};
use scoreboard_worker::config::Env;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    logging::init();
    let result = start().await;
    if let Err(error) = &result {
        // One JSON log line for log-based alerting; the return prints the chain to stderr too.
        tracing::error!(error = format!("{error:#}"), "scoreboard-worker exiting");
    }
    result
}

async fn start() -> anyhow::Result<()> {
    let command = Command::parse(std::env::args().skip(1))?;
    let settings = Settings::from_env(&Env::from_process()).context("invalid configuration")?;
    let redis = connect_lazy(&settings.redis).context("creating the Redis client")?;
    let store = app::connect_store(&settings.store, settings.worker.store_connect_timeout).await?;
    match command {
        Command::Run => app::run(settings, redis, store, Shutdown::on_signal()).await,
        Command::Rebuild => app::rebuild(settings, redis, store).await,
    }
}
