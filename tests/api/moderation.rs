//! Room owners: the owner token a new room hands out once, claiming it, kicking, locking, and the
//! moderation log only the owner reads.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_on, spawn_app_with, Client, TestApp};

/// A new room: its code and its owner token.
async fn owned_room(app: &TestApp) -> (String, String) {
    let response = app.post_json("/api/rooms", &json!({})).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let token = body["owner_token"]
        .as_str()
        .expect("an owner token")
        .to_owned();
    (body["code"].as_str().unwrap().to_owned(), token)
}

/// Joins as `name` and claims the room with `token`; everyone there hears the new owner.
async fn owner(app: &TestApp, code: &str, name: &str, token: &str) -> Client {
    let mut owner = app.join(code, name).await;
    owner
        .send(json!({ "type": "claim", "owner_token": token }))
        .await;
    let role = owner.expect("role").await;
    assert_eq!(
        (role["user"]["name"].as_str(), role["role"].as_str()),
        (Some(name), Some("owner"))
    );
    owner
}

/// The owner token is handed out once, kept only as a digest, and claiming it makes an owner
/// whom everyone, and every later welcome, knows as such.
#[actix_web::test]
async fn the_owner_token_is_given_once_and_makes_its_holder_owner() {
    let app = spawn_app().await;
    let (code, token) = owned_room(&app).await;
    assert_eq!(token.len(), 64);
    let described = app
        .get(&format!("/api/rooms/{code}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!described.contains(&token));
    let mut connection = app.database.connect().await;
    let (stored,): (String,) = sqlx::query_as("SELECT owner_token_digest FROM rooms")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_ne!(stored, token);

    let mut bob = app.join(&code, "bob").await;
    let ann = owner(&app, &code, "ann", &token).await;

    bob.expect("joined").await;
    let role = bob.expect("role").await;
    assert_eq!(role["user"]["id"], ann.welcome["you"]["id"]);
    let carol = app.join(&code, "carol").await;
    assert_eq!(carol.welcome["you"]["role"], "member");
    assert_eq!(
        carol.welcome["roles"],
        json!([{ "id": ann.id(), "role": "owner" }])
    );
    assert_eq!(carol.welcome["locked"], false);
}

/// A wrong token, a token of another room and one of the wrong shape are refused alike, never
/// echoed; claims are throttled.
#[actix_web::test]
async fn a_wrong_or_foreign_owner_token_is_refused_and_never_echoed() {
    let app = spawn_app().await;
    let (code, _) = owned_room(&app).await;
    let (_, foreign) = owned_room(&app).await;
    let mut eve = app.join(&code, "eve").await;

    for token in [foreign.as_str(), &"0".repeat(64), "short", ""] {
        eve.send(json!({ "type": "claim", "owner_token": token }))
            .await;
        let error = eve.expect("error").await;
        assert_eq!(error["code"], "forbidden", "{token}");
        if !token.is_empty() {
            assert!(!error.to_string().contains(token));
        }
    }
    eve.send(json!({ "type": "claim", "owner_token": foreign }))
        .await;
    assert_eq!(eve.expect("error").await["code"], "forbidden");
    eve.send(json!({ "type": "claim", "owner_token": foreign }))
        .await;
    assert_eq!(
        eve.expect("error").await["code"],
        "rate_limited",
        "the sixth claim at once"
    );
    let room: Value = app
        .get(&format!("/api/rooms/{code}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(room["members"].as_array().unwrap().len(), 1);
}

/// The owner kicks a guest: everyone hears `moderated`, the guest is closed with 4403 and cannot
/// come back as that identity until the kick ends.
#[actix_web::test]
async fn an_owner_kicks_a_guest_who_cannot_come_back() {
    let app = spawn_app().await;
    let (code, token) = owned_room(&app).await;
    let mut ann = owner(&app, &code, "ann", &token).await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;

    ann.send(json!({ "type": "kick", "user_id": bob.id(), "reason": "spam" }))
        .await;

    let told = bob.expect("moderated").await;
    assert_eq!(told["action"], "kick");
    assert_eq!(told["reason"], "spam");
    assert_eq!(told["by"]["name"], "ann");
    let (close, reason) = bob.expect_close().await;
    assert_eq!(close, 4403);
    assert!(reason.contains("ann sent you out"), "{reason}");
    assert_eq!(ann.expect("moderated").await["user"]["name"], "bob");
    assert_eq!(ann.expect("left").await["user"]["name"], "bob");
    let query = format!("name=bob&resume={}", bob.resume_secret());
    let (close, _) = app.try_join(&code, &query).await.err().expect("refused");
    assert_eq!(close, 4403);
}

/// Nobody acts above their rank: a member cannot kick or lock, and nothing changes.
#[actix_web::test]
async fn a_member_cannot_kick_the_owner_or_lock_the_room() {
    let app = spawn_app().await;
    let (code, token) = owned_room(&app).await;
    let mut ann = owner(&app, &code, "ann", &token).await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;

    bob.send(json!({ "type": "kick", "user_id": ann.id() }))
        .await;
    assert_eq!(bob.expect("error").await["code"], "forbidden");
    bob.send(json!({ "type": "lock" })).await;
    assert_eq!(bob.expect("error").await["code"], "forbidden");
    bob.send(json!({ "type": "kick", "user_id": "not a uuid" }))
        .await;
    assert_eq!(bob.expect("error").await["code"], "bad_request");

    ann.expect_nothing_before(&mut bob).await;
    let carol = app.join(&code, "carol").await;
    assert_eq!(carol.welcome["locked"], false);
}

/// A locked room refuses newcomers with 4423, lets people back in, and stays locked across a restart.
#[actix_web::test]
async fn a_locked_room_refuses_newcomers_even_after_a_restart() {
    let app = spawn_app().await;
    let (code, token) = owned_room(&app).await;
    let mut ann = owner(&app, &code, "ann", &token).await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;

    ann.send(json!({ "type": "lock" })).await;

    assert_eq!(bob.expect("room_updated").await["locked"], true);
    assert_eq!(ann.expect("room_updated").await["locked"], true);
    let (close, reason) = app
        .try_join(&code, "name=dave")
        .await
        .err()
        .expect("refused");
    assert_eq!(
        (close, reason.as_str()),
        (4423, "this room is locked: nobody new may join")
    );
    let secret = bob.resume_secret().to_owned();
    drop(bob);
    ann.expect("left").await;
    let back = app
        .join_with(&code, &format!("name=bob&resume={secret}"))
        .await;
    assert_eq!(back.welcome["locked"], true);

    drop((ann, back));
    let database = app.stop().await;
    let app = spawn_app_on(database, &[]).await;
    let (close, _) = app
        .try_join(&code, "name=dave")
        .await
        .err()
        .expect("refused");
    assert_eq!(close, 4423);
}

/// A signed-in creator owns the room by account, with no token to claim, on every device.
#[actix_web::test]
async fn a_signed_in_creator_owns_the_room_by_account() {
    let app = spawn_app().await;
    let cookie = app.signed_up("ann").await;
    let created = app
        .account_call(
            Method::POST,
            "/api/rooms",
            Some(json!({})),
            &[("cookie", &cookie)],
        )
        .await;
    let code = created.json::<Value>().await.unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();

    let ann = app.join_signed_in(&code, &cookie).await;

    assert_eq!(ann.welcome["you"]["role"], "owner");
    let log = app
        .account_call(
            Method::GET,
            &format!("/api/rooms/{code}/moderation"),
            None,
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(log.status(), 200);
}

/// The moderation log says who did what to whom and why; only the owner reads it.
#[actix_web::test]
async fn the_moderation_log_is_the_owners_to_read() {
    let app = spawn_app().await;
    let (code, token) = owned_room(&app).await;
    let mut ann = owner(&app, &code, "ann", &token).await;
    let bob = app.join(&code, "bob").await;
    ann.expect("joined").await;
    ann.send(json!({ "type": "kick", "user_id": bob.id(), "reason": "spam" }))
        .await;
    ann.expect("moderated").await;
    let path = format!("/api/rooms/{code}/moderation");
    let read = |token: String| {
        let (app, path) = (&app, path.clone());
        async move {
            let authorization = format!("Bearer {token}");
            app.account_call(
                Method::GET,
                &path,
                None,
                &[("authorization", &authorization)],
            )
            .await
        }
    };

    let entries: Value = crate::helpers::eventually("the kick is logged", || async {
        let log: Value = read(token.clone()).await.json().await.ok()?;
        (log["entries"].as_array()?.len() == 2).then_some(log)
    })
    .await;

    let kick = &entries["entries"][1];
    assert_eq!(kick["action"], "kick");
    assert_eq!(kick["actor"]["name"], "ann");
    assert_eq!(kick["target"]["name"], "bob");
    assert_eq!(kick["reason"], "spam");
    assert_eq!(entries["entries"][0]["action"], "claim_owner");
    assert_eq!(read("0".repeat(64)).await.status(), 403);
    assert_eq!(app.get(&path).await.status(), 403);
    let stranger = app.signed_up("mallory").await;
    let as_stranger = app
        .account_call(Method::GET, &path, None, &[("cookie", &stranger)])
        .await;
    assert_eq!(as_stranger.status(), 403);
}

/// A muted member's messages are refused with `muted` and reach nobody, across a restart (a
/// signed-in member keeps their id), until they are unmuted.
#[actix_web::test]
async fn a_muted_member_is_refused_until_unmuted() {
    let app = spawn_app().await;
    let (code, token) = owned_room(&app).await;
    let bob_cookie = app.signed_up("bob").await;
    let mut ann = owner(&app, &code, "ann", &token).await;
    let mut bob = app.join_signed_in(&code, &bob_cookie).await;
    let mut carol = app.join(&code, "carol").await;
    ann.expect("joined").await;
    ann.expect("joined").await;
    bob.expect("joined").await;

    ann.send(json!({ "type": "mute", "user_id": bob.id() }))
        .await;
    assert_eq!(bob.expect("moderated").await["action"], "mute");
    assert_eq!(ann.expect("moderated").await["action"], "mute");
    carol.expect("moderated").await;
    bob.send(json!({ "type": "message", "text": "still here?", "ref": "b-1" }))
        .await;

    let refused = bob.expect("error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["ref"].as_str()),
        (Some("muted"), Some("b-1"))
    );
    ann.expect_nothing_before(&mut carol).await;
    drop((ann, bob, carol));
    let database = app.stop().await;
    let app = spawn_app_on(database, &[]).await;
    let mut bob = app.join_signed_in(&code, &bob_cookie).await;
    bob.say("after the restart").await;
    assert_eq!(
        bob.expect("error").await["code"],
        "muted",
        "the mute was stored"
    );
    let mut ann = owner(&app, &code, "ann", &token).await;
    ann.send(json!({ "type": "unmute", "user_id": bob.id() }))
        .await;
    assert_eq!(bob.expect("joined").await["user"]["name"], "ann");
    bob.expect("role").await;
    assert_eq!(bob.expect("moderated").await["action"], "unmute");
    bob.say("back").await;
    assert_eq!(bob.expect("message").await["text"], "back");
}

/// An accounts-only room refuses guests with 4401 at their next join, and admits accounts.
#[actix_web::test]
async fn an_accounts_only_room_turns_guests_away() {
    let app = spawn_app().await;
    let (code, token) = owned_room(&app).await;
    let mut ann = owner(&app, &code, "ann", &token).await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;

    ann.send(json!({ "type": "accounts_only", "on": true }))
        .await;

    let updated = bob.expect("room_updated").await;
    assert_eq!(
        (
            updated["accounts_only"].as_bool(),
            updated["locked"].as_bool()
        ),
        (Some(true), Some(false))
    );
    bob.expect_nothing_before(&mut ann).await;
    let (close, reason) = app
        .try_join(&code, "name=dave")
        .await
        .err()
        .expect("refused");
    assert_eq!(close, 4401);
    assert!(reason.contains("signed-in"), "{reason}");
    let cookie = app.signed_up("carol").await;
    let carol = app.join_signed_in(&code, &cookie).await;
    assert_eq!(carol.welcome["accounts_only"], true);
}

/// The owner names a signed-in member moderator, who may then act on members but not on the
/// owner; guests cannot be moderators; the rank survives a restart.
#[actix_web::test]
async fn the_owner_names_a_moderator_who_acts_below_their_rank() {
    let app = spawn_app().await;
    let (code, token) = owned_room(&app).await;
    let mia_cookie = app.signed_up("mia").await;
    let mut ann = owner(&app, &code, "ann", &token).await;
    let mut mia = app.join_signed_in(&code, &mia_cookie).await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;
    ann.expect("joined").await;
    mia.expect("joined").await;

    ann.send(json!({ "type": "set_role", "user_id": bob.id(), "role": "moderator" }))
        .await;
    assert_eq!(
        ann.expect("error").await["code"],
        "forbidden",
        "a guest cannot moderate"
    );
    bob.send(json!({ "type": "set_role", "user_id": mia.id(), "role": "moderator" }))
        .await;
    assert_eq!(bob.expect("error").await["code"], "forbidden");
    ann.send(json!({ "type": "set_role", "user_id": mia.id(), "role": "moderator" }))
        .await;

    let named = bob.expect("role").await;
    assert_eq!(
        (named["user"]["name"].as_str(), named["role"].as_str()),
        (Some("mia"), Some("moderator"))
    );
    mia.expect("role").await;
    mia.send(json!({ "type": "kick", "user_id": ann.id() }))
        .await;
    assert_eq!(
        mia.expect("error").await["code"],
        "forbidden",
        "not the owner"
    );
    mia.send(json!({ "type": "mute", "user_id": bob.id() }))
        .await;
    assert_eq!(bob.expect("moderated").await["by"]["name"], "mia");

    drop((ann, mia, bob));
    let database = app.stop().await;
    let app = spawn_app_on(database, &[]).await;
    let mia = app.join_signed_in(&code, &mia_cookie).await;
    assert_eq!(mia.welcome["you"]["role"], "moderator");
}

/// The owner's view of the moderation log, once it holds `entries` lines.
async fn moderation_log(app: &TestApp, code: &str, token: &str, entries: usize) -> Value {
    let path = format!("/api/rooms/{code}/moderation");
    let authorization = format!("Bearer {token}");
    crate::helpers::eventually("the moderation log fills", || async {
        let headers = [("authorization", authorization.as_str())];
        let response = app.account_call(Method::GET, &path, None, &headers).await;
        let log: Value = response.json().await.ok()?;
        (log["entries"].as_array()?.len() == entries).then_some(log)
    })
    .await
}

/// An author deletes their own message and the owner anyone's: everyone hears `deleted`, and the
/// message is gone from every later welcome, from replay (which calls the hole no gap), from the
/// API and from storage, where only a tombstone keeps its seq. A member may not delete another's
/// message, nor anyone a seq of another room.
#[actix_web::test]
async fn a_deleted_message_is_gone_everywhere_and_only_its_author_or_a_moderator_may_delete_it() {
    let app = spawn_app().await;
    let (code, token) = owned_room(&app).await;
    let mut ann = owner(&app, &code, "ann", &token).await;
    let mut bob = app.join(&code, "bob").await;
    ann.expect("joined").await;
    let mut seqs = Vec::new();
    for (who, text) in [
        ("ann", "welcome"),
        ("bob", "oops"),
        ("bob", "spam"),
        ("bob", "hi"),
    ] {
        let speaker = if who == "ann" { &mut ann } else { &mut bob };
        speaker.say(text).await;
        seqs.push(ann.expect("message").await["seq"].as_u64().unwrap());
        bob.expect("message").await;
    }
    let [welcome, oops, spam, hi] = seqs[..] else {
        panic!("four messages")
    };
    let other_room = app.create_room().await;
    let mut eve = app.join(&other_room, "eve").await;
    eve.send(json!({ "type": "delete", "seq": hi })).await;
    assert_eq!(eve.expect("error").await["code"], "bad_request");

    bob.send(json!({ "type": "delete", "seq": welcome })).await;
    assert_eq!(bob.expect("error").await["code"], "forbidden");
    bob.send(json!({ "type": "delete", "seq": oops })).await;
    assert_eq!(ann.expect("deleted").await["seq"], oops);
    assert_eq!(bob.expect("deleted").await["seq"], oops);
    ann.send(json!({ "type": "delete", "seq": spam })).await;
    assert_eq!(bob.expect("deleted").await["seq"], spam);

    let carol = app.join(&code, "carol").await;
    let texts = |history: &Value| -> Vec<String> {
        let messages = history.as_array().expect("a list of messages");
        messages
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(texts(&carol.welcome["history"]), ["welcome", "hi"]);
    let query = format!("name=bob&resume={}&since={welcome}", bob.resume_secret());
    drop(bob);
    let bob = app.join_with(&code, &query).await;
    assert_eq!(texts(&bob.welcome["history"]), ["hi"]);
    assert_eq!(bob.welcome["truncated"], false, "a deletion is no gap");
    let log = moderation_log(&app, &code, &token, 2).await;
    assert_eq!(log["entries"][1]["action"], "delete");
    assert_eq!(log["entries"][1]["target"]["name"], "bob");

    drop((ann, bob, carol, eve));
    let database = app.stop().await;
    let app = spawn_app_on(database, &[]).await;
    let stored: Value = app
        .get(&format!("/api/rooms/{code}/messages"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(texts(&stored["messages"]), ["welcome", "hi"]);
    let query = format!("name=dan&resume=unknown&since={welcome}");
    let dan = app.join_with(&code, &query).await;
    assert_eq!(texts(&dan.welcome["history"]), ["hi"]);
    assert_eq!(dan.welcome["truncated"], false, "nor after a restart");
    let mut connection = app.database.connect().await;
    let tombstones: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT seq, text, sender_name FROM messages WHERE deleted_at IS NOT NULL ORDER BY seq",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    let blank = |seq: u64| (seq as i64, String::new(), String::new());
    assert_eq!(tombstones, [blank(oops), blank(spam)]);
}

/// Joins as `query` from `address`, as a trusted proxy names it.
async fn join_from(
    app: &TestApp,
    code: &str,
    query: &str,
    address: &str,
) -> Result<Client, (u16, String)> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = app
        .ws_url(&format!("/ws/{code}?{query}"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("x-forwarded-for", address.parse().unwrap());
    crate::helpers::try_join_at(request).await
}

/// A banned guest is sent out and kept out as that identity and from that address, a banned
/// account from every device, across a restart, until unbanned; a member cannot ban.
#[actix_web::test]
async fn a_ban_keeps_a_guest_and_an_account_out_across_a_restart_until_lifted() {
    let app = spawn_app_with(&["--trust-proxy"]).await;
    let (code, token) = owned_room(&app).await;
    let bob_cookie = app.signed_up("bob").await;
    let mut ann = owner(&app, &code, "ann", &token).await;
    let mut eve = join_from(&app, &code, "name=eve", "203.0.113.9")
        .await
        .unwrap();
    let mut bob = app.join_signed_in(&code, &bob_cookie).await;
    let mut carol = join_from(&app, &code, "name=carol", "198.51.100.2")
        .await
        .unwrap();
    carol
        .send(json!({ "type": "ban", "user_id": eve.id() }))
        .await;
    assert_eq!(carol.expect("error").await["code"], "forbidden");

    ann.send(json!({ "type": "ban", "user_id": eve.id(), "reason": "abuse" }))
        .await;
    let banned = loop {
        let frame = eve.next().await;
        if frame["type"] == "moderated" {
            break frame;
        }
    };
    assert_eq!(
        (banned["action"].as_str(), banned["reason"].as_str()),
        (Some("ban"), Some("abuse"))
    );
    let (close, reason) = eve.expect_close().await;
    assert_eq!(
        (close, reason.as_str()),
        (4403, "ann banned you from the room")
    );
    ann.send(json!({ "type": "ban", "user_id": bob.id() }))
        .await;
    // The ban is in force once bob is sent out; his rejoin below must not overtake it.
    assert_eq!(bob.expect_close().await.0, 4403);
    let (eve_id, eve_secret) = (eve.id().to_owned(), eve.resume_secret().to_owned());
    let bob_id = bob.id().to_owned();
    drop(bob);

    let assert_out = |joined: Result<Client, (u16, String)>, what: &str| match joined {
        Err((4403, reason)) => assert_eq!(reason, "you are banned from this room", "{what}"),
        Err(other) => panic!("{what}: closed with {other:?}"),
        Ok(_) => panic!("{what}: admitted"),
    };
    let as_eve = format!("name=eve&resume={eve_secret}");
    assert_out(
        join_from(&app, &code, &as_eve, "198.51.100.7").await,
        "her identity",
    );
    assert_out(
        join_from(&app, &code, "name=eve2", "203.0.113.9").await,
        "her address",
    );
    assert_out(
        app.try_join_signed_in(&code, "", &bob_cookie).await,
        "the account",
    );
    assert!(join_from(&app, &code, "name=dan", "198.51.100.3")
        .await
        .is_ok());

    drop((ann, carol));
    let database = app.stop().await;
    let app = spawn_app_on(database, &["--trust-proxy"]).await;
    assert_out(
        join_from(&app, &code, "name=eve3", "203.0.113.9").await,
        "after a restart",
    );
    assert_out(
        app.try_join_signed_in(&code, "", &bob_cookie).await,
        "the account, after a restart",
    );
    let mut ann = owner(&app, &code, "ann", &token).await;
    ann.send(json!({ "type": "unban", "user_id": eve_id }))
        .await;
    let lifted = ann.expect("moderated").await;
    assert_eq!(
        (lifted["action"].as_str(), lifted["user"]["name"].as_str()),
        (Some("unban"), Some("eve"))
    );
    ann.send(json!({ "type": "unban", "user_id": eve_id }))
        .await;
    assert_eq!(
        ann.expect("error").await["code"],
        "bad_request",
        "not banned now"
    );
    assert!(join_from(&app, &code, "name=eve", "203.0.113.9")
        .await
        .is_ok());
    assert_out(
        app.try_join_signed_in(&code, "", &bob_cookie).await,
        "bob is still banned",
    );
    let log = moderation_log(&app, &code, &token, 5).await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["claim_owner", "ban", "ban", "claim_owner", "unban"],
        "bob: {bob_id}"
    );
}

/// The owner hands the room to another account: everyone hears both new ranks, the old owner
/// becomes a moderator, the owner token stops working, and all of it survives a restart. A guest
/// cannot be given the room.
#[actix_web::test]
async fn the_owner_hands_the_room_to_another_account_and_the_token_dies_with_it() {
    let app = spawn_app().await;
    let (code, token) = owned_room(&app).await;
    let ann_cookie = app.signed_up("ann").await;
    let bob_cookie = app.signed_up("bob").await;
    let mut ann = app.join_signed_in(&code, &ann_cookie).await;
    ann.send(json!({ "type": "claim", "owner_token": token }))
        .await;
    ann.expect("role").await;
    let mut bob = app.join_signed_in(&code, &bob_cookie).await;
    let carol = app.join(&code, "carol").await;
    ann.expect("joined").await;
    ann.expect("joined").await;
    ann.send(json!({ "type": "set_role", "user_id": carol.id(), "role": "owner" }))
        .await;
    assert_eq!(ann.expect("error").await["code"], "forbidden", "a guest");

    ann.send(json!({ "type": "set_role", "user_id": bob.id(), "role": "owner" }))
        .await;

    while bob.next().await["type"] != "role" {}
    let demoted = bob.expect("role").await;
    assert_eq!(
        (demoted["user"]["name"].as_str(), demoted["role"].as_str()),
        (Some("ann"), Some("moderator"))
    );
    ann.send(json!({ "type": "kick", "user_id": bob.id() }))
        .await;
    assert_eq!(ann.expect("role").await["role"], "owner");
    assert_eq!(ann.expect("role").await["role"], "moderator");
    assert_eq!(ann.expect("error").await["code"], "forbidden");
    ann.send(json!({ "type": "claim", "owner_token": token }))
        .await;
    assert_eq!(
        ann.expect("error").await["code"],
        "forbidden",
        "the token is void"
    );
    let bearer = format!("Bearer {token}");
    let path = format!("/api/rooms/{code}/moderation");
    let with_token = app
        .account_call(Method::GET, &path, None, &[("authorization", &bearer)])
        .await;
    assert_eq!(with_token.status(), 403, "the old token reads no log");
    let as_bob = app
        .account_call(Method::GET, &path, None, &[("cookie", &bob_cookie)])
        .await;
    assert_eq!(as_bob.status(), 200);

    drop((ann, bob, carol));
    let database = app.stop().await;
    let app = spawn_app_on(database, &[]).await;
    let bob = app.join_signed_in(&code, &bob_cookie).await;
    assert_eq!(bob.welcome["you"]["role"], "owner");
    let ann = app.join_signed_in(&code, &ann_cookie).await;
    assert_eq!(ann.welcome["you"]["role"], "moderator");
}
