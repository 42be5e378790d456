//! Benchmarks, apart from the tests: each subcommand prints its figures. Absolute times depend on the
//! machine; ratios measured in one run are what to compare.
//!
//! `cargo run --profile bench-release -p scoreboard-bench -- <update|coldstart|dynamo|worker|sse|cluster|all>`
//!
//! This file owns only the dispatch; each subcommand is one module (`sse/` and `worker/` are folders
//! whose `mod.rs` holds what their leaves share). Tokens and fixtures come from `scoreboard_testkit`.

mod cluster;
mod coldstart;
mod dynamo;
mod sse;
mod update;
mod worker;

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
    if all || which == "cluster" {
        cluster::run().await?;
        ran = true;
    }
    if all || which == "dynamo" {
        dynamo::run().await?;
        ran = true;
    }
    anyhow::ensure!(
        ran,
        "unknown benchmark {which:?}; try: update, coldstart, dynamo, worker, sse, cluster, all"
    );
    Ok(())
}
