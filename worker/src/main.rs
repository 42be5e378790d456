//! `scoreboard-worker [run|rebuild]`: the stream consumer container (see the crate docs).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    scoreboard_shared::logging::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    scoreboard_worker::app::main(&args).await
}
