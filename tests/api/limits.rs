//! Flood control, heartbeats, slow consumers and idle rooms.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

use crate::helpers::{
    eventually, expect_close, next_json, spawn_app_with, Client, Socket, TestApp, PATIENCE,
};

/// Past the burst, messages are refused with `rate_limited` and never broadcast.
#[actix_web::test]
async fn a_flood_is_rate_limited_and_not_broadcast() {
    let app = spawn_app_with(&["--rate-limit", "1", "--rate-burst", "3"]).await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;

    for i in 0..8 {
        ann.say(&format!("flood {i}")).await;
    }
    let (mut delivered, mut limited) = (0, 0);
    for _ in 0..8 {
        match ann.next().await["type"].as_str().unwrap() {
            "message" => delivered += 1,
            "error" => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    ann.send(json!({ "type": "typing" })).await;

    // The burst of 3 passes; a fourth may pass if a second went by while sending.
    assert!((3..=4).contains(&delivered), "{delivered} delivered");
    assert_eq!(delivered + limited, 8);
    for _ in 0..delivered {
        bob.expect("message").await;
    }
    assert_eq!(
        bob.expect("typing").await["user"]["name"],
        "ann",
        "no more messages reached bob"
    );
}

/// The error frame for a limited message says what happened, and to which message.
#[actix_web::test]
async fn the_rate_limit_error_is_explicit() {
    let app = spawn_app_with(&["--rate-limit", "1", "--rate-burst", "1"]).await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;

    ann.send(json!({ "type": "message", "text": "one", "ref": "r1" }))
        .await;
    ann.send(json!({ "type": "message", "text": "two", "ref": "r2" }))
        .await;
    ann.expect("message").await;
    let error = ann.expect("error").await;

    assert_eq!(error["code"], "rate_limited");
    assert_eq!(error["ref"], "r2", "the error names the refused message");
    assert!(error["message"].as_str().unwrap().contains("not delivered"));
}

/// A client that answers no pings is dropped after the client timeout, and the room is told.
#[actix_web::test]
async fn a_silent_client_is_dropped_after_the_timeout() {
    let app = spawn_app_with(&["--heartbeat-interval", "100ms", "--client-timeout", "400ms"]).await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    // bob's socket is not read, so tungstenite never answers the server's pings.
    let mut bob = app.open(&format!("/ws/{code}?name=bob")).await;

    let joined = ann.next().await;
    let left = ann.next().await;

    assert_eq!(joined["type"], "joined");
    assert_eq!(
        left["type"], "left",
        "ann keeps answering pings and stays; bob is dropped"
    );
    assert_eq!(left["user"]["name"], "bob");
    assert_eq!(next_json(&mut bob).await["type"], "welcome");
    assert_eq!(expect_close(&mut bob).await.0, 4408);
}

/// A member who stops reading is cut off once its backlog is full; the room keeps flowing.
#[actix_web::test]
async fn a_slow_consumer_is_disconnected_and_the_room_keeps_receiving() {
    // A backlog well above what scheduling noise on a busy test machine builds up for a reader that reads.
    let (app, code, mut reader, mut stopped) =
        room_with_a_reader_that_stops(&["--max-backlog", "64"]).await;

    // Enough bytes to fill the kernel's socket buffers towards the connection that never reads.
    const COUNT: u64 = 3_000;
    let sender = async {
        for _ in 0..COUNT {
            assert_eq!(post_large(&app, &code).await, 201);
        }
    };
    let receiver = async {
        let (mut seqs, mut stopped_left) = (Vec::new(), false);
        while seqs.len() < COUNT as usize {
            let frame = reader.next().await;
            match frame["type"].as_str().unwrap() {
                "message" => seqs.push(frame["seq"].as_u64().unwrap()),
                "left" if frame["user"]["name"] == "stopped" => stopped_left = true,
                other => panic!("unexpected {other}"),
            }
        }
        (seqs, stopped_left)
    };
    let ((), (seqs, stopped_left)) = tokio::join!(sender, receiver);

    assert_eq!(
        seqs,
        (1..=COUNT).collect::<Vec<_>>(),
        "the reader got every message in order"
    );
    assert!(stopped_left, "the room was told the slow member left");
    // Once it reads again, the slow client drains what was buffered and then finds the close.
    let close = tokio::time::timeout(PATIENCE, async {
        while let Some(frame) = stopped.next().await {
            if let Ok(tokio_tungstenite::tungstenite::Message::Close(Some(close))) = frame {
                return u16::from(close.code);
            }
        }
        0
    })
    .await
    .expect("the slow client sees its close in time");
    assert_eq!(close, 4008);
}

/// An empty room leaves memory after the idle timeout but not storage: it comes back, history and
/// all. That it left shows in the identities it forgot: the old resume secret makes someone new.
#[actix_web::test]
async fn an_idle_room_leaves_memory_and_comes_back_from_storage() {
    let app = spawn_app_with(&["--room-idle-timeout", "200ms"]).await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let (id, secret) = (ann.id().to_owned(), ann.resume_secret().to_owned());
    ann.say("remember me").await;
    ann.expect("message").await;
    drop(ann);

    // Each look that finds the room in memory loads nothing but resets its idle time: look less often.
    let back = eventually("the room leaves memory", || async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let back = app
            .join_with(&code, &format!("name=ann&resume={secret}"))
            .await;
        (back.id() != id).then_some(back)
    })
    .await;

    let mut back = back;
    back.say("still here").await;

    assert_eq!(back.welcome["history"][0]["text"], "remember me");
    assert_eq!(back.welcome["history"][0]["seq"], 1);
    assert_eq!(
        back.expect("message").await["seq"],
        2,
        "unloaded cleanly, the room numbers on without a gap"
    );
}

/// Joins that race an idle room's unloading reach the room loaded afresh; none is told the room does
/// not exist. With a 1 ms idle timeout the empty room unloads 1 to 1.25 ms after its last member
/// leaves, and each join starts a little later than the one before, so some land just as it stops.
#[actix_web::test]
async fn a_room_unloading_as_it_is_joined_is_loaded_again() {
    let app = spawn_app_with(&["--room-idle-timeout", "1ms"]).await;
    let code = app.create_room().await;

    for attempt in 0..60 {
        // Not a wait for something: the spread of moments the race needs, finer than tokio's timer.
        std::thread::sleep(Duration::from_micros(attempt * 40));
        // A name of its own: the previous joiner's leave may still be on its way.
        let mut joiner = match app.try_join(&code, &format!("name=joiner{attempt}")).await {
            Ok(joiner) => joiner,
            Err((close, reason)) => panic!("join {attempt} was refused with {close}: {reason}"),
        };
        joiner.socket.close(None).await.expect("the socket closes");
    }
}

/// A client that never reads again is not kept forever. Once its backlog is full its session is
/// frozen (actix stops polling it) and no timer of ours runs; the kernel must abort the connection
/// after the client timeout without acknowledged data.
#[actix_web::test]
async fn a_stalled_reader_is_cut_off_at_the_tcp_level() {
    let flags = ["--heartbeat-interval", "1s", "--client-timeout", "3s"];
    let (app, code, mut reader, mut stalled) = room_with_a_reader_that_stops(&flags).await;
    let posted = async {
        for _ in 0..10_000 {
            post_large(&app, &code).await;
        }
    };
    let evicted = async {
        loop {
            let frame = reader.next().await;
            if frame["type"] == "left" {
                return frame;
            }
        }
    };
    // Flood until the room evicts the stalled reader: from then on its session is frozen.
    let left = tokio::select! {
        left = evicted => left,
        () = posted => panic!("the stalled reader was never evicted"),
    };
    assert_eq!(left["user"]["name"], "stopped");

    // Not a wait for something: the stall itself. Reading would reopen the receive window.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let ending = tokio::time::timeout(PATIENCE, async {
        loop {
            match stalled.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(close))) => {
                    return format!("close {close:?}")
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return format!("error {err}"),
                None => return "end".to_owned(),
            }
        }
    })
    .await
    .expect("the connection ends in time");
    assert!(
        ending.contains("reset"),
        "expected the kernel's reset, got {ending}"
    );
}

