//! Rooms with a password: a moderator sets it, newcomers trade it for a short-lived pass at
//! `POST /api/rooms/{code}/pass` and join with `?pass=`; the password is never in a URL or a frame.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_on, urlencode, Client, TestApp};

const PASSWORD: &str = "open sesame";

/// A new room whose owner, ann, is connected: its code, her owner token and her connection.
async fn room_with_owner(app: &TestApp) -> (String, String, Client) {
    let created: Value = app
        .post_json("/api/rooms", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let code = created["code"].as_str().unwrap().to_owned();
    let token = created["owner_token"].as_str().unwrap().to_owned();
    let mut ann = app.join(&code, "ann").await;
    ann.send(json!({ "type": "claim", "owner_token": token }))
        .await;
    ann.expect("role").await;
    (code, token, ann)
}

/// `POST /api/rooms/{code}/pass`: the status and the body.
async fn ask_pass(app: &TestApp, code: &str, password: &str) -> (u16, Value) {
    let response = app
        .post_json(
            &format!("/api/rooms/{code}/pass"),
            &json!({ "password": password }),
        )
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn pass(app: &TestApp, code: &str) -> String {
    let (status, body) = ask_pass(app, code, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in_seconds"], 60);
    body["pass"].as_str().unwrap().to_owned()
}

/// The close a refused join got.
async fn refused(app: &TestApp, code: &str, query: &str) -> (u16, String) {
    match app.try_join(code, query).await {
        Err(close) => close,
        Ok(_) => panic!("{query}: admitted"),
    }
}

/// The owner sets a password; newcomers need a pass made with it, those inside stay, someone who
/// was in the room comes back without one; a wrong or foreign pass is refused; the password
/// survives a restart and is never echoed; removing it opens the room again.
#[actix_web::test]
async fn newcomers_to_a_room_with_a_password_need_a_pass_made_with_it() {
    let app = spawn_app().await;
    let (code, token, mut ann) = room_with_owner(&app).await;
    let other_room = app.create_room().await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;
    bob.send(json!({ "type": "set_password", "password": PASSWORD }))
        .await;
    assert_eq!(bob.expect("error").await["code"], "forbidden");
    ann.send(json!({ "type": "set_password", "password": "short" }))
        .await;
    assert_eq!(ann.expect("error").await["code"], "password_too_short");
    assert_eq!(
        ask_pass(&app, &code, PASSWORD).await.1["error"]["code"],
        "no_password"
    );

    ann.send(json!({ "type": "set_password", "password": PASSWORD }))
        .await;

    let updated = bob.expect("room_updated").await;
    assert_eq!(
        updated,
        json!({ "type": "room_updated", "locked": false, "accounts_only": false, "password": true })
    );
    ann.expect("room_updated").await;
    let (close, reason) = refused(&app, &code, "name=carol").await;
    assert_eq!(
        (close, reason.as_str()),
        (4407, "this room has a password: get a pass with it to join")
    );
    let (status, body) = ask_pass(&app, &code, "open sesame!").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("wrong_password"))
    );
    let good = pass(&app, &code).await;
    assert!(!good.contains(PASSWORD));
    for bad in [format!("{good}0"), "1.ab".to_owned(), String::new()] {
        let query = format!("name=carol&pass={}", urlencode(&bad));
        assert_eq!(refused(&app, &code, &query).await.0, 4407, "{bad}");
    }
    let carol = app
        .join_with(&code, &format!("name=carol&pass={}", urlencode(&good)))
        .await;
    assert_eq!(carol.welcome["password"], true);
    let query = format!("name=eve&pass={}", urlencode(&good));
    assert!(
        app.try_join(&other_room, &query).await.is_ok(),
        "the other room has no password"
    );
    let bob_secret = bob.resume_secret().to_owned();
    drop((bob, carol));
    let bob = app
        .join_with(&code, &format!("name=bob&resume={bob_secret}"))
        .await;
    assert_eq!(
        bob.welcome["you"]["name"], "bob",
        "someone coming back needs no pass"
    );

    drop((ann, bob));
    let database = app.stop().await;
    let app = spawn_app_on(database, &[]).await;
    assert_eq!(
        refused(&app, &code, "name=dan").await.0,
        4407,
        "after a restart"
    );
    let fresh = pass(&app, &code).await;
    let query = format!("name=carol&pass={}", urlencode(&fresh));
    let mut carol = app.join_with(&code, &query).await;
    let mut connection = app.database.connect().await;
    let (stored,): (String,) =
        sqlx::query_as("SELECT password_hash FROM rooms WHERE password_hash IS NOT NULL")
            .fetch_one(&mut connection)
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$") && !stored.contains(PASSWORD));
    carol
        .send(json!({ "type": "set_password", "password": null }))
        .await;
    assert_eq!(carol.expect("error").await["code"], "forbidden", "a member");
    let query = format!("name=ann&pass={}", urlencode(&fresh));
    let mut ann = app.join_with(&code, &query).await;
    ann.send(json!({ "type": "claim", "owner_token": token }))
        .await;
    ann.expect("role").await;

    ann.send(json!({ "type": "set_password", "password": null }))
        .await;

    assert_eq!(ann.expect("room_updated").await["password"], false);
    assert!(app.try_join(&code, "name=dan").await.is_ok());
    let log = app
        .http
        .get(format!("{}/api/rooms/{code}/moderation", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        log.contains("set_password") && log.contains("remove_password"),
        "{log}"
    );
    assert!(!log.contains(PASSWORD));
}

/// Wrong passwords are throttled per address: the sixth rapid attempt gets 429 and Retry-After,
/// and the right password then waits too; the endpoint takes JSON only, and a missing room is 404.
#[actix_web::test]
async fn guessing_a_rooms_password_is_throttled() {
    let app = spawn_app().await;
    let (code, _, mut ann) = room_with_owner(&app).await;
    ann.send(json!({ "type": "set_password", "password": PASSWORD }))
        .await;
    ann.expect("room_updated").await;
    for attempt in 0..5 {
        assert_eq!(
            ask_pass(&app, &code, &format!("guess {attempt}")).await.0,
            401
        );
    }
    let response = app
        .post_json(
            &format!("/api/rooms/{code}/pass"),
            &json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));

    let plain = app
        .http
        .post(format!("{}/api/rooms/{code}/pass", app.address))
        .header("content-type", "text/plain")
        .body(format!("{{\"password\":\"{PASSWORD}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 415);
    assert_eq!(ask_pass(&app, "NOSUCH", PASSWORD).await.0, 404);
}
