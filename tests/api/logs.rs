//! The logs: JSON lines on request, one line per connection with its room and id, never message
//! text, and never a line per bad request a stranger sends.

use std::process::Stdio;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{eventually, expect_close, next_json, Binary, TestDatabase};

/// Stops the server with SIGTERM and reads what it logged: the text, and each line as JSON.
async fn json_log(server: Binary) -> (String, Vec<Value>) {
    let output = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    let log = String::from_utf8(output.stdout).unwrap();
    let lines = log
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is JSON"))
        .collect();
    (log, lines)
}

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

    let (log, lines) = json_log(server).await;
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

/// What clients get wrong at the HTTP level (a head that does not parse, too many headers) is
/// never an ERROR line per request: 10,000 bad requests leave one warning per period, however many
/// they are, and the metric counts them all.
#[actix_web::test]
async fn ten_thousand_bad_requests_leave_a_bounded_log_and_no_error() {
    const BAD: u64 = 10_000;
    let database = TestDatabase::new().await;
    let flags = ["--log-format", "json", "--log-level", "warn"];
    let server = Binary::start(&database, &flags, Stdio::piped()).await;
    let address = server.url.trim_start_matches("http://").to_owned();
    let too_many_headers = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        "X-A: b\r\n".repeat(200)
    );

    futures_util::stream::iter(0..BAD)
        .for_each_concurrent(50, |n| {
            let address = address.clone();
            let request = if n % 2 == 0 {
                b"GARBAGE\r\n\r\n".to_vec()
            } else {
                too_many_headers.clone().into_bytes()
            };
            async move {
                let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
                stream.write_all(&request).await.unwrap();
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer).await;
                assert!(
                    answer.starts_with(b"HTTP/1.1 400") || answer.starts_with(b"HTTP/1.1 431"),
                    "{}",
                    String::from_utf8_lossy(&answer)
                );
            }
        })
        .await;
    let counted = eventually("the summary counts every bad request", || async {
        let metrics = reqwest::get(format!("{}/metrics", server.url))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let counted: u64 = metrics
            .lines()
            .find_map(|line| line.strip_prefix("hubbub_http_client_errors_total "))?
            .parse()
            .ok()?;
        (counted >= BAD).then_some(counted)
    })
    .await;

    let (log, lines) = json_log(server).await;
    assert!(lines.len() <= 5, "the log grew with the attack: {log}");
    assert!(
        lines.iter().all(|line| line["level"] != "ERROR"),
        "a client caused an ERROR line: {log}"
    );
    let summarised: u64 = lines
        .iter()
        .filter_map(|line| line["fields"]["count"].as_u64())
        .sum();
    assert_eq!(summarised, counted, "{log}");
}