/// A room with a member who reads and a connection, `stopped`, that never reads, on a server without
/// a flood limit so the test can fill socket buffers quickly.
async fn room_with_a_reader_that_stops(flags: &[&str]) -> (TestApp, String, Client, Socket) {
    let unlimited = ["--rate-limit", "100000", "--rate-burst", "100000"];
    let app = spawn_app_with(&[flags, &unlimited].concat()).await;
    let code = app.create_room().await;
    let mut reader = app.join(&code, "reader").await;
    let stopped = app.open(&format!("/ws/{code}?name=stopped")).await;
    reader.expect("joined").await;
    (app, code, reader, stopped)
}

/// Posts a 4,000-character message over the API and returns the status.
async fn post_large(app: &TestApp, code: &str) -> u16 {
    let body = json!({ "name": "bot", "text": "x".repeat(4_000) });
    let response = app
        .post_json(&format!("/api/rooms/{code}/messages"), &body)
        .await;
    response.status().as_u16()
}

/// One address may hold only so many connections; a closed one frees its place.
#[actix_web::test]
async fn connections_per_address_are_capped() {
    let app = spawn_app_with(&["--max-connections-per-address", "2"]).await;
    let code = app.create_room().await;
    let ann = app.join(&code, "ann").await;
    let _bob = app.join(&code, "bob").await;

    let mut third = app.open(&format!("/ws/{code}?name=carol")).await;
    let (close, reason) = expect_close(&mut third).await;
    drop(ann);
    let carol = eventually("ann's place frees up", || async {
        app.try_join(&code, "name=carol").await.ok()
    })
    .await;

    assert_eq!(close, 4429);
    assert!(reason.contains("at most 2"), "{reason}");
    assert_eq!(carol.welcome["you"]["name"], "carol");
}

