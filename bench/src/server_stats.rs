//! The server's CPU time and memory, read from /proc for a given process id.

use anyhow::Context;
use procfs::process::Process;

/// Hubbub's storage threads, by the start of their names (Linux keeps 15 characters of a name).
const STORAGE_THREADS: [&str; 2] = ["hubbub-storage", "sqlx-sqlite-wor"];

pub struct ServerStats {
    process: Process,
}

impl ServerStats {
    pub fn new(pid: u32) -> anyhow::Result<Self> {
        let pid = i32::try_from(pid).context("process id out of range")?;
        let process = Process::new(pid).with_context(|| format!("no process {pid}"))?;
        Ok(Self { process })
    }

    /// User plus system CPU seconds the process has used so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let stat = self
            .process
            .stat()
            .context("cannot read the server's /proc stat")?;
        Ok((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
    }

    /// CPU seconds of Hubbub's storage threads (on SQLite: the writer's own thread, and sqlx's
    /// connection threads, which do the reads); None if the process has no such thread.
    pub fn storage_cpu_seconds(&self) -> anyhow::Result<Option<f64>> {
        let mut total = None;
        for task in self
            .process
            .tasks()
            .context("cannot list the server's threads")?
        {
            // A thread that ended since the listing is no longer there to count.
            let Ok(stat) = task.and_then(|task| task.stat()) else {
                continue;
            };
            if STORAGE_THREADS
                .iter()
                .any(|name| stat.comm.starts_with(name))
            {
                let ticks = (stat.utime + stat.stime) as f64;
                *total.get_or_insert(0.0) += ticks / procfs::ticks_per_second() as f64;
            }
        }
        Ok(total)
    }

    /// Resident memory now.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        Ok(self.status()?.vmrss.context("no VmRSS")? * 1024)
    }

    /// The most resident memory the process has had.
    pub fn peak_rss_bytes(&self) -> anyhow::Result<u64> {
        Ok(self.status()?.vmhwm.context("no VmHWM")? * 1024)
    }

    fn status(&self) -> anyhow::Result<procfs::process::Status> {
        self.process
            .status()
            .context("cannot read the server's /proc status")
    }
}
