//! Chatting: messages, joins, leaves, renames and typing reach the right people in order.

use serde_json::json;

use crate::helpers::spawn_app;

/// Two people in one room see each other's messages, with server-assigned identity and seq.
#[actix_web::test]
async fn two_clients_chat_both_ways() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;

    ann.send(json!({ "type": "message", "text": "hi bob", "ref": "a-1" }))
        .await;
    let to_bob = bob.expect("message").await;
    let to_ann = ann.expect("message").await;
    bob.say("hi ann").await;
    let reply = ann.expect("message").await;

    assert_eq!(to_bob, to_ann, "every recipient gets the same frame");
    assert_eq!(to_bob["text"], "hi bob");
    assert_eq!(to_bob["room"], code);
    assert_eq!(to_bob["ref"], "a-1");
    assert_eq!(to_bob["from"], json!({ "id": ann.id(), "name": "ann" }));
    assert_eq!(to_bob["seq"], 1);
    assert!(uuid::Uuid::parse_str(to_bob["id"].as_str().unwrap()).is_ok());
    let ts = to_bob["ts"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z') && ts.len() == 24,
        "{ts}"
    );
    assert_eq!(reply["seq"], 2);
    assert!(
        reply.get("ref").is_none(),
        "no ref unless the sender gave one: {reply}"
    );
    assert_eq!(reply["from"]["name"], "bob");
}

/// The welcome describes the room as it is; the newcomer's arrival goes to everyone else.
#[actix_web::test]
async fn joining_welcomes_the_newcomer_and_tells_the_others() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut bob = app.join(&code.to_lowercase(), "bob").await;

    let welcome = &bob.welcome;
    assert_eq!(welcome["room"], code);
    assert_eq!(welcome["you"]["name"], "bob");
    assert!(welcome["resume"].as_str().is_some_and(|s| s.len() >= 32));
    let names: Vec<_> = welcome["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].clone())
        .collect();
    assert_eq!(names, ["ann", "bob"]);
    assert_eq!(welcome["history"], json!([]));

    let joined = ann.expect("joined").await;
    assert_eq!(
        joined["user"],
        json!({ "id": welcome["you"]["id"], "name": "bob" })
    );
    assert_eq!(welcome["you"]["role"], "member");
    assert!(joined["ts"].is_string());
    bob.expect_nothing_before(&mut ann).await;
}

/// Presence may wait a moment to travel with other arrivals, but never behind what follows it: a
/// newcomer's first words reach the others after its `joined`, and a burst of arrivals reaches
/// them in the order the room took them.
#[actix_web::test]
async fn arrivals_are_heard_in_order_and_before_what_the_newcomers_say() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;

    let mut arrivals = Vec::new();
    for name in ["bob", "cy", "di"] {
        arrivals.push(app.join(&code, name).await);
    }
    arrivals[2].say("hello from di").await;

    for name in ["bob", "cy", "di"] {
        assert_eq!(ann.expect("joined").await["user"]["name"], name);
    }
    assert_eq!(ann.expect("message").await["text"], "hello from di");
    for (n, newcomer) in arrivals.iter_mut().enumerate().take(2) {
        for later in ["cy", "di"].iter().skip(n) {
            assert_eq!(newcomer.expect("joined").await["user"]["name"], *later);
        }
        assert_eq!(newcomer.expect("message").await["text"], "hello from di");
    }
}

/// A closed connection is announced as `left` to those who remain.
#[actix_web::test]
async fn leaving_is_announced_to_the_others() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;
    let bob_id = bob.id().to_owned();

    bob.socket.close(None).await.unwrap();
    let left = ann.expect("left").await;

    assert_eq!(left["user"], json!({ "id": bob_id, "name": "bob" }));
    let room: serde_json::Value = app
        .get(&format!("/api/rooms/{code}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(room["members"].as_array().unwrap().len(), 1);
}

/// A rename keeps the id, reaches everyone including the renamer, and frees the old name.
#[actix_web::test]
async fn renaming_is_announced_to_everyone() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;

    bob.send(json!({ "type": "rename", "name": "  Robert " }))
        .await;
    let seen_by_ann = ann.expect("renamed").await;
    let seen_by_bob = bob.expect("renamed").await;

    assert_eq!(seen_by_ann, seen_by_bob);
    assert_eq!(
        seen_by_ann["user"],
        json!({ "id": bob.id(), "name": "Robert" })
    );
    assert_eq!(seen_by_ann["old_name"], "bob");
    bob.say("now as Robert").await;
    assert_eq!(ann.expect("message").await["from"]["name"], "Robert");
    app.join(&code, "bob").await; // the old name is free again
}