/// A full room refuses the next person with a reason; a member's reconnection is not a newcomer.
#[actix_web::test]
async fn a_full_room_refuses_the_next_member() {
    let app = spawn_app_with(&["--max-members-per-room", "2"]).await;
    let code = app.create_room().await;
    let _ann = app.join(&code, "ann").await;
    let bob = app.join(&code, "bob").await;

    let mut third = app.open(&format!("/ws/{code}?name=carol")).await;
    let (close, reason) = expect_close(&mut third).await;
    let takeover = app
        .join_with(&code, &format!("name=bob&resume={}", bob.resume_secret()))
        .await;

    assert_eq!(close, 4413);
    assert!(reason.contains("full"), "{reason}");
    assert_eq!(takeover.welcome["you"]["id"], bob.id());
}

#[actix_web::test]
async fn no_room_is_created_past_the_room_limit() {
    let app = spawn_app_with(&["--max-rooms", "2"]).await;
    app.create_room().await;
    app.create_room().await;

    let refused = app.post_json("/api/rooms", &json!({})).await;

    assert_eq!(refused.status(), 503);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "room_limit");
}

/// Bodies over the limit are refused with JSON, on every endpoint; so are wrong methods.
#[actix_web::test]
async fn oversized_bodies_and_wrong_methods_get_json_errors() {
    let app = spawn_app_with(&["--max-body-size", "1024"]).await;
    let code = app.create_room().await;
    let big = json!({ "name": "bot", "text": "x".repeat(2_000) });

    let message = app
        .post_json(&format!("/api/rooms/{code}/messages"), &big)
        .await;
    let room = app
        .post_json("/api/rooms", &json!({ "code": "x".repeat(2_000) }))
        .await;
    let wrong_method = app
        .http
        .delete(format!("{}/api/rooms", app.address))
        .send()
        .await
        .unwrap();

    for (response, status, code) in [
        (message, 413, "too_large"),
        (room, 413, "too_large"),
        (wrong_method, 404, "not_found"),
    ] {
        assert_eq!(response.status(), status);
        let body: serde_json::Value = response.json().await.expect("a JSON error body");
        assert_eq!(body["error"]["code"], code, "{body}");
    }
}
