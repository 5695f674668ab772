//! How storage is doing, for /healthz and the logs: healthy or degraded, and what is still unwritten.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use crate::instruments;

pub struct Health {
    degraded: AtomicBool,
    pending: AtomicUsize,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// The metrics' handles, looked up once: `gauge!` finds its gauge in the recorder's registry on
    /// every call, and `set_pending` runs once per message.
    pending_gauge: metrics::Gauge,
    dropped_counter: metrics::Counter,
}

/// The storage part of /healthz.
#[derive(Debug, Serialize)]
pub struct HealthReport {
    pub status: &'static str,
    /// Messages delivered live but not yet stored.
    pub pending: usize,
    /// Messages given up on because the buffer was full during an outage, since start.
    pub dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Health {
    /// Healthy, nothing pending. The metrics recorder must be installed first.
    pub fn new() -> Self {
        Self {
            degraded: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            last_error: Mutex::new(None),
            pending_gauge: metrics::gauge!(instruments::STORAGE_PENDING),
            dropped_counter: metrics::counter!(instruments::STORAGE_DROPPED),
        }
    }

    pub fn set_pending(&self, pending: usize) {
        self.pending.store(pending, Ordering::Relaxed);
        self.pending_gauge.set(pending as f64);
    }

    /// Counts one dropped message and returns the total.
    pub fn count_dropped(&self) -> u64 {
        self.dropped_counter.increment(1);
        self.dropped.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Marks storage degraded by `err`; true if it had been healthy (the outage starts here).
    pub fn failed(&self, err: &anyhow::Error) -> bool {
        let was_healthy = !self.degraded.swap(true, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(format!("{err:#}"));
        was_healthy
    }

    /// Marks storage healthy; true if it had been degraded.
    pub fn recovered(&self) -> bool {
        let was = self.degraded.swap(false, Ordering::Relaxed);
        if was {
            *self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
        }
        was
    }

    pub fn report(&self) -> HealthReport {
        let degraded = self.degraded.load(Ordering::Relaxed);
        HealthReport {
            status: if degraded { "degraded" } else { "ok" },
            pending: self.pending.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}
