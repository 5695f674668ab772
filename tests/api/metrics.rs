//! `GET /metrics`: Prometheus text whose counters move as people chat.
//!
//! The process has one metrics recorder shared by every test's server, so tests compare before and
//! after and expect at least their own share.

use serde_json::json;

use crate::helpers::{spawn_app, TestApp};

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    response.text().await.unwrap()
}

/// The value of a sample, named with its labels exactly as exposed; 0 if it is not there yet.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(|value| value.trim().parse().expect("a numeric sample"))
        .next()
        .unwrap_or(0.0)
}

#[actix_web::test]
async fn metrics_are_prometheus_text() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let _ann = app.join(&code, "ann").await;

    let text = scrape(&app).await;

    for line in text
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
    {
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line}"));
        assert!(
            name.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_'),
            "{line}"
        );
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    assert!(
        text.contains("# TYPE hubbub_connections_open gauge"),
        "{text}"
    );
}

#[actix_web::test]
async fn counters_move_as_people_chat() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;
    let before = scrape(&app).await;

    for text in ["one", "two", "three"] {
        ann.say(text).await;
        bob.expect("message").await;
    }
    ann.send(json!({ "type": "shout" })).await;
    ann.expect("message").await;
    ann.expect("message").await;
    ann.expect("message").await;
    ann.expect("error").await;
    drop(bob);
    ann.expect("left").await;
    let after = scrape(&app).await;

    let grew = |name: &str| sample(&after, name) - sample(&before, name);
    assert!(grew("hubbub_messages_received_total") >= 3.0);
    assert!(
        grew("hubbub_messages_delivered_total") >= 6.0,
        "three messages to two members"
    );
    assert!(grew("hubbub_frames_refused_total{code=\"unknown_type\"}") >= 1.0);
    assert!(grew("hubbub_disconnects_total{reason=\"client\"}") >= 1.0);
    assert!(sample(&after, "hubbub_connections_open") >= 1.0);
    assert!(
        sample(&after, "hubbub_storage_write_seconds_count") >= 1.0,
        "storage writes are timed"
    );
}
