//! Logging: one `tracing` subscriber writing human-readable lines to stdout.

use std::io::IsTerminal;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

/// Installs the subscriber; `filter` is a level or a list of tracing directives.
pub fn init(filter: &str) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_new(filter).with_context(|| format!("invalid log filter {filter:?}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours help a person at a terminal and garble files and log collectors.
        .with_ansi(std::io::stdout().is_terminal())
        .try_init()
        .map_err(|err| anyhow::anyhow!(err))
        .context("failed to install the log subscriber")
}
