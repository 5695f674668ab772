//! Reconnecting with `resume` and `since`: the same identity, every missed message once.

use serde_json::json;

use crate::helpers::{expect_close, spawn_app, spawn_app_with, urlencode};

fn seqs(frame: &serde_json::Value) -> Vec<u64> {
    frame["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

/// After a dropped connection, resuming gives back the identity and exactly the messages missed.
#[actix_web::test]
async fn resume_after_a_drop_has_no_gap_and_no_duplicate() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;
    ann.say("one").await;
    ann.say("two").await;
    ann.expect("message").await;
    ann.expect("message").await;
    bob.expect("message").await;
    let last_seen = bob.expect("message").await["seq"].as_u64().unwrap();
    let (bob_id, secret) = (bob.id().to_owned(), bob.resume_secret().to_owned());

    bob.socket.close(None).await.unwrap();
    ann.expect("left").await;
    for text in ["three", "four", "five"] {
        ann.say(text).await;
    }
    for _ in 0..3 {
        ann.expect("message").await;
    }
    let query = format!("name=bob&resume={secret}&since={last_seen}");
    let bob = app.join_with(&code, &query).await;

    assert_eq!(
        bob.welcome["you"],
        json!({ "id": bob_id, "name": "bob", "role": "member" })
    );
    assert_eq!(bob.welcome["resume"], secret);
    assert_eq!(seqs(&bob.welcome), [3, 4, 5]);
    assert_eq!(bob.welcome["history"][0]["text"], "three");
    assert_eq!(bob.welcome["truncated"], false);
    assert_eq!(ann.expect("joined").await["user"]["id"], bob_id);
}

/// Resuming while the old socket is still open takes it over: the old socket closes, no one sees a leave.
#[actix_web::test]
async fn resume_takes_over_a_live_connection() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut old = app.join(&code, "bob").await;
    ann.expect("joined").await;

    let query = format!("name=bob&resume={}&since=0", old.resume_secret());
    let mut new = app.join_with(&code, &query).await;
    let (close, _) = old.expect_close().await;
    ann.say("still there?").await;

    assert_eq!(close, 4000);
    assert_eq!(new.welcome["you"]["id"], old.id());
    assert_eq!(
        ann.next().await["type"],
        "message",
        "no left or joined for a takeover"
    );
    assert_eq!(new.expect("message").await["text"], "still there?");
    let room: serde_json::Value = app
        .get(&format!("/api/rooms/{code}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(room["members"].as_array().unwrap().len(), 2);
}

/// An unknown secret (say, from before the room was recreated) is a fresh join, not an error.
#[actix_web::test]
async fn an_unknown_resume_secret_joins_afresh() {
    let app = spawn_app().await;
    let code = app.create_room().await;

    let client = app
        .join_with(&code, "name=ann&resume=not-a-real-secret")
        .await;

    assert_ne!(client.resume_secret(), "not-a-real-secret");
    assert_eq!(client.welcome["you"]["name"], "ann");
}

/// A resumed identity returns under its own name, even if the reconnecting page asks for another.
#[actix_web::test]
async fn resume_keeps_the_identitys_name() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    ann.send(json!({ "type": "rename", "name": "Annie" })).await;
    ann.expect("renamed").await;
    let secret = ann.resume_secret().to_owned();
    ann.socket.close(None).await.unwrap();
    app.wait_until_empty(&code).await;

    let back = app
        .join_with(&code, &format!("name={}&resume={secret}", urlencode("ann")))
        .await;

    assert_eq!(back.welcome["you"]["name"], "Annie");
}

/// A resume reaching back past the messages held in memory is replayed from storage, without a gap.
#[actix_web::test]
async fn resume_past_memory_replays_from_storage() {
    let app = crate::helpers::spawn_app_with(&["--history-size", "3"]).await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    for i in 1..=6 {
        ann.say(&format!("m{i}")).await;
        ann.expect("message").await;
    }

    let bob = app.join_with(&code, "name=bob&since=1").await;

    assert_eq!(seqs(&bob.welcome), [2, 3, 4, 5, 6]);
    assert_eq!(bob.welcome["truncated"], false);
}

/// Past the replay bound (1,000 messages) the welcome holds the newest 1,000 and says the rest are missing.
#[actix_web::test]
async fn resume_past_the_replay_bound_says_truncated() {
    let app =
        crate::helpers::spawn_app_with(&["--rate-limit", "100000", "--rate-burst", "100000"]).await;
    let code = app.create_room().await;
    for i in 1..=1_005 {
        let body = json!({ "name": "bot", "text": format!("m{i}") });
        assert_eq!(
            app.post_json(&format!("/api/rooms/{code}/messages"), &body)
                .await
                .status(),
            201
        );
    }

    let bob = app.join_with(&code, "name=bob&since=1").await;

    let replayed = seqs(&bob.welcome);
    assert_eq!(replayed.len(), 1_000);
    assert_eq!((replayed[0], replayed[999]), (6, 1_005));
    assert_eq!(bob.welcome["truncated"], true);
}

/// A return refused because the room is full does not spend the identity: once there is room, the
/// same secret brings back the same person.
#[actix_web::test]
async fn a_return_refused_by_a_full_room_can_resume_later() {
    let app = spawn_app_with(&["--max-members-per-room", "2"]).await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let (id, secret) = (ann.id().to_owned(), ann.resume_secret().to_owned());
    ann.socket.close(None).await.unwrap();
    app.wait_until_empty(&code).await;
    let _bob = app.join(&code, "bob").await;
    let carol = app.join(&code, "carol").await;

    let mut refused = app
        .open(&format!("/ws/{code}?name=ann&resume={secret}"))
        .await;
    let (close, _) = expect_close(&mut refused).await;
    drop(carol);
    app.wait_for_members(&code, 1).await;
    let back = app
        .join_with(&code, &format!("name=ann&resume={secret}"))
        .await;

    assert_eq!(close, 4413);
    assert_eq!(back.welcome["you"]["id"], id.as_str(), "the same person");
}

/// Likewise a return refused because someone else took the name meanwhile.
#[actix_web::test]
async fn a_return_refused_for_a_taken_name_can_resume_later() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let (id, secret) = (ann.id().to_owned(), ann.resume_secret().to_owned());
    ann.socket.close(None).await.unwrap();
    app.wait_until_empty(&code).await;
    let impostor = app.join(&code, "ANN").await;

    let mut refused = app
        .open(&format!("/ws/{code}?name=ann&resume={secret}"))
        .await;
    let (close, _) = expect_close(&mut refused).await;
    drop(impostor);
    app.wait_until_empty(&code).await;
    let back = app
        .join_with(&code, &format!("name=ann&resume={secret}"))
        .await;

    assert_eq!(close, 4409);
    assert_eq!(back.welcome["you"]["id"], id.as_str());
    assert_eq!(back.welcome["you"]["name"], "ann");
}
