//! Refused joins: each closes right after the upgrade with its code and a readable reason.

use serde_json::json;

use crate::helpers::{spawn_app, urlencode, TestApp};

async fn refusal(app: &TestApp, path_and_query: &str) -> (u16, String) {
    let mut socket = app.open(path_and_query).await;
    crate::helpers::expect_close(&mut socket).await
}

#[actix_web::test]
async fn an_unknown_room_closes_with_4404() {
    let app = spawn_app().await;

    let (code, reason) = refusal(&app, "/ws/NOPE42?name=ann").await;

    assert_eq!(code, 4404);
    assert!(reason.contains("NOPE42"), "{reason}");
}

/// Names clash case-insensitively and after NFC normalization.
#[actix_web::test]
async fn a_taken_name_closes_with_4409() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let _zoe = app.join(&code, "Zo\u{eb}").await;

    for clash in ["ZOË", "zoe\u{308}", " zoë "] {
        let (close, reason) = refusal(&app, &format!("/ws/{code}?name={}", urlencode(clash))).await;
        assert_eq!(close, 4409, "{clash:?}");
        assert!(reason.contains("taken"), "{reason}");
    }
}

#[actix_web::test]
async fn invalid_parameters_close_with_4400() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let long = "a".repeat(33);
    let cases = [
        format!("/ws/{code}"),
        format!("/ws/{code}?name="),
        format!("/ws/{code}?name={long}"),
        format!("/ws/{code}?name=a%E2%80%AEb"),
        format!("/ws/{code}?name=ann&since=yesterday"),
        "/ws/no_such_code!?name=ann".to_owned(),
    ];

    for path in cases {
        let (close, reason) = refusal(&app, &path).await;
        assert_eq!(close, 4400, "{path}: {reason}");
        assert!(!reason.is_empty(), "{path}");
    }
}

/// A refused join leaves no trace in the room.
#[actix_web::test]
async fn a_refused_join_is_not_announced() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;

    refusal(&app, &format!("/ws/{code}?name=ANN")).await;
    ann.say("still alone").await;

    assert_eq!(ann.next().await["type"], "message");
    let room: serde_json::Value = app
        .get(&format!("/api/rooms/{code}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(room["members"], json!([{ "id": ann.id(), "name": "ann" }]));
}
