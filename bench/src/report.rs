//! The bench's findings, as a readable table and optionally one JSON line.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::client::Counters;

pub struct Inputs<'a> {
    pub clients: usize,
    pub clients_open: usize,
    pub rooms: usize,
    pub senders: usize,
    pub rate: u32,
    pub connect_seconds: f64,
    pub send_seconds: f64,
    pub counters: &'a Counters,
    pub histograms: Vec<Option<Histogram<u64>>>,
    /// Of those, the clients on another instance than their room's sender (shared mode).
    pub cross_histograms: Vec<Option<Histogram<u64>>>,
    pub server_cpu_seconds: Option<f64>,
    /// Each measured process's share of `server_cpu_seconds`: the instances, then Redis.
    pub process_cpu_seconds: Vec<f64>,
    /// Of `server_cpu_seconds`, Hubbub's storage threads'.
    pub storage_cpu_seconds: Option<f64>,
    pub server_memory: Option<u64>,
    pub memory_before: Option<u64>,
    pub memory_connected: Option<u64>,
    pub storage: Option<StorageHealth>,
}

/// Hubbub's storage at the end of a run, from `/healthz`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StorageHealth {
    /// Messages delivered but not yet written.
    pub pending: u64,
    /// Messages the writer gave up on because its buffer was full.
    pub dropped: u64,
}

/// What one load run found; printed by `load`, read back by `run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    clients: usize,
    pub clients_connected: usize,
    connect_failures: u64,
    pub connects_per_second: f64,
    rooms: usize,
    senders: usize,
    rate: u32,
    seconds: f64,
    sent: u64,
    expected_deliveries: u64,
    delivered: u64,
    pub delivered_percent: f64,
    pub delivered_per_second: f64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    latency_max_ms: Option<f64>,
    /// Shared mode: deliveries to clients on another instance than the sender.
    pub latency_cross_p50_ms: Option<f64>,
    pub latency_cross_p99_ms: Option<f64>,
    errors: BTreeMap<String, u64>,
    pub disconnects: u64,
    server_cpu_seconds: Option<f64>,
    pub server_cpu_seconds_per_million: Option<f64>,
    /// Each process's CPU-s per 10⁶ deliveries (all deliveries, wherever they were made).
    pub process_cpu_seconds_per_million: Vec<f64>,
    /// Hubbub's storage threads' CPU per message sent (each is stored once), in µs.
    #[serde(default)]
    pub storage_cpu_micros_per_message: Option<f64>,
    pub server_peak_rss_mib: Option<f64>,
    pub server_bytes_per_connection: Option<f64>,
    /// Hubbub only; the baseline stores nothing.
    pub server_storage: Option<StorageHealth>,
}

const MIB: f64 = 1024.0 * 1024.0;

impl Report {
    pub fn new(inputs: Inputs<'_>) -> Self {
        let counters = inputs.counters;
        let sent = counters.sent.load(Ordering::Relaxed);
        let delivered = counters.delivered.load(Ordering::Relaxed);
        // Every member of the sender's room receives each message, the sender included.
        let room_size = (inputs.clients / inputs.rooms) as u64;
        let expected = sent * room_size;
        let latencies = merge(inputs.histograms);
        let cross = merge(inputs.cross_histograms);
        let millis = |micros: u64| micros as f64 / 1_000.0;
        let per_million = |cpu: f64| cpu * 1e6 / delivered.max(1) as f64;
        let errors = counters
            .errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Self {
            clients: inputs.clients,
            clients_connected: inputs.clients_open,
            connect_failures: counters.connect_failures.load(Ordering::Relaxed),
            connects_per_second: inputs.clients_open as f64 / inputs.connect_seconds,
            rooms: inputs.rooms,
            senders: inputs.senders,
            rate: inputs.rate,
            seconds: inputs.send_seconds,
            sent,
            expected_deliveries: expected,
            delivered,
            delivered_percent: if expected == 0 {
                0.0
            } else {
                100.0 * delivered as f64 / expected as f64
            },
            delivered_per_second: delivered as f64 / inputs.send_seconds,
            latency_p50_ms: latencies
                .as_ref()
                .map(|h| millis(h.value_at_quantile(0.50))),
            latency_p99_ms: latencies
                .as_ref()
                .map(|h| millis(h.value_at_quantile(0.99))),
            latency_max_ms: latencies.as_ref().map(|h| millis(h.max())),
            latency_cross_p50_ms: cross.as_ref().map(|h| millis(h.value_at_quantile(0.50))),
            latency_cross_p99_ms: cross.as_ref().map(|h| millis(h.value_at_quantile(0.99))),
            errors,
            disconnects: counters.disconnects.load(Ordering::Relaxed),
            server_cpu_seconds: inputs.server_cpu_seconds,
            server_cpu_seconds_per_million: inputs
                .server_cpu_seconds
                .filter(|_| delivered > 0)
                .map(per_million),
            process_cpu_seconds_per_million: inputs
                .process_cpu_seconds
                .iter()
                .map(|cpu| per_million(*cpu))
                .collect(),
            storage_cpu_micros_per_message: inputs
                .storage_cpu_seconds
                .filter(|_| sent > 0)
                .map(|cpu| cpu * 1e6 / sent as f64),
            server_peak_rss_mib: inputs.server_memory.map(|bytes| bytes as f64 / MIB),
            server_bytes_per_connection: inputs.memory_before.zip(inputs.memory_connected).map(
                |(before, after)| after.saturating_sub(before) as f64 / inputs.clients_open as f64,
            ),
            server_storage: inputs.storage,
        }
    }