/// Renaming to a name someone else holds is refused to the renamer alone.
#[actix_web::test]
async fn renaming_to_a_taken_name_is_refused() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;

    bob.send(json!({ "type": "rename", "name": "ANN" })).await;
    let error = bob.expect("error").await;
    bob.send(json!({ "type": "rename", "name": "" })).await;
    let invalid = bob.expect("error").await;

    assert_eq!(error["code"], "name_taken");
    assert_eq!(invalid["code"], "invalid_name");
    ann.expect_nothing_before(&mut bob).await;
}

/// Typing reaches the others but not the typist, and repeats within two seconds are dropped.
#[actix_web::test]
async fn typing_goes_to_the_others_and_is_throttled() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;

    for _ in 0..5 {
        bob.send(json!({ "type": "typing" })).await;
    }
    bob.say("done typing").await;

    let typing = ann.expect("typing").await;
    assert_eq!(typing["user"], json!({ "id": bob.id(), "name": "bob" }));
    ann.expect("message").await; // no second typing frame before the message
    assert_eq!(
        bob.next().await["type"],
        "message",
        "the typist hears no typing"
    );
}

/// Seqs are strictly increasing in the order every member receives them, across senders.
#[actix_web::test]
async fn seqs_increase_strictly_across_senders() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;

    for i in 0..10 {
        ann.say(&format!("a{i}")).await;
        bob.say(&format!("b{i}")).await;
    }
    let mut seen = Vec::new();
    for _ in 0..20 {
        seen.push(ann.expect("message").await["seq"].as_u64().unwrap());
    }

    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
}

/// A newcomer gets the most recent 50 messages, oldest first.
#[actix_web::test]
async fn history_on_join_holds_the_latest_fifty() {
    let app = spawn_app_quick().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    for i in 1..=60 {
        ann.say(&format!("m{i}")).await;
    }
    for _ in 0..60 {
        ann.expect("message").await;
    }

    let bob = app.join(&code, "bob").await;

    let history = bob.welcome["history"].as_array().unwrap();
    let seqs: Vec<u64> = history.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (11..=60).collect::<Vec<_>>());
    assert_eq!(history[49]["text"], "m60");
    assert_eq!(bob.welcome["truncated"], false);
}

/// Identity fields a client puts in its frame are ignored: the server says who sent what.
#[actix_web::test]
async fn forged_identity_fields_are_ignored() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;

    ann.send(json!({
        "type": "message", "text": "hello",
        "from": { "id": "00000000-0000-0000-0000-000000000000", "name": "admin" },
        "id": "forged", "seq": 999, "ts": "1999-01-01T00:00:00.000Z"
    }))
    .await;
    let message = ann.expect("message").await;

    assert_eq!(message["from"]["name"], "ann");
    assert_eq!(message["from"]["id"], ann.id());
    assert_eq!(message["seq"], 1);
    assert_ne!(message["id"], "forged");
    assert_ne!(message["ts"], "1999-01-01T00:00:00.000Z");
}

/// A server whose flood limit will not get in the way of tests that send many messages.
async fn spawn_app_quick() -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(&["--rate-limit", "1000", "--rate-burst", "1000"]).await
}

/// An author edits a recent message: everyone hears `edited`, replay and the API show the new
/// text and when it was edited, even after a restart; nobody else may edit it.
#[actix_web::test]
async fn an_author_edits_a_message_and_everyone_sees_the_new_text() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;
    ann.say("helo").await;
    let seq = ann.expect("message").await["seq"].as_u64().unwrap();
    bob.expect("message").await;

    bob.send(json!({ "type": "edit", "seq": seq, "text": "hijacked" }))
        .await;
    assert_eq!(bob.expect("error").await["code"], "forbidden");
    ann.send(json!({ "type": "edit", "seq": seq + 7, "text": "hello" }))
        .await;
    assert_eq!(ann.expect("error").await["code"], "bad_request");
    ann.send(json!({ "type": "edit", "seq": seq, "text": "hello" }))
        .await;

    let edited = bob.expect("edited").await;
    assert_eq!(
        (edited["seq"].as_u64(), edited["text"].as_str()),
        (Some(seq), Some("hello"))
    );
    assert!(edited["edited_at"].is_string());
    ann.expect("edited").await;
    let late = app.join(&code, "carol").await;
    assert_eq!(late.welcome["history"][0]["text"], "hello");
    assert!(late.welcome["history"][0]["edited_at"].is_string());
    drop((ann, bob, late));
    let database = app.stop().await;
    let app = crate::helpers::spawn_app_on(database, &[]).await;
    let stored: serde_json::Value = app
        .get(&format!("/api/rooms/{code}/messages"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["messages"][0]["text"], "hello");
    assert_eq!(stored["messages"][0]["edited_at"], edited["edited_at"]);
}
