//! Several real `hubbub` processes sharing rooms through a Redis server of the test's own and a
//! fresh PostgreSQL database, and a checker of what every client heard.

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{eventually, try_join_at, urlencode, Binary, Client, TestDatabase};

/// How long an instance that stops refreshing its liveness is taken for alive: short, for tests.
pub const INSTANCE_TIMEOUT: &str = "3s";

/// A `redis-server` on a free port, with nothing on disk unless a test saves it.
pub struct RedisServer {
    process: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub async fn start() -> Self {
        let mut server = Self {
            process: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        server.spawn().await;
        server
    }

    /// Starts it (again) on its port, loading dump.rdb from its directory if one is there.
    async fn spawn(&mut self) {
        let process = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--appendonly", "no", "--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian's redis-server package)");
        self.process = Some(process);
        eventually("redis-server answers", || async {
            (self.cli(&["PING"]) == "PONG").then_some(())
        })
        .await;
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Runs one command through redis-cli and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Kills the server; its data is gone unless saved.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts it again on the same port after `kill`, from its last `SAVE` if there was one.
    pub async fn restart(&mut self) {
        self.spawn().await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Instances of one deployment: the same database, the same Redis.
pub struct Cluster {
    /// First, so the instances stop before the Redis and database they use.
    pub instances: Vec<Option<Binary>>,
    pub redis: RedisServer,
    pub database: TestDatabase,
}

impl Cluster {
    /// `count` instances; flags generous enough that the flood limits do not get in the tests' way.
    pub async fn start(count: usize) -> Self {
        let redis = RedisServer::start().await;
        let server = std::env::var("HUBBUB_TEST_POSTGRES")
            .ok()
            .filter(|server| !server.is_empty())
            .expect("shared mode needs PostgreSQL: set HUBBUB_TEST_POSTGRES=postgres://…/postgres");
        let database = TestDatabase::postgres(&server).await;
        let mut cluster = Self {
            redis,
            database,
            instances: Vec::new(),
        };
        for _ in 0..count {
            let instance = cluster.launch().await;
            cluster.instances.push(Some(instance));
        }
        cluster
    }

    /// Starts one more instance of the deployment.
    pub async fn launch(&self) -> Binary {
        let redis = self.redis.url();
        // TEST_LOG=info (or debug) shows what the instances log.
        let log = std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into());
        let flags = [
            "--redis-url",
            &redis,
            "--instance-timeout",
            INSTANCE_TIMEOUT,
            "--rate-limit",
            "10000",
            "--rate-burst",
            "10000",
            // The tests send in bursts no person types: the backlog bound is not what they test.
            "--max-backlog",
            "100000",
            "--log-level",
            &log,
        ];
        Binary::start(&self.database, &flags, Stdio::inherit()).await
    }

    pub fn instance(&self, index: usize) -> &Binary {
        self.instances[index]
            .as_ref()
            .expect("the instance is running")
    }

    /// Kills an instance as a power cut would: no goodbye to anyone.
    pub fn kill(&mut self, index: usize) {
        self.instances[index] = None;
    }

    pub async fn create_room(&self, on: usize) -> String {
        let body = self
            .instance(on)
            .call(reqwest::Method::POST, "/api/rooms", Some(json!({})))
            .await;
        body["code"].as_str().expect("a code").to_owned()
    }

    pub async fn join(&self, on: usize, code: &str, name: &str) -> Client {
        self.join_with(on, code, &format!("name={}", urlencode(name)))
            .await
    }

    pub async fn join_with(&self, on: usize, code: &str, query: &str) -> Client {
        match self.try_join(on, code, query).await {
            Ok(client) => client,
            Err((close, reason)) => panic!("the join was refused with {close}: {reason}"),
        }
    }

    pub async fn try_join(
        &self,
        on: usize,
        code: &str,
        query: &str,
    ) -> Result<Client, (u16, String)> {
        let http = &self.instance(on).url;
        let ws = http.replacen("http://", "ws://", 1);
        try_join_at(&format!("{ws}/ws/{code}?{query}")).await
    }

    /// The members `GET /api/rooms/{code}` lists on instance `on`, by name.
    pub async fn members(&self, on: usize, code: &str) -> Vec<String> {
        let room = self
            .instance(on)
            .call(reqwest::Method::GET, &format!("/api/rooms/{code}"), None)
            .await;
        names(&room)
    }

    /// The line of instance `on`'s `/metrics` that starts with `name`, or an empty one.
    pub async fn metric(&self, on: usize, name: &str) -> String {
        let url = format!("{}/metrics", self.instance(on).url);
        let text = reqwest::get(url)
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until every running instance lists exactly `names` in the room.
    pub async fn wait_for_members(&self, code: &str, names: &[&str]) {
        let mut expected: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        expected.sort();
        for (index, instance) in self.instances.iter().enumerate() {
            if instance.is_some() {
                eventually(&format!("instance {index} lists {expected:?}"), || async {
                    (self.members(index, code).await == expected).then_some(())
                })
                .await;
            }
        }
    }
}

/// The names in a welcome's or a room's `members`, sorted.
pub fn names(frame: &Value) -> Vec<String> {
    let mut names: Vec<String> = frame["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

/// What one client heard in a room: every message by seq, and its own acknowledged sends.
#[derive(Default, Debug)]
pub struct Heard {
    pub messages: BTreeMap<u64, String>,
    /// Seqs in the order they arrived, to find a hole or a step back.
    pub order: Vec<u64>,
    pub acknowledged: Vec<String>,
    pub errors: Vec<Value>,
}

impl Heard {
    /// Takes one frame, heard by the client named `me`; true if it was a message.
    pub fn take(&mut self, frame: &Value, me: &str) -> bool {
        match frame["type"].as_str() {
            Some("message") => {
                let seq = frame["seq"].as_u64().expect("a message has a seq");
                let text = frame["text"]
                    .as_str()
                    .expect("a message has text")
                    .to_owned();
                if frame["from"]["name"] == me {
                    self.acknowledged.push(text.clone());
                }
                self.order.push(seq);
                self.messages.insert(seq, text);
                true
            }
            Some("error") => {
                self.errors.push(frame.clone());
                false
            }
            _ => false,
        }
    }

    /// Everything arrived in seq order, each once, with no hole after the first.
    pub fn assert_in_order(&self, who: &str) {
        for pair in self.order.windows(2) {
            assert_eq!(
                pair[1],
                pair[0] + 1,
                "{who}: seq {} followed {}",
                pair[1],
                pair[0]
            );
        }
    }
}

/// A room's stored messages as (seq, text), in seq order.
pub async fn stored_in(database: &TestDatabase, room: &str) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT seq, text FROM messages WHERE room = $1 ORDER BY seq")
        .bind(room)
        .fetch_all(&mut database.connect().await)
        .await
        .expect("messages can be read")
}

/// Checks one room: every client heard the same messages under the same seqs, in order, each
/// once; every acknowledged send is stored exactly once and heard by everyone; storage's seqs
/// run from 1 without a hole.
pub async fn check_room(database: &TestDatabase, room: &str, heard: &[Heard]) {
    let stored = stored_in(database, room).await;
    let seqs: Vec<i64> = stored.iter().map(|(seq, _)| *seq).collect();
    let expected: Vec<i64> = (1..=stored.len() as i64).collect();
    assert_eq!(
        seqs, expected,
        "{room}: stored seqs run from 1 without a hole"
    );
    let by_seq: HashMap<u64, &str> = stored
        .iter()
        .map(|(seq, text)| (*seq as u64, text.as_str()))
        .collect();
    let mut texts: Vec<&str> = by_seq.values().copied().collect();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), stored.len(), "{room}: every stored text once");
    for (index, client) in heard.iter().enumerate() {
        let who = format!("{room} client {index}");
        client.assert_in_order(&who);
        assert!(
            client.errors.is_empty(),
            "{who}: errors {:?}",
            client.errors
        );
        for (seq, text) in &client.messages {
            assert_eq!(
                by_seq.get(seq),
                Some(&text.as_str()),
                "{who}: seq {seq} as stored"
            );
        }
        for text in &client.acknowledged {
            assert!(
                texts.binary_search(&text.as_str()).is_ok(),
                "{who}: {text} stored"
            );
        }
    }
}

/// Reads frames into `heard` until it holds `count` messages, or fails after `patience`.
pub async fn hear(
    client: &mut Client,
    heard: &mut Heard,
    own: &str,
    count: usize,
    patience: Duration,
) {
    let deadline = tokio::time::Instant::now() + patience;
    while heard.messages.len() < count {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = tokio::time::timeout(left, client.next())
            .await
            .unwrap_or_else(|_| {
                panic!("{own}: heard {} of {count} messages", heard.messages.len())
            });
        heard.take(&frame, own);
    }
}
