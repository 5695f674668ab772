//! `hubbub-bench`: the project's load generator and benchmark.
//!
//! `run` measures Hubbub against the baseline server scenario by scenario, each on its own CPU;
//! `load` puts one load on a server that is already running; `soak` churns a fresh server for an
//! hour and judges whether it stayed flat; `baseline` serves the baseline.

mod baseline;
mod client;
mod load;
mod report;
mod scenario;
mod server_stats;
mod servers;
mod soak;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hubbub-bench",
    about = "Load generator and benchmark for Hubbub"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs scenarios against Hubbub and the baseline: server pinned to CPU 0, load to CPU 1,
    /// a warm-up and repetitions, each reported as median, range and ratio to the baseline.
    Run(scenario::RunArgs),
    /// Opens clients against a running server, sends for a while and reports what arrived.
    Load(load::LoadArgs),
    /// An hour (or ten minutes) of churn against a fresh server, sampled every 10 s: passes if
    /// memory and descriptors stay flat and every acknowledged message is delivered and stored.
    Soak(soak::SoakArgs),
    /// Draws a soak's plot again from the record it wrote.
    SoakPlot(soak::ReplotArgs),
    /// Serves the baseline: the smallest fan-out server, the yardstick for every figure.
    Baseline {
        #[arg(long)]
        port: u16,
    },
}

fn main() -> anyhow::Result<()> {
    let runtime = || tokio::runtime::Runtime::new();
    match Cli::parse().command {
        Command::Run(args) => scenario::run(args),
        Command::Load(args) => runtime()?.block_on(load::run(args)),
        Command::Soak(args) => runtime()?.block_on(soak::run(args)),
        Command::SoakPlot(args) => soak::replot(args),
        Command::Baseline { port } => runtime()?.block_on(baseline::serve(port)),
    }
}
