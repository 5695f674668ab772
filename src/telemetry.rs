//! Logging: one `tracing` subscriber writing to stdout, as readable lines or as JSON objects.

use std::io::IsTerminal;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: one readable line per event.
    Text,
    /// For log collectors: one JSON object per line, with the span fields (room, connection) in it.
    Json,
}

/// Installs the subscriber; `filter` is a level or a list of tracing directives.
pub fn init(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_new(filter).with_context(|| format!("invalid log filter {filter:?}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let installed = match format {
        // Colours help a person at a terminal and garble files and log collectors.
        LogFormat::Text => builder
            .with_ansi(std::io::stdout().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    installed
        .map_err(|err| anyhow::anyhow!(err))
        .context("failed to install the log subscriber")
}
