//! The logs: JSON lines on request, one line per connection with its room and id, never message text.

use std::process::Stdio;

use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{expect_close, next_json, Binary, TestDatabase};

#[actix_web::test]
async fn json_logs_name_rooms_and_connections_but_never_message_text() {
    let database = TestDatabase::new().await;
    let server = Binary::start(&database, &["--log-format", "json"], Stdio::piped()).await;
    let (url, port) = (
        server.url.clone(),
        server.url.rsplit(':').next().unwrap().to_owned(),
    );
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

    let output = tokio::task::spawn_blocking(move || server.terminate())
        .await
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
