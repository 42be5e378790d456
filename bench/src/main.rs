//! Benchmarks, apart from the tests: each subcommand prints its figures. Absolute times depend on the
//! machine; ratios measured in one run are what to compare.
//!
//! `cargo run --profile bench-release -p scoreboard-bench -- <update|coldstart|dynamo|worker|sse|all>`

mod coldstart;
mod dynamo;
mod sse;
mod update;
mod worker;
mod worker_load;
mod worker_naive;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".to_owned());
    let all = which == "all";
    let mut ran = false;
    if all || which == "update" {
        update::run().await?;
        ran = true;
    }
    if all || which == "coldstart" {
        coldstart::run(!all).await?;
        ran = true;
    }
    if all || which == "worker" {
        worker::run().await?;
        ran = true;
    }
    if all || which == "sse" {
        sse::run().await?;
        ran = true;
    }
    if all || which == "dynamo" {
        dynamo::run().await?;
        ran = true;
    }
    anyhow::ensure!(
        ran,
        "unknown benchmark {which:?}; try: update, coldstart, dynamo, worker, sse, all"
    );
    Ok(())
}
