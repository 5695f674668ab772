//! `spawn_app()` and the clients the tests drive it with.

use std::sync::LazyLock;
use std::time::Duration;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hubbub::config::Config;
use hubbub::startup::Application;

use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame it expects; a guard against hanging, not a performance bound.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// How often `eventually` looks again.
const POLL: Duration = Duration::from_millis(50);

/// Polls `probe` until it answers `Some`, and returns that; fails the test, naming `what`, if that
/// takes longer than twice `PATIENCE`.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE * 2;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(POLL).await;
    }
}

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        hubbub::telemetry::init("debug", hubbub::telemetry::LogFormat::Text)
            .expect("log subscriber installs once");
    }
});

pub struct TestApp {
    pub port: u16,
    pub address: String,
    pub http: reqwest::Client,
    /// The test's own database, which a restarted server can open again.
    pub database: TestDatabase,
    /// Sending on (or dropping) it stops the server; the handle says when it has finished.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    stopped: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Starts the server on a free port with its default settings and a database of its own.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the server with extra command-line flags, parsed exactly as `hubbub` parses them.
pub async fn spawn_app_with(flags: &[&str]) -> TestApp {
    spawn_app_on(TestDatabase::new().await, flags).await
}

/// Starts the server on an existing test database, as a restart would.
pub async fn spawn_app_on(database: TestDatabase, flags: &[&str]) -> TestApp {
    LazyLock::force(&TRACING);
    let base = [
        "hubbub",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--database-url",
        &database.url,
    ];
    let config = Config::try_parse_from(base.iter().chain(flags)).expect("test flags parse");
    let app = Application::build(config)
        .await
        .expect("the application builds");
    let port = app.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = actix_web::rt::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        port,
        address: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::new(),
        database,
        stop: Some(stop),
        stopped: Some(stopped),
    }
}

/// A database for one test: a SQLite file in a temporary directory, or, when HUBBUB_TEST_POSTGRES
/// names a PostgreSQL server (`postgres://127.0.0.1/test`), a fresh database created on it.
#[derive(Clone)]
pub struct TestDatabase {
    pub url: String,
    /// The PostgreSQL server's URL (to administer the test database), if it is one.
    server: Option<String>,
    /// Keeps the SQLite file's directory until the last clone is dropped.
    _dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

/// A database outage in progress; `end` lifts it.
pub enum Outage {
    /// Another connection holds SQLite's write lock.
    SqliteLocked(sqlx::SqliteConnection),
    /// The PostgreSQL test database refuses connections and its sessions were ended.
    PostgresClosed { server: String, name: String },
}

impl TestDatabase {
    pub async fn new() -> Self {
        match std::env::var("HUBBUB_TEST_POSTGRES")
            .ok()
            .filter(|server| !server.is_empty())
        {
            Some(server) => Self::postgres(&server).await,
            None => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite:{}", dir.path().join("hubbub.db").display());
                Self {
                    url,
                    server: None,
                    _dir: Some(std::sync::Arc::new(dir)),
                }
            }
        }
    }

    /// A fresh database on the PostgreSQL server at `server`.
    pub async fn postgres(server: &str) -> Self {
        let name = format!("hubbub_test_{}", uuid::Uuid::new_v4().simple());
        admin(server, &format!("CREATE DATABASE {name}")).await;
        let mut url = url::Url::parse(server).expect("HUBBUB_TEST_POSTGRES is a URL");
        url.set_path(&name);
        Self {
            url: url.to_string(),
            server: Some(server.to_owned()),
            _dir: None,
        }
    }

    /// Makes every write the server attempts fail until the outage ends.
    pub async fn block_writes(&self) -> Outage {
        use sqlx::Connection;
        match &self.server {
            None => {
                let mut lock = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("the test database opens");
                sqlx::Executor::execute(&mut lock, "BEGIN EXCLUSIVE")
                    .await
                    .expect("the write lock is taken");
                Outage::SqliteLocked(lock)
            }
            Some(server) => {
                let name = self
                    .url
                    .rsplit('/')
                    .next()
                    .expect("a database name")
                    .to_owned();
                admin(
                    server,
                    &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
                )
                .await;
                let kick = format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'");
                admin(server, &kick).await;
                Outage::PostgresClosed {
                    server: server.clone(),
                    name,
                }
            }
        }
    }
}

impl TestDatabase {
    /// How many messages are in the database itself (the API also shows a room's memory).
    pub async fn stored_messages(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM messages")
            .fetch_one(&mut self.connect().await)
            .await
            .expect("messages can be counted")
    }

