//! Faults of the machine under a running server: its disk fills up, it runs out of file
//! descriptors, connections come and go by the thousand. For the full disk the server keeps its
//! SQLite file on a tmpfs of its own, mounted in a mount namespace of its own (`unshare`), so a test
//! can fill it without touching the machine's disks.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{eventually, try_join_at, Binary, Client};

/// Room enough for the schema and the first messages, and quickly filled.
const TMPFS_SIZE: &str = "2m";

/// A server whose database lives on a small tmpfs that only it (and this test) can see.
struct OnTmpfs {
    server: Binary,
    /// Where the tmpfs is mounted, inside the server's mount namespace.
    mount: tempfile::TempDir,
}

impl OnTmpfs {
    async fn start(flags: &[&str]) -> Self {
        let mount = tempfile::tempdir().expect("a mount point");
        let mut wrapper = Command::new("unshare");
        // A user namespace makes the mount possible without root; the mount namespace keeps it
        // the server's own, gone when the server is.
        wrapper.args(["--user", "--map-root-user", "--mount", "sh", "-c"]);
        wrapper.arg(r#"mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@""#);
        wrapper.args(["sh", TMPFS_SIZE]).arg(mount.path());
        wrapper.arg(env!("CARGO_BIN_EXE_hubbub"));
        let database = format!("sqlite:{}", mount.path().join("hubbub.db").display());
        let server = Binary::start_as(wrapper, &database, flags, Stdio::piped()).await;
        Self { server, mount }
    }

    /// A path on the tmpfs, as seen from outside the server's namespace.
    fn path(&self, name: &str) -> PathBuf {
        let mount = self
            .mount
            .path()
            .strip_prefix("/")
            .expect("an absolute path");
        PathBuf::from(format!("/proc/{}/root", self.server.pid()))
            .join(mount)
            .join(name)
    }

    /// Fills the tmpfs to its last byte.
    fn fill(&self) {
        let mut ballast = std::fs::File::create(self.path("ballast")).expect("ballast");
        let block = vec![0u8; 64 * 1024];
        while ballast.write_all(&block).is_ok() {}
        // The last block may not fit whole; fill what is left byte by byte.
        while ballast.write_all(&[0]).is_ok() {}
    }

    fn free(&self) {
        std::fs::remove_file(self.path("ballast")).expect("the ballast is removed");
    }

    /// Makes the database's files read-only to the server, as a filesystem remounted read-only
    /// after an I/O error is: every write, sync or resize of them fails with EROFS. Linux refuses
    /// to remount a filesystem read-only while files on it are open for writing, so strace injects
    /// the error at the system-call boundary instead, on every thread, until the guard is dropped.
    fn read_only(&self) -> ReadOnly {
        let mut strace = Command::new("strace");
        strace
            .args(["--follow-forks", "--quiet=all", "--output", "/dev/null"])
            .args(["--attach", &self.server.pid().to_string()])
            .arg("--trace=pwrite64,write,pwritev,fsync,fdatasync,ftruncate,fallocate")
            .arg("--inject=pwrite64,write,pwritev,fsync,fdatasync,ftruncate,fallocate:error=EROFS");
        for file in ["hubbub.db", "hubbub.db-wal", "hubbub.db-shm"] {
            // The path as the server sees it, inside its own mount namespace.
            strace.arg("--trace-path").arg(self.mount.path().join(file));
        }
        ReadOnly(strace.stdin(Stdio::null()).spawn().expect("strace runs"))
    }

    /// Runs `command` in the server's namespaces and returns what it printed.
    fn in_namespace(&self, command: &[&str]) -> String {
        let output = Command::new("nsenter")
            .args([
                "--target",
                &self.server.pid().to_string(),
                "--user",
                "--mount",
            ])
            .args(command)
            .output()
            .expect("nsenter runs");
        assert!(output.status.success(), "{command:?}: {output:?}");
        String::from_utf8(output.stdout).expect("UTF-8")
    }

    /// How many messages the database file holds, counted inside the server's namespace (by
    /// Python's sqlite3: SQLite resolves a `/proc/PID/root` path to this test's own root).
    fn stored_messages(&self) -> i64 {
        let database = self.mount.path().join("hubbub.db");
        let count = "import sqlite3, sys; \
            print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM messages').fetchone()[0])";
        let output = self.in_namespace(&["python3", "-c", count, &database.to_string_lossy()]);
        output.trim().parse().expect("a count")
    }

    async fn storage(&self) -> Value {
        self.server.call(Method::GET, "/healthz", None).await["storage"].take()
    }

    /// The server's CPU time so far (user and system), from /proc.
    fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.server.pid())).unwrap();
        // Fields after the command's name, which ends at the last ')': utime and stime are 12th and 13th.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // Linux reports in USER_HZ, 100 per second on every architecture it runs on.
        Duration::from_millis(ticks * 10)
    }
}

/// The database's files read-only to the server until dropped.
struct ReadOnly(std::process::Child);

