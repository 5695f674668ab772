//! What the network and strangers on it do to a server: heads sent slowly or far too large,
//! connections cut mid-frame, a WebSocket that trickles, thousands of upgrades from one address.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{eventually, expect_close, spawn_app, spawn_app_with, PATIENCE};

/// Reads what the server answers on `stream` until it closes it (or `PATIENCE` runs out).
async fn answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server never closed the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The first bytes of a masked client text frame of `len` bytes (under 126), mask all zeroes.
fn text_frame_head(len: u8) -> [u8; 6] {
    [0x81, 0x80 | len, 0, 0, 0, 0]
}

/// Slowloris: a head that never finishes is answered 408 and closed when actix's request timeout
/// (5 s) runs out, however steadily its bytes trickle in, and others are served meanwhile.
#[actix_web::test]
async fn a_request_head_sent_slowly_gets_408_and_others_are_served_meanwhile() {
    let app = spawn_app().await;
    let mut slow = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();

    let trickled = async {
        // Bounded: a header line a second for at most twice the timeout.
        for n in 0..10 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if slow
                .write_all(format!("X-Slow-{n}: a\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
            assert_eq!(app.get("/healthz").await.status(), 200, "served meanwhile");
        }
        answer(&mut slow).await
    };
    let answered = tokio::time::timeout(PATIENCE * 2, trickled).await;

    let answered = answered.expect("the slow head is cut off");
    assert!(answered.starts_with("HTTP/1.1 408"), "{answered:?}");
}

/// 100 KiB of headers in one request is refused before any handler runs, and costs the server
/// nothing after: the next request is served.
#[actix_web::test]
async fn a_request_with_100_kib_of_headers_is_refused() {
    let app = spawn_app().await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let header = format!("X-Big: {}\r\n", "a".repeat(1_000));
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
        header.repeat(100)
    );

    // The server may close before reading it all; what it answered is what counts.
    let _ = stream.write_all(request.as_bytes()).await;
    let answered = answer(&mut stream).await;

    assert!(answered.starts_with("HTTP/1.1 431"), "{answered:?}");
    assert_eq!(app.get("/healthz").await.status(), 200);
}

/// A client whose connection is reset in the middle of a frame has left; the half frame is
/// dropped and the room carries on.
#[actix_web::test]
async fn a_connection_reset_mid_frame_is_a_leave_and_nothing_more() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;

    let stream = ann.tcp();
    stream.write_all(&text_frame_head(40)).await.unwrap();
    stream.write_all(b"{\"type\":\"mess").await.unwrap();
    // SO_LINGER 0: closing sends a RST instead of a FIN, as a crashed peer or a proxy does.
    stream.set_zero_linger().unwrap();
    drop(ann);

    assert_eq!(bob.expect("left").await["user"]["name"], "ann");
    let mut carol = app.join(&code, "carol").await;
    bob.say("still here").await;
    assert_eq!(carol.expect("message").await["text"], "still here");
}

/// A WebSocket that sends one byte a second never completes a frame, so it never answers a ping:
/// it is dropped at the client timeout, however long it keeps trickling.
#[actix_web::test]
async fn a_websocket_that_sends_a_byte_a_second_is_dropped_at_the_client_timeout() {
    let app = spawn_app_with(&["--heartbeat-interval", "1s", "--client-timeout", "3s"]).await;
    let code = app.create_room().await;
    let mut bob = app.join(&code, "bob").await;
    let mut ann = app.join(&code, "ann").await;
    bob.expect("joined").await;

    let frame: Vec<u8> = text_frame_head(17)
        .into_iter()
        .chain(*b"{\"type\":\"typing\"}")
        .collect();
    let trickle = async {
        for byte in &frame[..frame.len() - 1] {
            if ann.tcp().write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let left = tokio::select! {
        left = bob.expect("left") => left,
        () = trickle => panic!("a trickling client outlasted the client timeout"),
    };

    assert_eq!(left["user"]["name"], "ann");
}

/// 10,000 upgrade attempts from one address past its cap of connections are each refused with
/// 4429, the connections it holds keep working, and the attempts leave no descriptor behind.
#[actix_web::test]
async fn ten_thousand_upgrades_from_one_address_are_refused_past_its_cap() {
    const ATTEMPTS: usize = 10_000;
    let app = spawn_app_with(&["--max-connections-per-address", "3"]).await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut bob = app.join(&code, "bob").await;
    let _carol = app.join(&code, "carol").await;
    bob.expect("joined").await;
    let descriptors = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let before = descriptors();

    let refused = futures_util::stream::iter(0..ATTEMPTS)
        .map(|n| {
            let url = app.ws_url(&format!("/ws/{code}?name=n{n}"));
            async move {
                let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
                expect_close(&mut socket).await.0
            }
        })
        .buffer_unordered(50)
        .filter(|&close| std::future::ready(close == 4429))
        .count()
        .await;

    assert_eq!(refused, ATTEMPTS);
    ann.say("after the storm").await;
    assert_eq!(bob.expect("message").await["text"], "after the storm");
    eventually(
        "the refused connections' descriptors are closed",
        || async { (descriptors() <= before + 5).then_some(()) },
    )
    .await;
}
