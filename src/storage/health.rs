//! How storage is doing, for /healthz and the logs: healthy or degraded, and what is still unwritten.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use crate::instruments;

#[derive(Default)]
pub struct Health {
    degraded: AtomicBool,
    pending: AtomicUsize,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
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
    pub fn set_pending(&self, pending: usize) {
        self.pending.store(pending, Ordering::Relaxed);
        metrics::gauge!(instruments::STORAGE_PENDING).set(pending as f64);
    }

    /// Counts one dropped message and returns the total.
    pub fn count_dropped(&self) -> u64 {
        metrics::counter!(instruments::STORAGE_DROPPED).increment(1);
        self.dropped.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn failed(&self, err: &anyhow::Error) {
        self.degraded.store(true, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(format!("{err:#}"));
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