impl Drop for ReadOnly {
    fn drop(&mut self) {
        // strace detaches from every thread as it exits, and the system calls work again.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A room of two on the server, and what `ann` says while storage fails: each is delivered live.
struct Conversation {
    ann: Client,
    bob: Client,
    said: usize,
}

impl Conversation {
    async fn start(disk: &OnTmpfs) -> Self {
        let created = disk.server.call(Method::POST, "/api/rooms", None).await;
        let code = created["code"].as_str().unwrap().to_owned();
        let ws = disk.server.url.replace("http://", "ws://");
        let join = |name: &str| format!("{ws}/ws/{code}?name={name}");
        let mut ann = try_join_at(join("ann")).await.unwrap();
        let bob = try_join_at(join("bob")).await.unwrap();
        ann.expect("joined").await;
        Self { ann, bob, said: 0 }
    }

    /// Says a message of about 2 KiB; both see it live, whatever storage is doing.
    async fn say(&mut self) {
        let text = format!("message {} {}", self.said, "x".repeat(2_000));
        self.ann.say(&text).await;
        assert_eq!(self.ann.expect("message").await["text"], text.as_str());
        assert_eq!(self.bob.expect("message").await["text"], text.as_str());
        self.said += 1;
    }

    /// Talks until storage says it is degraded (a fuller disk may take a few writes to notice).
    async fn until_degraded(&mut self, disk: &OnTmpfs) -> Value {
        for _ in 0..500 {
            self.say().await;
            let storage = disk.storage().await;
            if storage["status"] == "degraded" {
                return storage;
            }
        }
        panic!("storage never noticed the fault");
    }
}

/// What a fault must and must not do while it lasts: live chat goes on, /readyz says not ready,
/// and the server waits for storage rather than spinning on it.
async fn while_failing(disk: &OnTmpfs, talk: &mut Conversation) {
    let readyz = reqwest::get(format!("{}/readyz", disk.server.url))
        .await
        .unwrap();
    assert_eq!(readyz.status(), 503);
    let (cpu, wall) = (disk.cpu_time(), Instant::now());
    for _ in 0..5 {
        talk.say().await;
    }
    // Not a speed limit: a writer retrying in a loop would use a whole core.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = disk.cpu_time() - cpu;
    assert!(
        used < wall.elapsed() / 3,
        "{used:?} of CPU in {:?}",
        wall.elapsed()
    );
}

/// Once the fault is gone, every message said is stored, none was dropped, and the log said it
/// once: one ERROR when writes began failing, and that storage recovered.
async fn after_recovery(disk: OnTmpfs, talk: Conversation) {
    let storage = eventually("storage recovers and writes what it held", || async {
        let storage = disk.storage().await;
        (storage["status"] == "ok" && storage["pending"] == 0).then_some(storage)
    })
    .await;
    let stored = disk.stored_messages();
    let said = i64::try_from(talk.said).unwrap();
    drop(talk);

    let output = tokio::task::spawn_blocking(move || disk.server.terminate())
        .await
        .unwrap();
    let log = String::from_utf8(output.stdout).unwrap();
    assert_eq!(storage["dropped"], 0, "{log}");
    assert_eq!(stored, said, "{log}");
    assert!(output.status.success(), "{:?}", output.status);
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let errors: Vec<&Value> = lines
        .iter()
        .filter(|line| line["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(log.contains("storage recovered"), "{log}");
}

const FLAGS: [&str; 6] = [
    "--log-format",
    "json",
    "--rate-limit",
    "1000",
    "--rate-burst",
    "1000",
];

/// A server on its tmpfs, a room of two on it, and a first message said and stored.
async fn talking_with_one_message_stored() -> (OnTmpfs, Conversation) {
    let disk = OnTmpfs::start(&FLAGS).await;
    let mut talk = Conversation::start(&disk).await;
    talk.say().await;
    eventually("the first message is stored", || async {
        (disk.stored_messages() == 1).then_some(())
    })
    .await;
    (disk, talk)
}

#[actix_web::test]
async fn a_full_disk_keeps_rooms_live_and_loses_nothing_once_space_returns() {
    let (disk, mut talk) = talking_with_one_message_stored().await;

    disk.fill();
    let storage = talk.until_degraded(&disk).await;
    assert!(
        storage["error"].as_str().unwrap().contains("full"),
        "{storage}"
    );
    while_failing(&disk, &mut talk).await;
    disk.free();

    after_recovery(disk, talk).await;
}

/// At its open-files limit the server cannot accept, but the rooms it serves keep working, and it
/// accepts again once descriptors are free.
#[actix_web::test]
async fn at_the_open_files_limit_rooms_keep_working_and_accepts_resume() {
    let mut limited = Command::new("prlimit");
    limited
        .args(["--nofile=128", "--"])
        .arg(env!("CARGO_BIN_EXE_hubbub"));
    let database = crate::helpers::TestDatabase::new().await;
    // Warnings and errors only: a line per connection would fill the pipe the log goes to.
    let flags = [
        &FLAGS[..],
        &[
            "--max-connections-per-address",
            "1000",
            "--log-level",
            "warn",
        ],
    ]
    .concat();
    let server = Binary::start_as(limited, &database.url, &flags, Stdio::piped()).await;
    let ws = server.url.replace("http://", "ws://");
    let created = server.call(Method::POST, "/api/rooms", None).await;
    let code = created["code"].as_str().unwrap().to_owned();
    let join = |name: String| {
        let url = format!("{ws}/ws/{code}?name={name}");
        // Past the limit the kernel completes the handshake but the server never reads it.
        async move { tokio::time::timeout(Duration::from_secs(2), try_join_at(url)).await }
    };
    let mut ann = join("ann".into()).await.unwrap().unwrap();
    let mut bob = join("bob".into()).await.unwrap().unwrap();
    ann.expect("joined").await;

    // Bounded: the limit is 128 descriptors, so it is reached long before 500 connections.
    let mut held = Vec::new();
    for n in 0..500 {
        match join(format!("n{n}")).await {
            Ok(joined) => held.push(joined.unwrap()),
            Err(_) => break,
        }
    }
    assert!(held.len() < 500, "the limit was never reached");
    assert!(
        held.len() >= 10,
        "only {} connections before the limit",
        held.len()
    );
    bob.say("at the limit").await;
    // Past the joins (and the leaves of those whose join timed out here but went through later).
    let heard = loop {
        let frame = ann.next().await;
        if frame["type"] != "joined" && frame["type"] != "left" {
            break frame;
        }
    };
    assert_eq!(heard["text"], "at the limit", "{heard}");
    drop(held);

    let carol = eventually("the server accepts again", || async {
        join("carol".into()).await.ok().map(Result::unwrap)
    })
    .await;
    assert_eq!(carol.welcome["you"]["name"], "carol");

    // actix-server logs each failed accept at ERROR, twice a second while the limit lasts: a flood
    // of connections could page the operator. They are summarised instead, and counted.
    eventually("the failed accepts are summarised", || async {
        let metrics = reqwest::get(format!("{}/metrics", server.url)).await.ok()?;
        let metrics = metrics.text().await.ok()?;
        metrics
            .contains("hubbub_accept_errors_total ")
            .then_some(())
    })
    .await;
    drop((ann, bob, carol));
    let output = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    let log = String::from_utf8(output.stdout).unwrap();
    let accept_errors = log
        .lines()
        .filter(|line| line.contains("Error accepting connection") && line.contains("ERROR"))
        .count();
    assert_eq!(accept_errors, 0, "{log}");
    assert!(log.contains("could not accept new connections"), "{log}");
}

/// The server's resident memory, from /proc.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A flood of joins and leaves, each under a new name, in two rooms: memory grows while each room
/// fills its record of who left (kept for resuming, at most 1,024 a room) and the allocator warms
/// up, then stays flat however many more come and go.
#[actix_web::test]
async fn memory_stays_flat_under_a_flood_of_joins_and_leaves() {
    const ROUNDS: usize = 8;
    const JOINS_PER_ROUND: usize = 1_000;
    let database = crate::helpers::TestDatabase::new().await;
    let flags = [&FLAGS[..], &["--max-connections-per-address", "1000"]].concat();
    let server = Binary::start(&database, &flags, Stdio::null()).await;
    let ws = server.url.replace("http://", "ws://");
    let mut codes = Vec::new();
    for _ in 0..2 {
        let created = server.call(Method::POST, "/api/rooms", None).await;
        codes.push(created["code"].as_str().unwrap().to_owned());
    }

    let mut resident = Vec::new();
    for round in 0..ROUNDS {
        futures_util::stream::iter(0..JOINS_PER_ROUND)
            .for_each_concurrent(20, |n| {
                let url = format!("{ws}/ws/{}?name=r{round}n{n}", codes[n % codes.len()]);
                async move { drop(try_join_at(url).await.unwrap()) }
            })
            .await;
        resident.push(resident_kib(server.pid()));
    }

    // By the third round of 500 a room, each room's record of who left is full; past it, a
    // leak of 200 bytes a connection would add 1 MB, where the allocator wanders by 0.5 %.
    let (full, last) = (resident[2], resident[ROUNDS - 1]);
    assert!(
        last <= full + full * 3 / 200,
        "resident memory by round, KiB: {resident:?}"
    );
}

#[actix_web::test]
async fn a_read_only_database_keeps_rooms_live_and_loses_nothing_once_writable_again() {
    let (disk, mut talk) = talking_with_one_message_stored().await;

    let read_only = disk.read_only();
    let storage = talk.until_degraded(&disk).await;
    assert!(
        storage["error"].as_str().unwrap().contains("I/O error"),
        "{storage}"
    );
    while_failing(&disk, &mut talk).await;
    drop(read_only);

    after_recovery(disk, talk).await;
}