    /// Breaks every read of rooms: their table is gone, as if the schema were damaged.
    pub async fn drop_rooms_table(&self) {
        sqlx::Executor::execute(&mut self.connect().await, "DROP TABLE rooms")
            .await
            .expect("the rooms table is dropped");
    }

    /// A connection of the test's own to its database, beside the server's.
    pub async fn connect(&self) -> sqlx::AnyConnection {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.url)
            .await
            .expect("the test database opens")
    }
}

impl Outage {
    pub async fn end(self) {
        match self {
            Outage::SqliteLocked(mut lock) => {
                sqlx::Executor::execute(&mut lock, "ROLLBACK")
                    .await
                    .expect("the write lock is released");
            }
            Outage::PostgresClosed { server, name } => {
                admin(
                    &server,
                    &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
                )
                .await;
            }
        }
    }
}

async fn admin(server: &str, sql: &str) {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(server)
        .await
        .expect("the test PostgreSQL server answers");
    sqlx::Executor::execute(&mut connection, sql)
        .await
        .expect("an administrative statement runs");
}

impl TestApp {
    /// Stops the server as SIGTERM would, and waits until it has flushed storage and exited.
    pub async fn stop(mut self) -> TestDatabase {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            stopped
                .await
                .expect("the server task ends")
                .expect("the server stops cleanly");
        }
        self.database.clone()
    }
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

impl TestApp {
    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://127.0.0.1:{}{path_and_query}", self.port)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .expect("the server answers")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("the server answers")
    }

    /// Waits until `GET /api/rooms/{code}` lists `count` members: the room has seen the others go.
    pub async fn wait_for_members(&self, code: &str, count: usize) {
        let path = format!("/api/rooms/{code}");
        eventually(&format!("{code} has {count} members"), || async {
            let room: Value = self.get(&path).await.json().await.ok()?;
            (room["members"].as_array()?.len() == count).then_some(())
        })
        .await;
    }

    pub async fn wait_until_empty(&self, code: &str) {
        self.wait_for_members(code, 0).await;
    }

    /// Creates a room with a generated code and returns the code.
    pub async fn create_room(&self) -> String {
        let response = self.post_json("/api/rooms", &json!({})).await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("JSON body");
        body["code"].as_str().expect("a code").to_owned()
    }

    /// Opens a WebSocket without reading anything from it.
    pub async fn open(&self, path_and_query: &str) -> Socket {
        let (socket, _) = tokio_tungstenite::connect_async(self.ws_url(path_and_query))
            .await
            .expect("the upgrade succeeds");
        socket
    }

    /// Joins `code` as `name` and reads the welcome.
    pub async fn join(&self, code: &str, name: &str) -> Client {
        self.join_with(code, &format!("name={}", urlencode(name)))
            .await
    }

    /// Joins with a raw query string (`name=…&resume=…&since=…`) and reads the welcome.
    pub async fn join_with(&self, code: &str, query: &str) -> Client {
        match self.try_join(code, query).await {
            Ok(client) => client,
            Err((code, reason)) => panic!("the join was refused with {code}: {reason}"),
        }
    }

    /// Joins, or returns the close code and reason the server refused the join with.
    pub async fn try_join(&self, code: &str, query: &str) -> Result<Client, (u16, String)> {
        try_join_at(&self.ws_url(&format!("/ws/{code}?{query}"))).await
    }
}

/// Joins at a room's WebSocket `url` (or a request for it, with headers), or returns the close
/// code and reason of the refusal.
pub async fn try_join_at(
    url: impl tungstenite::client::IntoClientRequest + Unpin,
) -> Result<Client, (u16, String)> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the upgrade succeeds");
    match next_frame(&mut socket).await {
        Message::Text(text) => {
            let welcome: Value = serde_json::from_str(&text).expect("frames are JSON");
            assert_eq!(welcome["type"], "welcome", "first frame: {welcome}");
            Ok(Client { socket, welcome })
        }
        Message::Close(Some(close)) => Err((u16::from(close.code), close.reason.to_string())),
        other => panic!("expected a welcome or a close, got {other:?}"),
    }
}

pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A joined WebSocket client.
pub struct Client {
    pub socket: Socket,
    pub welcome: Value,
}

impl Client {
    pub fn id(&self) -> &str {
        self.welcome["you"]["id"]
            .as_str()
            .expect("welcome has you.id")
    }

    pub fn resume_secret(&self) -> &str {
        self.welcome["resume"].as_str().expect("welcome has resume")
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_raw(Message::text(frame.to_string())).await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.socket.send(message).await.expect("the frame is sent");
    }

    pub async fn say(&mut self, text: &str) {
        self.send(json!({ "type": "message", "text": text })).await;
    }

