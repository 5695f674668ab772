//! What the server counts, and the Prometheus exporter behind `GET /metrics`.
//!
//! Metric names are kept here, so the list of what is measured reads in one place.

use std::sync::{Mutex, PoisonError};

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const CONNECTIONS_OPEN: &str = "hubbub_connections_open";
pub const ROOMS_LIVE: &str = "hubbub_rooms_live";
pub const MESSAGES_RECEIVED: &str = "hubbub_messages_received_total";
pub const MESSAGES_DELIVERED: &str = "hubbub_messages_delivered_total";
/// Labelled `code`: `bad_request`, `too_long`, `rate_limited`, …
pub const FRAMES_REFUSED: &str = "hubbub_frames_refused_total";
/// Labelled `reason`: `client`, `restart`, `replaced`, `too_slow`, `timeout`, `protocol`, `other`.
pub const DISCONNECTS: &str = "hubbub_disconnects_total";
pub const STORAGE_WRITE_SECONDS: &str = "hubbub_storage_write_seconds";
pub const STORAGE_PENDING: &str = "hubbub_storage_pending";
pub const STORAGE_DROPPED: &str = "hubbub_storage_dropped_total";
/// HTTP requests refused as malformed, too large or cut off: what actix-http would log one by one.
pub const HTTP_CLIENT_ERRORS: &str = "hubbub_http_client_errors_total";
/// Connections the listener could not accept (at the open-files limit): what actix-server would
/// log one by one, twice a second.
pub const ACCEPT_ERRORS: &str = "hubbub_accept_errors_total";
/// Shared mode: 1 while Redis answers, 0 while it does not.
pub const REDIS_UP: &str = "hubbub_redis_up";

/// Commit times from a fraction of a millisecond (SQLite) to the write timeout.
const WRITE_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// The process has one metrics recorder; every Application in it (tests start many) shares it.
static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the recorder on first use and returns the handle that renders `/metrics`.
pub fn recorder() -> anyhow::Result<PrometheusHandle> {
    let mut handle = HANDLE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = handle.as_ref() {
        return Ok(handle.clone());
    }
    let installed = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(STORAGE_WRITE_SECONDS.to_owned()),
            &WRITE_BUCKETS,
        )
        .context("invalid histogram buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    *handle = Some(installed.clone());
    Ok(installed)
}