    /// One process's CPU-s per 10⁶ deliveries, by its place in the measured list.
    pub fn process_cpu(&self, index: usize) -> Option<f64> {
        self.process_cpu_seconds_per_million.get(index).copied()
    }

    /// The run in one line, for the progress of a benchmark.
    pub fn summary_line(&self) -> String {
        let or_dash = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.1}"));
        let storage = self.server_storage.map_or(String::new(), |storage| {
            format!("  storage dropped {}", storage.dropped)
        });
        format!(
            "{}/{} connected {:.0}/s  delivered {:.2}% {:.0}/s  p99 {} ms  cpu {} s/M  rss {} MiB  {:.0} B/conn  {} disconnects  errors {:?}{storage}",
            self.clients_connected,
            self.clients,
            self.connects_per_second,
            self.delivered_percent,
            self.delivered_per_second,
            or_dash(self.latency_p99_ms),
            or_dash(self.server_cpu_seconds_per_million),
            or_dash(self.server_peak_rss_mib),
            self.server_bytes_per_connection.unwrap_or_default(),
            self.disconnects,
            self.errors,
        )
    }

    pub fn print(&self, json: bool) {
        let or_dash = |value: Option<f64>, unit: &str| {
            value.map_or("-".to_owned(), |v| format!("{v:.2}{unit}"))
        };
        println!(
            "clients            {} connected of {} ({} failed), {:.0} connects/s",
            self.clients_connected, self.clients, self.connect_failures, self.connects_per_second
        );
        println!(
            "rooms / senders    {} rooms, {} senders, {} msgs/s asked",
            self.rooms, self.senders, self.rate
        );
        println!("sent               {} in {:.1} s", self.sent, self.seconds);
        println!(
            "delivered          {} of {} expected ({:.2}%), {:.0}/s",
            self.delivered,
            self.expected_deliveries,
            self.delivered_percent,
            self.delivered_per_second
        );
        println!(
            "latency            p50 {}  p99 {}  max {}",
            or_dash(self.latency_p50_ms, " ms"),
            or_dash(self.latency_p99_ms, " ms"),
            or_dash(self.latency_max_ms, " ms")
        );
        println!(
            "errors             {:?}, {} disconnects",
            self.errors, self.disconnects
        );
        println!(
            "server CPU         {} ({} per million deliveries)",
            or_dash(self.server_cpu_seconds, " s"),
            or_dash(self.server_cpu_seconds_per_million, " s")
        );
        if let Some(micros) = self.storage_cpu_micros_per_message {
            println!("storage CPU        {micros:.2} µs per message (the storage threads)");
        }
        println!(
            "server memory      peak {}, {} per connection",
            or_dash(self.server_peak_rss_mib, " MiB"),
            or_dash(self.server_bytes_per_connection, " B")
        );
        if let Some(storage) = self.server_storage {
            println!(
                "server storage     {} dropped, {} not yet written",
                storage.dropped, storage.pending
            );
        }
        if json {
            println!(
                "{}",
                serde_json::to_string(self).expect("a report serializes")
            );
        }
    }
}

/// One histogram of every client's latencies, or `None` if no client recorded any.
fn merge(histograms: Vec<Option<Histogram<u64>>>) -> Option<Histogram<u64>> {
    let mut merged: Option<Histogram<u64>> = None;
    for histogram in histograms.into_iter().flatten() {
        match merged.as_mut() {
            Some(all) => all.add(&histogram).expect("histograms share bounds"),
            None => merged = Some(histogram),
        }
    }
    merged
}
