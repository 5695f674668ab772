//! Durability: rooms and messages survive restarts, replay from storage, page backward, expire, and
//! a failing database never stops a room.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    eventually, spawn_app, spawn_app_on, spawn_app_with, try_join_at, Binary, TestApp,
    TestDatabase, PATIENCE,
};

async fn history_texts(app: &TestApp, code: &str, query: &str) -> Vec<String> {
    let page: Value = app
        .get(&format!("/api/rooms/{code}/messages{query}"))
        .await
        .json()
        .await
        .unwrap();
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Everything acknowledged before a clean stop is there after a restart, and seqs carry on.
#[actix_web::test]
async fn a_restart_keeps_rooms_history_and_seqs() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    for text in ["one", "two", "three"] {
        ann.say(text).await;
        ann.expect("message").await;
    }
    let secret = ann.resume_secret().to_owned();
    drop(ann);

    let app = spawn_app_on(app.stop().await, &[]).await;
    let mut bob = app.join(&code, "bob").await;
    bob.say("four").await;

    let history: Vec<_> = bob.welcome["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(history, ["one", "two", "three"]);
    assert_eq!(
        bob.expect("message").await["seq"],
        4,
        "seqs continue where they stopped"
    );
    let back = app
        .join_with(&code, &format!("name=ann&resume={secret}&since=2"))
        .await;
    let missed: Vec<_> = back.welcome["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].clone())
        .collect();
    assert_eq!(
        missed,
        [json!(3), json!(4)],
        "exactly what was missed, across the restart"
    );
    assert_eq!(back.welcome["truncated"], false);
}

/// A room created and left unused is still there after a restart, within the retention period.
#[actix_web::test]
async fn an_empty_room_survives_a_restart() {
    let app = spawn_app().await;
    let code = app.create_room().await;

    let app = spawn_app_on(app.stop().await, &[]).await;

    assert_eq!(app.get(&format!("/api/rooms/{code}")).await.status(), 200);
    assert_eq!(
        app.post_json("/api/rooms", &json!({ "code": code }))
            .await
            .status(),
        409
    );
}

#[actix_web::test]
async fn history_pages_backward_with_before() {
    let app = spawn_app_with(&[
        "--rate-limit",
        "1000",
        "--rate-burst",
        "1000",
        "--history-size",
        "5",
    ])
    .await;
    let code = app.create_room().await;
    for i in 1..=30 {
        let body = json!({ "name": "bot", "text": format!("m{i}") });
        app.post_json(&format!("/api/rooms/{code}/messages"), &body)
            .await;
    }

    assert_eq!(
        history_texts(&app, &code, "?before=11&limit=3").await,
        ["m8", "m9", "m10"]
    );
    assert_eq!(history_texts(&app, &code, "?before=3").await, ["m1", "m2"]);
    assert_eq!(
        history_texts(&app, &code, "?after=26").await,
        ["m27", "m28", "m29", "m30"]
    );
    assert_eq!(
        history_texts(&app, &code, "?after=4&before=8").await,
        ["m5", "m6", "m7"]
    );
}

/// Rooms unused for the retention period are deleted with their messages; used ones are kept.
#[actix_web::test]
async fn rooms_past_retention_are_deleted() {
    let app = spawn_app_with(&["--retention", "1s", "--room-idle-timeout", "100ms"]).await;
    let unused = app.create_room().await;
    let used = app.create_room().await;
    let _ann = app.join(&used, "ann").await;

    eventually("the unused room is swept", || async {
        let status = app.get(&format!("/api/rooms/{unused}")).await.status();
        (status == 404).then_some(())
    })
    .await;

    assert_eq!(
        app.get(&format!("/api/rooms/{used}")).await.status(),
        200,
        "a live room is never swept"
    );
}

/// While the database refuses writes the room keeps delivering and /healthz says degraded; once it
/// is back, everything held is written and nothing was lost.
#[actix_web::test]
async fn a_failing_database_degrades_but_never_stops_the_room() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;
    ann.say("before").await;
    bob.expect("message").await;
    wait_until_stored(&app, 1).await;

    let outage = app.database.block_writes().await;
    for text in ["during one", "during two"] {
        ann.say(text).await;
        assert_eq!(
            bob.expect("message").await["text"],
            text,
            "live delivery goes on"
        );
    }
    let degraded = wait_for_health(&app, "degraded").await;
    assert_eq!(
        app.get("/readyz").await.status(),
        503,
        "not ready while writes fail"
    );
    assert!(
        degraded["storage"]["pending"].as_u64().unwrap() >= 2,
        "{degraded}"
    );
    assert!(degraded["storage"]["error"].is_string(), "{degraded}");
    outage.end().await;

    wait_for_health(&app, "ok").await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    drop((ann, bob));
    let app = spawn_app_on(app.stop().await, &[]).await;
    assert_eq!(
        history_texts(&app, &code, "").await,
        ["before", "during one", "during two"]
    );
}

/// Past the storage buffer during an outage, the oldest unwritten messages are dropped and counted;
/// the newest are stored once the database is back, and a replay over the hole says `truncated`.
#[actix_web::test]
async fn an_overflowing_storage_buffer_drops_the_oldest_and_says_so() {
    let app = spawn_app_with(&["--storage-buffer", "3"]).await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    ann.say("stored").await;
    ann.expect("message").await;
    wait_until_stored(&app, 1).await;

    let outage = app.database.block_writes().await;
    for i in 1..=6 {
        ann.say(&format!("during {i}")).await;
        ann.expect("message").await;
    }
    let full = |storage: &Value| storage["status"] == "degraded" && storage["dropped"] == 3;
    wait_for_storage(&app, "three dropped", full).await;
    outage.end().await;
    wait_until_stored(&app, 4).await;
    drop(ann);

    // After a restart only storage remains: the room's memory had kept the dropped ones.
    let app = spawn_app_on(app.stop().await, &[]).await;
    let stored = history_texts(&app, &code, "").await;
    assert_eq!(
        stored,
        ["stored", "during 4", "during 5", "during 6"],
        "the three oldest unwritten were dropped"
    );
    let replay = app.join_with(&code, "name=bob&since=1").await;
    assert_eq!(
        replay.welcome["truncated"], true,
        "the hole is announced, not hidden"
    );
}

/// In a room whose messages disappear, an expired message leaves open clients, history, newcomers'
/// welcomes and storage (a restart does not bring it back).
#[actix_web::test]
async fn disappearing_messages_vanish_everywhere() {
    let app = spawn_app().await;
    let created = app
        .post_json("/api/rooms", &json!({ "expire_after_seconds": 1 }))
        .await;
    assert_eq!(created.status(), 201);
    let code = created.json::<Value>().await.unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ann = app.join(&code, "ann").await;
    ann.say("gone soon").await;
    let seq = ann.expect("message").await["seq"].clone();

    let expired = ann.expect("expired").await;

    assert_eq!(ann.welcome["expire_after_seconds"], 1);
    assert_eq!(expired["through_seq"], seq);
    assert!(history_texts(&app, &code, "").await.is_empty());
    assert_eq!(app.join(&code, "bob").await.welcome["history"], json!([]));
    let room: Value = app
        .get(&format!("/api/rooms/{code}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(room["expire_after_seconds"], 1);
    drop(ann);
    let app = spawn_app_on(app.stop().await, &[]).await;
    assert!(
        history_texts(&app, &code, "").await.is_empty(),
        "deleted from storage too"
    );
}

#[actix_web::test]
async fn a_lifetime_outside_a_second_to_a_year_is_refused() {
    let app = spawn_app().await;

    for seconds in [json!(0), json!(400 * 86_400), json!(-5), json!("1h")] {
        let response = app
            .post_json("/api/rooms", &json!({ "expire_after_seconds": seconds }))
            .await;
        assert_eq!(response.status(), 400, "{seconds}");
    }
}

async fn wait_for_health(app: &TestApp, status: &str) -> Value {
    wait_for_storage(app, &format!("status {status}"), |storage| {
        storage["status"] == status
    })
    .await
}

/// Reading a room is no use of it: a script polling it does not keep it from the retention sweep.
/// (Reads used to load the room into memory for the idle timeout, and live rooms are never swept.)
#[actix_web::test]
async fn polling_a_room_does_not_keep_it_past_retention() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let database = app.stop().await;
    // Restarted with the room in storage only, and the default idle timeout of 30 minutes.
    let app = spawn_app_on(database, &["--retention", "2s"]).await;

    eventually("the polled room is swept", || async {
        let described = app.get(&format!("/api/rooms/{code}")).await.status();
        let read = app
            .get(&format!("/api/rooms/{code}/messages"))
            .await
            .status();
        // The sweep may fall between the two reads, but a swept room never comes back.
        assert!(
            !(described == 404 && read != 404),
            "a read brought the swept room back: {described} then {read}"
        );
        (read == 404).then_some(())
    })
    .await;

    let described = app.get(&format!("/api/rooms/{code}")).await.status();
    assert_eq!(described, 404, "the swept room is gone for every read");
}

/// Polls /healthz until its storage report satisfies `condition`, and returns the whole report.
async fn wait_for_storage(app: &TestApp, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE * 2;
    loop {
        let health: Value = app.get("/healthz").await.json().await.unwrap();
        if condition(&health["storage"]) {
            return health;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "storage never reached {what}: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the database itself holds `count` messages.
async fn wait_until_stored(app: &TestApp, count: i64) {
    let deadline = tokio::time::Instant::now() + PATIENCE * 2;
    while app.database.stored_messages().await != count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the database never held {count} messages"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Generous flood limits for a test that posts quickly, and a short grace whose bound it checks.
const SIGTERM_FLAGS: [&str; 6] = [
    "--rate-limit",
    "1000",
    "--rate-burst",
    "1000",
    "--shutdown-grace",
    "3s",
];

/// The real binary, stopped with SIGTERM, tells its clients 1012 and flushes before it exits with 0;
/// started again, it has everything.
#[actix_web::test]
async fn the_binary_flushes_on_sigterm() {
    let database = TestDatabase::new().await;
    let server = Binary::start(&database, &SIGTERM_FLAGS, Stdio::inherit()).await;
    let created = server.call(reqwest::Method::POST, "/api/rooms", None).await;
    let code = created["code"].as_str().unwrap();
    for i in 1..=20 {
        let body = json!({ "name": "bot", "text": format!("m{i}") });
        server
            .call(
                reqwest::Method::POST,
                &format!("/api/rooms/{code}/messages"),
                Some(body),
            )
            .await;
    }

    let ws = server.url.replacen("http", "ws", 1);
    let (mut listener, _) =
        tokio_tungstenite::connect_async(format!("{ws}/ws/{code}?name=listener"))
            .await
            .unwrap();
    crate::helpers::next_json(&mut listener).await;

    let terminated = std::time::Instant::now();
    let status = server.terminate().status;
    let stopped_within = terminated.elapsed();
    let (close, reason) = crate::helpers::expect_close(&mut listener).await;
    let again = Binary::start(&database, &SIGTERM_FLAGS, Stdio::inherit()).await;
    let page = again
        .call(
            reqwest::Method::GET,
            &format!("/api/rooms/{code}/messages"),
            None,
        )
        .await;
    again.terminate();

    assert!(status.success(), "exit status {status}");
    // A correctness bound, not a speed target: the documented grace (--shutdown-grace 3s here).
    assert!(
        stopped_within < Duration::from_secs(3),
        "exited after {stopped_within:?}"
    );
    assert_eq!(
        (close, reason.as_str()),
        (1012, "service restart"),
        "connected clients are told to come back"
    );
    assert_eq!(page["messages"].as_array().unwrap().len(), 20);
}

/// A server killed (SIGKILL) while a delivered message waits to be stored: started again, the room
/// numbers past every seq the lost messages could have had, so a client that saw one and resumes
/// is told its replay is truncated, and no new message reaches it under a seq it already has.
#[actix_web::test]
async fn after_a_crash_no_seq_a_lost_message_had_is_given_again() {
    let database = TestDatabase::new().await;
    let server = Binary::start(&database, &[], Stdio::null()).await;
    let created = server.call(reqwest::Method::POST, "/api/rooms", None).await;
    let code = created["code"].as_str().unwrap().to_owned();
    let ws = server.url.replacen("http", "ws", 1);
    let mut ann = try_join_at(format!("{ws}/ws/{code}?name=ann"))
        .await
        .unwrap();
    ann.say("kept").await;
    ann.expect("message").await;
    eventually("the first message is stored", || async {
        (database.stored_messages().await == 1).then_some(())
    })
    .await;
    let outage = database.block_writes().await;
    ann.say("lost").await;
    let lost = ann.expect("message").await["seq"].as_u64().unwrap();
    let secret = ann.resume_secret().to_owned();

    drop(server);
    drop(ann);
    outage.end().await;
    let again = Binary::start(&database, &[], Stdio::null()).await;
    let ws = again.url.replacen("http", "ws", 1);
    let mut back = try_join_at(format!(
        "{ws}/ws/{code}?name=ann&resume={secret}&since={lost}"
    ))
    .await
    .unwrap();
    back.say("after").await;
    let after = back.expect("message").await;

    assert_eq!(lost, 2);
    assert_eq!(
        back.welcome["truncated"], true,
        "what was lost is said to be missing: {}",
        back.welcome
    );
    assert!(
        after["seq"].as_u64().unwrap() > lost,
        "a new message under a seq already seen would be taken for the lost one: {after}"
    );
    eventually("kept and after are stored, and nothing else", || async {
        (database.stored_messages().await == 2).then_some(())
    })
    .await;
}

/// A server told to stop closes every connection with 1012 "service restart", so clients come back.
#[actix_web::test]
async fn stopping_tells_every_client_to_reconnect() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;

    let (_, ann_close, bob_close) =
        tokio::join!(app.stop(), ann.expect_close(), bob.expect_close());

    assert_eq!(ann_close, (1012, "service restart".to_owned()));
    assert_eq!(bob_close.0, 1012);
}

#[actix_web::test]
async fn readyz_answers_200_when_storage_answers() {
    let app = spawn_app().await;

    let response = app.get("/readyz").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "ready");
}

/// `hubbub healthcheck` is the container's health check: 0 for a healthy server, 1 for none.
#[actix_web::test]
async fn the_healthcheck_command_reports_the_servers_health() {
    let app = spawn_app().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let check = |port: u16| {
        Command::new(env!("CARGO_BIN_EXE_hubbub"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "healthcheck",
            ])
            .output()
            .expect("the binary runs")
    };

    let healthy = tokio::task::spawn_blocking(move || check(app.port))
        .await
        .unwrap();
    let nobody = tokio::task::spawn_blocking(move || check(closed))
        .await
        .unwrap();

    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    assert_eq!(nobody.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("did not answer"));
}
