//! The servers a scenario measures, each started fresh for a run and pinned to its own CPU.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long a server may take to accept its first connection.
const STARTUP_PATIENCE: Duration = Duration::from_secs(15);

/// Hubbub's limits, raised past what any scenario asks: the senders exceed the default flood limit
/// (10 msgs/s per connection) on purpose, and every client comes from loopback, so the per-address
/// connection limit would stop the bench long before the server's capacity does.
const HUBBUB_BENCH_FLAGS: [&str; 12] = [
    "--rate-limit",
    "1000000",
    "--rate-burst",
    "1000000",
    "--max-connections-per-address",
    "1000000",
    "--max-members-per-room",
    "100000",
    "--max-rooms",
    "100000",
    "--log-level",
    "warn",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The bench's own minimal fan-out server.
    Baseline,
    /// Hubbub as shipped: storage in a SQLite file.
    Hubbub,
    /// Hubbub with `sqlite::memory:`, to show what writing to disk costs.
    HubbubMemory,
    /// Another build of Hubbub (`--reference-binary`), storage in a SQLite file: the same sitting's
    /// figures before and after a change.
    Reference,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Baseline => "baseline",
            Target::Hubbub => "hubbub",
            Target::HubbubMemory => "hubbub-memory",
            Target::Reference => "reference",
        }
    }

    /// The baseline has no HTTP API: the load generator names its rooms instead.
    pub fn has_room_api(self) -> bool {
        self != Target::Baseline
    }
}

/// A running server process; killed, and its files removed, when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    data: Option<PathBuf>,
}

impl Server {
    /// Starts `target` on a free port under `taskset -c cpu` and waits until it accepts connections;
    /// `reference` is the binary the `reference` target runs.
    pub fn start(target: Target, cpu: &str, reference: Option<&Path>) -> anyhow::Result<Self> {
        let port = free_port()?;
        let bench = std::env::current_exe().context("cannot find the bench's own executable")?;
        let mut command = Command::new("taskset");
        command.args(["-c", cpu]);
        let mut data = None;
        match target {
            Target::Baseline => {
                command
                    .arg(&bench)
                    .args(["baseline", "--port", &port.to_string()]);
            }
            Target::Hubbub | Target::HubbubMemory | Target::Reference => {
                let hubbub = match (target, reference) {
                    (Target::Reference, Some(reference)) => reference.to_owned(),
                    (Target::Reference, None) => {
                        bail!("the reference target needs --reference-binary")
                    }
                    _ => bench.with_file_name("hubbub"),
                };
                if !hubbub.exists() {
                    bail!(
                        "{} is missing: build it with `cargo build --release`",
                        hubbub.display()
                    );
                }
                let database = if target != Target::HubbubMemory {
                    let dir = std::env::temp_dir()
                        .join(format!("hubbub-bench-{}-{port}", std::process::id()));
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    let url = format!("sqlite:{}", dir.join("hubbub.db").display());
                    data = Some(dir);
                    url
                } else {
                    "sqlite::memory:".to_owned()
                };
                command
                    .arg(hubbub)
                    .args(["--port", &port.to_string(), "--database-url", &database])
                    .args(HUBBUB_BENCH_FLAGS);
            }
        }
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .context("cannot run taskset (util-linux)")?;
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            data,
        };
        server.wait_until_listening(port)?;
        Ok(server)
    }

    /// The server's own process id: taskset execs it, so it is the child's.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_until_listening(&self, port: u16) -> anyhow::Result<()> {
        let started = Instant::now();
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if started.elapsed() > STARTUP_PATIENCE {
                bail!("the server on port {port} did not start listening");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Killed, not stopped gracefully: nothing it holds is needed after a run.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.data {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A port nothing listens on now; the server binds it a moment later.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("no free port")?;
    Ok(listener.local_addr()?.port())
}
