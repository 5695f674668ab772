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
    /// Two Hubbub instances in shared mode, on a redis-server the bench starts and a fresh database
    /// on the PostgreSQL server `HUBBUB_BENCH_POSTGRES` names; each room's clients are split
    /// between the two. All three processes share the server CPU.
    HubbubShared,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Baseline => "baseline",
            Target::Hubbub => "hubbub",
            Target::HubbubMemory => "hubbub-memory",
            Target::Reference => "reference",
            Target::HubbubShared => "hubbub-shared",
        }
    }

    /// The baseline has no HTTP API: the load generator names its rooms instead.
    pub fn has_room_api(self) -> bool {
        self != Target::Baseline
    }
}

/// A running server, of one process or (shared mode) several; killed, and its files and
/// database removed, when dropped.
pub struct Server {
    /// The servers clients connect to, then any helper (Redis) whose CPU counts too.
    children: Vec<Child>,
    /// Where clients connect: one URL per instance.
    pub urls: Vec<String>,
    data: Option<PathBuf>,
    /// The shared-mode database: the administrative URL and the database's name, dropped after.
    database: Option<(String, String)>,
}

impl Server {
    /// Starts `target` on a free port under `taskset -c cpu` and waits until it accepts connections;
    /// `reference` is the binary the `reference` target runs, and Hubbub gets `flags` besides the
    /// bench's own.
    pub fn start(
        target: Target,
        cpu: &str,
        reference: Option<&Path>,
        flags: &[&str],
    ) -> anyhow::Result<Self> {
        if target == Target::HubbubShared {
            return Self::start_shared(cpu, flags);
        }
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
            Target::Hubbub | Target::HubbubMemory | Target::Reference | Target::HubbubShared => {
                let hubbub = match (target, reference) {
                    (Target::Reference, Some(reference)) => reference.to_owned(),
                    (Target::Reference, None) => {
                        bail!("the reference target needs --reference-binary")
                    }
                    _ => hubbub_binary()?,
                };
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
                    .args(HUBBUB_BENCH_FLAGS)
                    .args(flags);
            }
        }
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .context("cannot run taskset (util-linux)")?;
        let server = Self {
            children: vec![child],
            urls: vec![format!("http://127.0.0.1:{port}")],
            data,
            database: None,
        };
        wait_until_listening(port)?;
        Ok(server)
    }

    /// Redis, a fresh PostgreSQL database and two instances, all on `cpu`.
    fn start_shared(cpu: &str, flags: &[&str]) -> anyhow::Result<Self> {
        let admin = std::env::var("HUBBUB_BENCH_POSTGRES").context(
            "the hubbub-shared target needs HUBBUB_BENCH_POSTGRES=postgres://…/postgres, a server whose user may create databases",
        )?;
        let name = format!("hubbub_bench_{}_{}", std::process::id(), free_port()?);
        let created = Command::new("psql")
            .args([admin.as_str(), "-qc", &format!("CREATE DATABASE {name}")])
            .status()
            .context("cannot run psql")?;
        if !created.success() {
            bail!("psql could not create the bench's database");
        }
        let mut server = Self {
            children: Vec::new(),
            urls: Vec::new(),
            data: None,
            database: Some((admin.clone(), name.clone())),
        };
        let mut database = url::Url::parse(&admin).context("HUBBUB_BENCH_POSTGRES is no URL")?;
        database.set_path(&name);
        let redis_port = free_port()?;
        let redis = Command::new("taskset")
            .args(["-c", cpu, "redis-server", "--bind", "127.0.0.1", "--port"])
            .arg(redis_port.to_string())
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("cannot run redis-server")?;
        wait_until_listening(redis_port)?;
        let hubbub = hubbub_binary()?;
        let mut instances = Vec::new();
        for _ in 0..2 {
            let port = free_port()?;
            let child = Command::new("taskset")
                .args(["-c", cpu])
                .arg(&hubbub)
                .args([
                    "--port",
                    &port.to_string(),
                    "--database-url",
                    database.as_str(),
                ])
                .args(["--redis-url", &format!("redis://127.0.0.1:{redis_port}/0")])
                .args(HUBBUB_BENCH_FLAGS)
                .args(flags)
                .stdin(Stdio::null())
                .spawn()
                .context("cannot run taskset (util-linux)")?;
            instances.push(child);
            server.urls.push(format!("http://127.0.0.1:{port}"));
            wait_until_listening(port)?;
        }
        server.children = instances;
        server.children.push(redis);
        Ok(server)
    }

    /// Every process whose CPU the run counts: taskset execs each, so it is the child's own id.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// The servers clients connect to, without helpers.
    pub fn instance_pids(&self) -> Vec<u32> {
        self.pids().into_iter().take(self.urls.len()).collect()
    }

    /// What storage takes on disk: the SQLite file with its WAL, or the PostgreSQL database.
    pub fn storage_bytes(&self) -> anyhow::Result<u64> {
        if let Some((admin, name)) = &self.database {
            let output = Command::new("psql")
                .args([admin.as_str(), "-tAc"])
                .arg(format!("SELECT pg_database_size('{name}')"))
                .output()
                .context("cannot run psql")?;
            let size = String::from_utf8_lossy(&output.stdout);
            return size
                .trim()
                .parse()
                .with_context(|| format!("psql gave no database size: {size}"));
        }
        let Some(dir) = &self.data else {
            return Ok(0);
        };
        let mut bytes = 0;
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            bytes += entry?.metadata()?.len();
        }
        Ok(bytes)
    }
}

/// The hubbub binary beside the bench's own.
fn hubbub_binary() -> anyhow::Result<PathBuf> {
    let bench = std::env::current_exe().context("cannot find the bench's own executable")?;
    let hubbub = bench.with_file_name("hubbub");
    if !hubbub.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release`",
            hubbub.display()
        );
    }
    Ok(hubbub)
}

fn wait_until_listening(port: u16) -> anyhow::Result<()> {
    let started = Instant::now();
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if started.elapsed() > STARTUP_PATIENCE {
            bail!("the server on port {port} did not start listening");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

impl Drop for Server {
    fn drop(&mut self) {
        // Killed, not stopped gracefully: nothing it holds is needed after a run.
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self.data {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((admin, name)) = &self.database {
            let _ = Command::new("psql")
                .args([
                    admin.as_str(),
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ])
                .status();
        }
    }
}

/// A port nothing listens on now; the server binds it a moment later.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("no free port")?;
    Ok(listener.local_addr()?.port())
}
