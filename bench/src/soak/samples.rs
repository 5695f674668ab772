//! What the soak watches every few seconds (memory, descriptors, connections, rooms, storage), and
//! the judgement on it: flat after the warm-up, or not.

use std::time::Duration;

use anyhow::Context;
use procfs::process::Process;
use serde::Serialize;
use tokio::time::Instant;

use crate::servers::Server;

/// Anonymous memory after the warm-up may drift this much, last third against first, and still
/// be flat. Anonymous memory (the heap, stacks) is what a leak grows; RSS also counts the pages of
/// the executable read in as code runs for the first time, which keeps rising slowly for an hour
/// as rarer paths (a room unloading, an expiry) are first taken.
pub const MAX_MEMORY_DRIFT_PERCENT: f64 = 5.0;
/// Descriptors besides the connections may grow by this many: the database pool opens
/// connections when it needs them (up to 8), each holding the database file and its WAL.
pub const FD_SLACK: u64 = 16;

/// The servers' state at one moment, added up over the instances.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Sample {
    pub seconds: f64,
    pub rss_bytes: u64,
    /// Of `rss_bytes`, the anonymous pages: not backed by a file.
    pub anon_bytes: u64,
    pub fds: u64,
    pub connections: u64,
    pub rooms: u64,
    pub storage_bytes: u64,
    pub storage_pending: u64,
    pub storage_dropped: u64,
}

impl Sample {
    /// Descriptors that are not connections: what a leak would raise.
    pub fn other_fds(&self) -> u64 {
        self.fds.saturating_sub(self.connections)
    }
}

pub struct Sampler<'a> {
    server: &'a Server,
    processes: Vec<Process>,
    http: reqwest::Client,
    started: Instant,
}