    /// The next JSON frame; fails the test on a close, an error or a wait past `PATIENCE`.
    pub async fn next(&mut self) -> Value {
        next_json(&mut self.socket).await
    }

    /// The next frame of type `kind`, failing on any other frame on the way.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let frame = self.next().await;
        assert_eq!(frame["type"], kind, "expected a {kind} frame, got {frame}");
        frame
    }

    /// Asserts that nothing reached this client before a sentinel that `sentinel` sends now: frames
    /// from one room arrive in order, so whatever was on its way comes first.
    pub async fn expect_nothing_before(&mut self, sentinel: &mut Client) {
        sentinel.say("sentinel").await;
        let frame = self.next().await;
        assert!(
            frame["type"] == "message" && frame["text"] == "sentinel",
            "expected nothing before the sentinel, got {frame}"
        );
    }

    pub async fn expect_close(&mut self) -> (u16, String) {
        expect_close(&mut self.socket).await
    }

    /// The TCP connection under the WebSocket, to send what no WebSocket library would.
    pub fn tcp(&mut self) -> &mut TcpStream {
        match self.socket.get_mut() {
            MaybeTlsStream::Plain(stream) => stream,
            _ => unreachable!("tests connect without TLS"),
        }
    }
}

pub async fn next_json(socket: &mut Socket) -> Value {
    match next_frame(socket).await {
        Message::Text(text) => serde_json::from_str(&text).expect("frames are JSON"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next frame other than a ping or pong; fails the test on an error or a wait past `PATIENCE`.
async fn next_frame(socket: &mut Socket) -> Message {
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a frame arrives in time")
            .expect("the connection is open")
            .expect("the frame is well-formed");
        if !matches!(frame, Message::Ping(_) | Message::Pong(_)) {
            return frame;
        }
    }
}

/// Reads past any other frames to the close frame, and returns its code and reason.
pub async fn expect_close(socket: &mut Socket) -> (u16, String) {
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a frame arrives in time");
        match frame {
            Some(Ok(Message::Close(Some(close)))) => {
                return (u16::from(close.code), close.reason.to_string())
            }
            Some(Ok(Message::Close(None))) => return (u16::from(CloseCode::Status), String::new()),
            Some(Ok(_)) => continue,
            Some(Err(err)) => panic!("the connection failed without a close frame: {err}"),
            None => panic!("the connection ended without a close frame"),
        }
    }
}

/// The HTTP status a refused upgrade answered with.
pub async fn upgrade_status(request: tungstenite::handshake::client::Request) -> u16 {
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => 101,
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected handshake failure: {other}"),
    }
}

/// The `hubbub` binary itself, running as a separate process on its own port; killed if the test
/// ends (or fails) without terminating it, so no server outlives its test.
pub struct Binary {
    /// Taken by `terminate`.
    process: Option<std::process::Child>,
    pub url: String,
    http: reqwest::Client,
}

impl Binary {
    /// Starts it on `database` with extra `flags`, and waits until it answers /healthz.
    pub async fn start(
        database: &TestDatabase,
        flags: &[&str],
        stdout: std::process::Stdio,
    ) -> Self {
        let binary = std::process::Command::new(env!("CARGO_BIN_EXE_hubbub"));
        Self::start_as(binary, &database.url, flags, stdout).await
    }

    /// Starts it through `command`: the binary, or a wrapper that runs the binary with the
    /// arguments added to it (`CARGO_BIN_EXE_hubbub` first).
    pub async fn start_as(
        mut command: std::process::Command,
        database_url: &str,
        flags: &[&str],
        stdout: std::process::Stdio,
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = command
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--database-url",
                database_url,
            ])
            .args(flags)
            .stdout(stdout)
            .spawn()
            .expect("the hubbub binary starts");
        let url = format!("http://127.0.0.1:{port}");
        eventually("the binary answers /healthz", || async {
            reqwest::get(format!("{url}/healthz")).await.ok().map(drop)
        })
        .await;
        Self {
            process: Some(process),
            url,
            // Idle connections are dropped before the server's keep-alive (5 s) closes them: reusing one
            // the server is closing that moment fails the request.
            http: reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .expect("an HTTP client"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.as_ref().expect("the binary is running").id()
    }

    /// Makes a request that must succeed and returns its JSON body.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the binary answers");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("a JSON body")
    }

    /// Sends SIGTERM, as a container runtime does, and waits for the exit and any captured output.
    pub fn terminate(mut self) -> std::process::Output {
        let process = self.process.take().expect("the binary is running");
        let pid = process.id().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        process.wait_with_output().expect("the binary exits")
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}
