//! Logging: one `tracing` subscriber writing to stdout, as readable lines or as JSON objects.
//!
//! actix-http's HTTP/1 parser and dispatcher log what a client did wrong (a head too large, a
//! request that does not parse, a connection cut mid-request) at ERROR, one line per request, and
//! whatever the level: a stranger could fill the operator's log and page them. Those lines are
//! counted instead, and [`summarise_client_noise`] writes one warning per period for all of them.
//!
//! actix-server logs each failed accept at ERROR, every half second for as long as the process is at
//! its open-files limit, which a flood of connections can cause: those are counted and summarised
//! the same way.
//!
//! sqlx's pool logs an ERROR each time a new connection fails to set up, retrying every few
//! milliseconds while a database file is unwritable. Hubbub keeps the cause and reports it once
//! per outage (storage's own ERROR, and `/healthz`), so those lines are not written.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{self, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::instruments;

/// How often, at most, the warning about client-caused HTTP errors is written.
pub const NOISE_SUMMARY_PERIOD: Duration = Duration::from_secs(10);

/// Where actix-http logs the HTTP/1 errors a client causes.
const CLIENT_NOISE_TARGETS: [&str; 2] = ["actix_http::h1::decoder", "actix_http::h1::dispatcher"];

/// Where sqlx's pool logs connection set-up failures, which storage reports itself.
const POOL_TARGET: &str = "sqlx_core::pool::inner";

/// Where actix-server logs a connection it could not accept, and how that line starts.
const ACCEPT_TARGET: &str = "actix_server::accept";
const ACCEPT_FAILURE: &str = "Error accepting connection";

/// Client-caused HTTP errors since the last summary, and the last one's message.
static NOISE: Noise = Noise::new();
/// Connections that could not be accepted since the last summary.
static ACCEPT_FAILURES: Noise = Noise::new();

struct Noise {
    count: AtomicU64,
    last: Mutex<String>,
}

impl Noise {
    const fn new() -> Self {
        Self {
            count: AtomicU64::new(0),
            last: Mutex::new(String::new()),
        }
    }

    fn count(&self, message: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = message;
    }

    /// How many since the last call, and the last one's message, if there were any.
    fn take(&self) -> Option<(u64, String)> {
        let count = self.count.swap(0, Ordering::Relaxed);
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        (count > 0).then(|| (count, last.clone()))
    }
}

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
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match format {
        // Colours help a person at a terminal and garble files and log collectors.
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stdout().is_terminal())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(lines.with_filter(Quiet))
        .with(NoiseCounter)
        .with(filter)
        .try_init()
        .map_err(|err| anyhow::anyhow!(err))
        .context("failed to install the log subscriber")
}

/// Writes one warning for the client-caused HTTP errors since the last call and one for the
/// connections that could not be accepted, if there were any, and counts them in
/// `hubbub_http_client_errors_total` and `hubbub_accept_errors_total`. Run every
/// [`NOISE_SUMMARY_PERIOD`].
pub fn summarise_client_noise() {
    let period = NOISE_SUMMARY_PERIOD.as_secs();
    if let Some((count, last)) = NOISE.take() {
        metrics::counter!(instruments::HTTP_CLIENT_ERRORS).increment(count);
        tracing::warn!(
            count,
            last = %last,
            "refused {count} malformed, oversized or cut-off HTTP requests in the last {period} s"
        );
    }
    if let Some((count, last)) = ACCEPT_FAILURES.take() {
        metrics::counter!(instruments::ACCEPT_ERRORS).increment(count);
        tracing::warn!(
            count,
            last = %last,
            "could not accept new connections {count} times in the last {period} s; at the \
             open-files limit they wait until descriptors free up (raise it with ulimit -n)"
        );
    }
}

/// A warning or error from actix-http's HTTP/1 parser or dispatcher.
fn is_client_noise(meta: &Metadata<'_>) -> bool {
    meta.is_event() && *meta.level() <= Level::WARN && CLIENT_NOISE_TARGETS.contains(&meta.target())
}

/// An ERROR from sqlx's pool: a connection that failed to set up, whose cause storage keeps.
fn is_reported_by_storage(meta: &Metadata<'_>) -> bool {
    meta.is_event() && *meta.level() == Level::ERROR && meta.target() == POOL_TARGET
}

/// actix-server's line for a connection it could not accept (not its other errors, which stay).
fn accept_failure(event: &Event<'_>) -> Option<String> {
    if event.metadata().target() != ACCEPT_TARGET {
        return None;
    }
    let mut message = Message::default();
    event.record(&mut message);
    message.0.starts_with(ACCEPT_FAILURE).then_some(message.0)
}

/// What the log lines leave out: what is summarised, and what storage reports itself.
struct Quiet;

impl<S: Subscriber> layer::Filter<S> for Quiet {
    fn enabled(&self, meta: &Metadata<'_>, _: &layer::Context<'_, S>) -> bool {
        !is_client_noise(meta) && !is_reported_by_storage(meta)
    }

    fn event_enabled(&self, event: &Event<'_>, _: &layer::Context<'_, S>) -> bool {
        accept_failure(event).is_none()
    }
}

/// Counts what is summarised, keeping the last message of each kind for its summary.
struct NoiseCounter;

impl<S: Subscriber> Layer<S> for NoiseCounter {
    fn on_event(&self, event: &Event<'_>, _: layer::Context<'_, S>) {
        if is_client_noise(event.metadata()) {
            let mut message = Message::default();
            event.record(&mut message);
            NOISE.count(message.0);
        } else if let Some(failure) = accept_failure(event) {
            ACCEPT_FAILURES.count(failure);
        }
    }
}

/// An event's `message` field, as text.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}
