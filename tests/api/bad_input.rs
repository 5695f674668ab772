//! Bad input never kills the server or the room: error frames for bad JSON, close codes for bad framing.

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app, Client, TestApp};

async fn room_of_two(app: &TestApp) -> (Client, Client) {
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let bob = app.join(&code, "bob").await;
    ann.expect("joined").await;
    (ann, bob)
}

/// Each malformed frame gets an `error` with its code; the connection stays open and usable.
#[actix_web::test]
async fn malformed_frames_get_an_error_and_the_connection_stays_open() {
    let app = spawn_app().await;
    let (mut ann, mut bob) = room_of_two(&app).await;
    let long = "x".repeat(4_001);
    let cases = [
        ("not json at all".to_owned(), "bad_request"),
        ("[1, 2, 3]".to_owned(), "bad_request"),
        (json!({ "text": "no type" }).to_string(), "bad_request"),
        (
            json!({ "type": "shout", "text": "hi" }).to_string(),
            "unknown_type",
        ),
        (json!({ "type": "message" }).to_string(), "bad_request"),
        (
            json!({ "type": "message", "text": 42 }).to_string(),
            "bad_request",
        ),
        (
            json!({ "type": "message", "text": "  " }).to_string(),
            "empty",
        ),
        (
            json!({ "type": "message", "text": long }).to_string(),
            "too_long",
        ),
        (
            json!({ "type": "message", "text": "hi", "ref": "r".repeat(65) }).to_string(),
            "bad_request",
        ),
        (
            json!({ "type": "rename", "name": "a\u{200B}b" }).to_string(),
            "invalid_name",
        ),
    ];

    for (frame, code) in &cases {
        ann.send_raw(Message::text(frame.as_str())).await;
        let error = ann.expect("error").await;
        assert_eq!(error["code"], *code, "{frame}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    ann.say("still here").await;

    assert_eq!(
        bob.expect("message").await["text"],
        "still here",
        "nothing bad was broadcast"
    );
    assert_eq!(ann.expect("message").await["seq"], 1);
}

/// The moderation and editing frames with wrong types, missing fields, huge values and forged ids
/// get a precise error and change nothing: the owner's room stays as it was.
#[actix_web::test]
async fn malformed_moderation_frames_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let created: serde_json::Value = app
        .post_json("/api/rooms", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let code = created["code"].as_str().unwrap();
    let mut ann = app.join(code, "ann").await;
    ann.send(json!({ "type": "claim", "owner_token": created["owner_token"] }))
        .await;
    ann.expect("role").await;
    let mut bob = app.join(code, "bob").await;
    ann.expect("joined").await;
    let huge = "x".repeat(2_000);
    let cases = [
        (json!({ "type": "delete" }), "bad_request"),
        (json!({ "type": "delete", "seq": "1" }), "bad_request"),
        (json!({ "type": "delete", "seq": -1 }), "bad_request"),
        (json!({ "type": "delete", "seq": u64::MAX }), "bad_request"),
        (
            json!({ "type": "edit", "seq": 1, "text": "\u{0}" }),
            "bad_request",
        ),
        (
            json!({ "type": "ban", "user_id": "not-a-uuid" }),
            "bad_request",
        ),
        (json!({ "type": "ban" }), "bad_request"),
        (
            json!({ "type": "ban", "user_id": bob.id(), "reason": huge.repeat(3) }),
            "too_long",
        ),
        (
            json!({ "type": "ban", "user_id": uuid::Uuid::new_v4() }),
            "bad_request",
        ),
        (
            json!({ "type": "unban", "user_id": bob.id() }),
            "bad_request",
        ),
        (
            json!({ "type": "set_password", "password": 12345678 }),
            "bad_request",
        ),
        (
            json!({ "type": "set_password", "password": "x".repeat(1_025) }),
            "password_too_long",
        ),
        (
            json!({ "type": "set_password", "password": "\u{202E}abc" }),
            "password_too_short",
        ),
        (json!({ "type": "set_password" }), "bad_request"),
        (
            json!({ "type": "set_role", "user_id": bob.id(), "role": "admin" }),
            "bad_request",
        ),
        (
            json!({ "type": "set_role", "user_id": bob.id(), "role": "owner" }),
            "forbidden",
        ),
        (
            json!({ "type": "accounts_only", "on": "yes" }),
            "bad_request",
        ),
    ];

    for (frame, code) in &cases {
        ann.send(frame.clone()).await;
        let error = ann.expect("error").await;
        assert_eq!(error["code"], *code, "{frame}");
    }
    ann.say("still here").await;

    assert_eq!(
        bob.expect("message").await["text"],
        "still here",
        "nothing else reached bob"
    );
    let carol = app.join(code, "carol").await;
    assert_eq!(
        (
            carol.welcome["password"].as_bool(),
            carol.welcome["accounts_only"].as_bool()
        ),
        (Some(false), Some(false))
    );
}

/// Text sent in continuation frames is reassembled into one message.
#[actix_web::test]
async fn fragmented_text_is_reassembled() {
    let app = spawn_app().await;
    let (mut ann, mut bob) = room_of_two(&app).await;
    let frame = json!({ "type": "message", "text": "in three pieces" }).to_string();
    let (a, rest) = frame.split_at(10);
    let (b, c) = rest.split_at(10);

    ann.send_raw(fragment(OpCode::Data(Data::Text), a, false))
        .await;
    ann.send_raw(fragment(OpCode::Data(Data::Continue), b, false))
        .await;
    ann.send_raw(fragment(OpCode::Data(Data::Continue), c, true))
        .await;

    assert_eq!(bob.expect("message").await["text"], "in three pieces");
}

fn fragment(opcode: OpCode, payload: &str, last: bool) -> Message {
    Message::Frame(Frame::message(payload.as_bytes().to_vec(), opcode, last))
}

#[actix_web::test]
async fn a_binary_frame_closes_with_1003() {
    let app = spawn_app().await;
    let (mut ann, mut bob) = room_of_two(&app).await;

    ann.send_raw(Message::binary(vec![1, 2, 3])).await;

    assert_eq!(ann.expect_close().await.0, 1003);
    assert_eq!(bob.expect("left").await["user"]["name"], "ann");
}

#[actix_web::test]
async fn invalid_utf8_closes_with_1007() {
    let app = spawn_app().await;
    let (mut ann, _bob) = room_of_two(&app).await;

    ann.send_raw(Message::Frame(Frame::message(
        vec![b'"', 0xff, 0xfe, b'"'],
        OpCode::Data(Data::Text),
        true,
    )))
    .await;

    assert_eq!(ann.expect_close().await.0, 1007);
}

#[actix_web::test]
async fn invalid_utf8_across_fragments_closes_with_1007() {
    let app = spawn_app().await;
    let (mut ann, _bob) = room_of_two(&app).await;

    // 'é' is 0xC3 0xA9: split it, then end on a lone lead byte.
    ann.send_raw(Message::Frame(Frame::message(
        vec![0xC3],
        OpCode::Data(Data::Text),
        false,
    )))
    .await;
    ann.send_raw(Message::Frame(Frame::message(
        vec![0xA9, 0xC3],
        OpCode::Data(Data::Continue),
        true,
    )))
    .await;

    assert_eq!(ann.expect_close().await.0, 1007);
}

#[actix_web::test]
async fn a_frame_over_64_kib_closes_with_1009() {
    let app = spawn_app().await;
    let (mut ann, mut bob) = room_of_two(&app).await;

    ann.send_raw(Message::text("x".repeat(64 * 1024 + 1))).await;

    assert_eq!(ann.expect_close().await.0, 1009);
    bob.expect("left").await;
}

#[actix_web::test]
async fn a_reassembled_message_over_64_kib_closes_with_1009() {
    let app = spawn_app().await;
    let (mut ann, _bob) = room_of_two(&app).await;
    let piece = "x".repeat(40 * 1024);

    ann.send_raw(fragment(OpCode::Data(Data::Text), &piece, false))
        .await;
    ann.send_raw(fragment(OpCode::Data(Data::Continue), &piece, true))
        .await;

    assert_eq!(ann.expect_close().await.0, 1009);
}

/// A client that closes politely gets its close echoed.
#[actix_web::test]
async fn a_client_close_is_answered() {
    let app = spawn_app().await;
    let (mut ann, _bob) = room_of_two(&app).await;

    ann.socket.close(None).await.unwrap();

    assert_eq!(ann.expect_close().await.0, 1005);
}

/// A control frame that breaks RFC 6455's rules for them (a payload over 125 bytes, or sent in
/// pieces) closes the connection with 1002, and the room is told the sender left. Written as raw
/// bytes: WebSocket libraries refuse to make such frames.
#[actix_web::test]
async fn bad_control_frames_close_with_1002() {
    let app = spawn_app().await;
    // Masked client frames (the mask all zeroes): a ping of 200 bytes, and a ping without FIN.
    let long_ping = [&[0x89, 0x80 | 126, 0, 200, 0, 0, 0, 0][..], &[b'p'; 200]].concat();
    let fragmented_ping = [&[0x09, 0x80 | 5, 0, 0, 0, 0][..], b"piece"].concat();
    for frame in [long_ping, fragmented_ping] {
        let (mut ann, mut bob) = room_of_two(&app).await;

        ann.tcp().write_all(&frame).await.unwrap();

        assert_eq!(ann.expect_close().await.0, 1002);
        assert_eq!(bob.expect("left").await["user"]["name"], "ann");
    }
}