impl<'a> Sampler<'a> {
    pub fn new(server: &'a Server, started: Instant) -> anyhow::Result<Self> {
        let processes = server
            .instance_pids()
            .into_iter()
            .map(|pid| {
                let pid = i32::try_from(pid).context("process id out of range")?;
                Process::new(pid).with_context(|| format!("no process {pid}"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            server,
            processes,
            http: reqwest::Client::new(),
            started,
        })
    }

    pub async fn sample(&self) -> anyhow::Result<Sample> {
        let mut sample = Sample {
            seconds: self.started.elapsed().as_secs_f64(),
            rss_bytes: 0,
            anon_bytes: 0,
            fds: 0,
            connections: 0,
            rooms: 0,
            storage_bytes: self.server.storage_bytes()?,
            storage_pending: 0,
            storage_dropped: 0,
        };
        for process in &self.processes {
            let status = process.status().context("cannot read a server's status")?;
            sample.rss_bytes += status.vmrss.context("no VmRSS")? * 1024;
            sample.anon_bytes += status.rssanon.context("no RssAnon")? * 1024;
            sample.fds += process.fd_count().context("cannot count a server's fds")? as u64;
        }
        for url in &self.server.urls {
            let metrics = self
                .http
                .get(format!("{url}/metrics"))
                .send()
                .await
                .with_context(|| format!("cannot reach {url}/metrics"))?
                .text()
                .await?;
            // A metric appears once it is first set: absent, it is still 0.
            sample.connections += gauge(&metrics, "hubbub_connections_open")?.unwrap_or(0);
            sample.rooms += gauge(&metrics, "hubbub_rooms_live")?.unwrap_or(0);
            sample.storage_pending += gauge(&metrics, "hubbub_storage_pending")?.unwrap_or(0);
            sample.storage_dropped += gauge(&metrics, "hubbub_storage_dropped_total")?.unwrap_or(0);
        }
        Ok(sample)
    }
}

/// A metric without labels from Prometheus' text format, if it is there.
fn gauge(metrics: &str, name: &str) -> anyhow::Result<Option<u64>> {
    let Some(value) = metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
    else {
        return Ok(None);
    };
    let value: f64 = value
        .trim()
        .parse()
        .with_context(|| format!("{name} is {value}"))?;
    Ok(Some(value as u64))
}

/// Whether the samples after the warm-up stayed flat.
#[derive(Debug, Serialize)]
pub struct Flatness {
    pub anon: Drift,
    pub rss: Drift,
    pub other_fds_first_max: u64,
    pub other_fds_last_max: u64,
    pub flat: bool,
}

/// A quantity's mean over the first and the last third of the samples after the warm-up.
#[derive(Debug, Serialize)]
pub struct Drift {
    pub first_mib: f64,
    pub last_mib: f64,
    pub percent: f64,
}

impl Drift {
    fn of(first: &[&Sample], last: &[&Sample], bytes: fn(&Sample) -> u64) -> Self {
        let mean_mib = |samples: &[&Sample]| {
            samples.iter().map(|s| bytes(s) as f64).sum::<f64>()
                / samples.len() as f64
                / (1024.0 * 1024.0)
        };
        let (first_mib, last_mib) = (mean_mib(first), mean_mib(last));
        Self {
            first_mib,
            last_mib,
            percent: (last_mib - first_mib) / first_mib * 100.0,
        }
    }
}

/// Compares the last third of the samples after `warm_up` with the first third.
pub fn flatness(samples: &[Sample], warm_up: Duration) -> anyhow::Result<Flatness> {
    let settled: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.seconds >= warm_up.as_secs_f64())
        .collect();
    let third = settled.len() / 3;
    anyhow::ensure!(
        third > 0,
        "too few samples after the warm-up to judge: {}",
        settled.len()
    );
    let (first, last) = (&settled[..third], &settled[settled.len() - third..]);
    let max_fds = |samples: &[&Sample]| samples.iter().map(|s| s.other_fds()).max().unwrap_or(0);
    let anon = Drift::of(first, last, |s| s.anon_bytes);
    let (other_fds_first_max, other_fds_last_max) = (max_fds(first), max_fds(last));
    Ok(Flatness {
        flat: anon.percent.abs() <= MAX_MEMORY_DRIFT_PERCENT
            && other_fds_last_max <= other_fds_first_max + FD_SLACK,
        anon,
        rss: Drift::of(first, last, |s| s.rss_bytes),
        other_fds_first_max,
        other_fds_last_max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seconds: f64, anon_mib: u64, fds: u64) -> Sample {
        Sample {
            seconds,
            rss_bytes: (anon_mib + 10) * 1024 * 1024,
            anon_bytes: anon_mib * 1024 * 1024,
            fds,
            connections: 0,
            rooms: 0,
            storage_bytes: 0,
            storage_pending: 0,
            storage_dropped: 0,
        }
    }

    #[test]
    fn memory_that_keeps_growing_after_the_warm_up_is_not_flat() {
        let growing: Vec<_> = (0..60u32)
            .map(|i| sample(f64::from(i) * 10.0, 100 + u64::from(i), 50))
            .collect();
        let judged = flatness(&growing, Duration::from_secs(100)).unwrap();
        assert!(!judged.flat, "{judged:?}");
    }

    #[test]
    fn a_warm_up_climb_then_a_plateau_is_flat() {
        let plateau: Vec<_> = (0..60u32)
            .map(|i| {
                sample(
                    f64::from(i) * 10.0,
                    if i < 10 { 50 + u64::from(i) } else { 100 },
                    50,
                )
            })
            .collect();
        let judged = flatness(&plateau, Duration::from_secs(100)).unwrap();
        assert!(judged.flat, "{judged:?}");
    }

    #[test]
    fn descriptors_that_pile_up_are_not_flat() {
        let leaking: Vec<_> = (0..60u32)
            .map(|i| sample(f64::from(i) * 10.0, 100, 50 + u64::from(i)))
            .collect();
        let judged = flatness(&leaking, Duration::from_secs(100)).unwrap();
        assert!(!judged.flat, "{judged:?}");
    }

    #[test]
    fn gauges_are_read_off_the_exposition_format() {
        let metrics =
            "# TYPE hubbub_rooms_live gauge\nhubbub_rooms_live 12\nhubbub_rooms_live_x 3\n";
        assert_eq!(gauge(metrics, "hubbub_rooms_live").unwrap(), Some(12));
        assert_eq!(gauge(metrics, "hubbub_connections_open").unwrap(), None);
        assert!(gauge("hubbub_rooms_live many\n", "hubbub_rooms_live").is_err());
    }
}
