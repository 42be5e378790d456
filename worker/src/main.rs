//! `scoreboard-worker [run|rebuild|migrate|dlq list|dlq replay]`: the partition owner container (see the
//! crate docs).

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
    let env = Env::from_process();
    let settings = Settings::from_env(&env).context("invalid configuration")?;
    let redis = connect_lazy(&settings.redis).context("creating the Redis client")?;
    match command {
        Command::Rebuild => return app::rebuild(&settings, redis).await,
        Command::DlqList => return app::dlq_list(&settings, redis).await,
        Command::DlqReplay => return app::dlq_replay(&settings, &env, redis).await,
        Command::Run | Command::Migrate => {}
    }
    let store = app::connect_store(&settings.store, settings.worker.store_connect_timeout).await?;
    match command {
        Command::Migrate => app::migrate(&settings, store).await,
        _ => app::run(settings, redis, store, Shutdown::on_signal()).await,
    }
}
