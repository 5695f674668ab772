//! The logs: JSON lines on request, one line per connection with its room and id, never message text.

use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{expect_close, next_json, TestDatabase, PATIENCE};

#[actix_web::test]
async fn json_logs_name_rooms_and_connections_but_never_message_text() {
    let database = TestDatabase::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--log-format",
            "json",
        ])
        .args(["--database-url", &database.url])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the hubbub binary starts");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while reqwest::get(format!("{url}/healthz")).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the binary never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{url}/api/rooms"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = created["code"].as_str().unwrap();
    let secret = "a private thought 7f1c";
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws/{code}?name=ann"))
            .await
            .unwrap();
    next_json(&mut socket).await;
    socket
        .send(Message::text(
            json!({ "type": "message", "text": secret }).to_string(),
        ))
        .await
        .unwrap();
    next_json(&mut socket).await;
    let posted = http
        .post(format!("{url}/api/rooms/{code}/messages"))
        .json(&json!({ "name": "bot", "text": secret }));
    assert_eq!(posted.send().await.unwrap().status(), 201);
    socket.close(None).await.unwrap();
    expect_close(&mut socket).await;

    assert!(Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap()
        .success());
    let output = tokio::task::spawn_blocking(move || server.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let log = String::from_utf8(output.stdout).unwrap();

    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is JSON"))
        .collect();
    let said = |message: &str| {
        lines
            .iter()
            .find(|line| line["fields"]["message"] == message)
            .cloned()
    };
    let opened = said("connection opened").expect("a line for the connection opening");
    let closed = said("connection closed").expect("a line for the connection closing");
    assert_eq!(opened["fields"]["room"], code);
    assert_eq!(opened["fields"]["client"], "127.0.0.1");
    assert_eq!(opened["fields"]["conn"], closed["fields"]["conn"]);
    assert!(!log.contains(secret), "message text reached the log");
}
