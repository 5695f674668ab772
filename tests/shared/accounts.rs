//! Accounts across instances: one table of accounts and sessions, so a sign-in, a reserved name
//! and a logout hold on every instance.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{names, Cluster};
use crate::helpers::{eventually, try_join_at, Client};

const PASSWORD: &str = "correct horse battery";

/// Registers `username` on instance `on` and returns the session cookie.
async fn sign_up(cluster: &Cluster, on: usize, username: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/api/account/register", cluster.instance(on).url))
        .json(&json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

async fn join_signed_in(cluster: &Cluster, on: usize, code: &str, cookie: &str) -> Client {
    try_join_signed_in(cluster, on, code, cookie)
        .await
        .expect("a signed-in join is admitted")
}

async fn try_join_signed_in(
    cluster: &Cluster,
    on: usize,
    code: &str,
    cookie: &str,
) -> Result<Client, (u16, String)> {
    let ws = cluster.instance(on).url.replacen("http://", "ws://", 1);
    let mut request = format!("{ws}/ws/{code}").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    try_join_at(request).await
}

/// An account made on one instance signs in on another, and its name is reserved there too.
#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn an_account_made_on_one_instance_joins_on_another_and_keeps_its_name() {
    let cluster = Cluster::start(2).await;
    let cookie = sign_up(&cluster, 0, "ann").await;
    let code = cluster.create_room(0).await;

    let ann = join_signed_in(&cluster, 1, &code, &cookie).await;

    assert_eq!(ann.welcome["you"]["account"], true);
    let (close, _) = cluster
        .try_join(0, &code, "name=ANN")
        .await
        .err()
        .expect("refused");
    assert_eq!(close, 4409);
    let mut bob = cluster.join(0, &code, "bob").await;
    let members: Vec<Value> = bob.welcome["members"].as_array().unwrap().clone();
    assert!(
        members
            .iter()
            .any(|m| m["name"] == "ann" && m["account"] == true),
        "{members:?}"
    );
    bob.send(json!({ "type": "rename", "name": "ann" })).await;
    assert_eq!(bob.expect("error").await["code"], "name_reserved");
}

/// One account on two devices served by two instances is one member: neither device takes the
/// other over, nobody hears a second `joined`, and `left` comes once, when the last device goes.
#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn one_account_on_two_instances_is_one_member_until_its_last_device_leaves() {
    let cluster = Cluster::start(2).await;
    let cookie = sign_up(&cluster, 0, "ann").await;
    let code = cluster.create_room(0).await;
    let mut bob = cluster.join(0, &code, "bob").await;
    let mut cy = cluster.join(1, &code, "cy").await;
    cluster.wait_for_members(&code, &["bob", "cy"]).await;
    assert_eq!(bob.expect("joined").await["user"]["name"], "cy");
    let mut phone = join_signed_in(&cluster, 0, &code, &cookie).await;
    assert_eq!(bob.expect("joined").await["user"]["name"], "ann");
    assert_eq!(cy.expect("joined").await["user"]["name"], "ann");

    let mut laptop = join_signed_in(&cluster, 1, &code, &cookie).await;
    assert_eq!(names(&laptop.welcome), ["ann", "bob", "cy"]);
    assert_eq!(laptop.welcome["you"]["id"], phone.welcome["you"]["id"]);
    // Instance 1 published the laptop's join before its message: whoever hears the message has
    // had the join, and would have heard `joined` (or, for the phone, a close) before it.
    laptop.say("from the laptop").await;
    for client in [&mut phone, &mut laptop, &mut bob, &mut cy] {
        assert_eq!(client.expect("message").await["text"], "from the laptop");
    }
    phone.say("from the phone").await;
    for client in [&mut phone, &mut laptop, &mut bob, &mut cy] {
        assert_eq!(client.expect("message").await["text"], "from the phone");
    }

    drop(laptop);
    // The gauge falls just before the lobby hears of the leave: cy's message comes after it.
    eventually("instance 1 has closed the laptop", || async {
        (cluster.metric(1, "hubbub_connections_open").await == "hubbub_connections_open 1")
            .then_some(())
    })
    .await;
    cy.say("after the laptop").await;
    for client in [&mut phone, &mut bob, &mut cy] {
        assert_eq!(client.expect("message").await["text"], "after the laptop");
    }
    cluster.wait_for_members(&code, &["ann", "bob", "cy"]).await;

    drop(phone);
    for client in [&mut bob, &mut cy] {
        assert_eq!(client.expect("left").await["user"]["name"], "ann");
    }
    cluster.wait_for_members(&code, &["bob", "cy"]).await;
}

/// A guest on one instance who has an account's username when its holder arrives on another is
/// renamed there, as on one instance, and presence has the new name.
#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn a_guest_with_an_accounts_name_on_another_instance_makes_way_for_its_holder() {
    let cluster = Cluster::start(2).await;
    let code = cluster.create_room(0).await;
    let mut guest = cluster.join(0, &code, "Ann").await;
    let mut cy = cluster.join(1, &code, "cy").await;
    cluster.wait_for_members(&code, &["Ann", "cy"]).await;
    assert_eq!(guest.expect("joined").await["user"]["name"], "cy");
    let cookie = sign_up(&cluster, 1, "ann").await;

    let mut ann = join_signed_in(&cluster, 1, &code, &cookie).await;

    assert_eq!(ann.welcome["you"]["name"], "ann");
    let renamed = guest.expect("renamed").await;
    assert_eq!(
        (&renamed["old_name"], &renamed["user"]["name"]),
        (&json!("Ann"), &json!("Ann-guest"))
    );
    assert_eq!(guest.expect("joined").await["user"]["name"], "ann");
    assert_eq!(cy.expect("joined").await["user"]["name"], "ann");
    assert_eq!(cy.expect("renamed").await["user"]["name"], "Ann-guest");
    assert_eq!(ann.expect("renamed").await["user"]["name"], "Ann-guest");
    cluster
        .wait_for_members(&code, &["Ann-guest", "ann", "cy"])
        .await;
    let (close, _) = cluster
        .try_join(1, &code, "name=ann-GUEST")
        .await
        .err()
        .expect("the guest's new name is theirs on every instance");
    assert_eq!(close, 4409);
}

/// Logging out on one instance closes the session's connections on the others (at their next
/// check of sessions, within 5 s).
#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn a_logout_on_one_instance_closes_the_sessions_connections_on_another() {
    let cluster = Cluster::start(2).await;
    let cookie = sign_up(&cluster, 0, "ann").await;
    let code = cluster.create_room(0).await;
    let mut ann = join_signed_in(&cluster, 1, &code, &cookie).await;

    let response = reqwest::Client::new()
        .post(format!("{}/api/account/logout", cluster.instance(0).url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 204);
    assert_eq!(ann.expect_close().await.0, 4401);
}

/// Joins on instance `on` and claims the room with its owner token.
async fn claim_owner(cluster: &Cluster, on: usize, code: &str, name: &str, token: &str) -> Client {
    let mut owner = cluster.join(on, code, name).await;
    owner
        .send(json!({ "type": "claim", "owner_token": token }))
        .await;
    assert_eq!(owner.expect("role").await["role"], "owner");
    owner
}

/// A room made on instance 0, with its owner token.
async fn owned_room(cluster: &Cluster) -> (String, String) {
    let created = cluster
        .instance(0)
        .call(reqwest::Method::POST, "/api/rooms", Some(json!({})))
        .await;
    let code = created["code"].as_str().unwrap().to_owned();
    (code, created["owner_token"].as_str().unwrap().to_owned())
}

/// An owner on one instance kicks a guest on another: the guest is closed with 4403 there, and
/// the owner hears them leave; a lock made on one instance refuses newcomers on the other.
#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn moderation_reaches_members_on_other_instances() {
    let cluster = Cluster::start(2).await;
    let (code, token) = owned_room(&cluster).await;
    let mut ann = claim_owner(&cluster, 0, &code, "ann", &token).await;
    let mut bob = cluster.join(1, &code, "bob").await;
    let mut carol = cluster.join(1, &code, "carol").await;
    bob.expect("joined").await;
    cluster
        .wait_for_members(&code, &["ann", "bob", "carol"])
        .await;
    assert_eq!(
        carol.welcome["roles"][0]["role"], "owner",
        "instance 1 knows the owner"
    );
    while ann.next().await["type"] != "joined" {}
    while ann.next().await["type"] != "joined" {}

    ann.send(json!({ "type": "kick", "user_id": bob.id(), "reason": "spam" }))
        .await;

    assert_eq!(bob.expect("moderated").await["reason"], "spam");
    assert_eq!(bob.expect_close().await.0, 4403);
    assert_eq!(ann.expect("moderated").await["user"]["name"], "bob");
    assert_eq!(ann.expect("left").await["user"]["name"], "bob");
    assert_eq!(carol.expect("moderated").await["action"], "kick");
    assert_eq!(carol.expect("left").await["user"]["name"], "bob");
    let query = format!("name=bob&resume={}", bob.resume_secret());
    let (close, _) = cluster
        .try_join(0, &code, &query)
        .await
        .err()
        .expect("refused");
    assert_eq!(close, 4403, "the kick holds on the other instance too");

    ann.send(json!({ "type": "lock" })).await;
    assert_eq!(carol.expect("room_updated").await["locked"], true);
    let (close, _) = cluster
        .try_join(1, &code, "name=dave")
        .await
        .err()
        .expect("refused");
    assert_eq!(close, 4423);
}

/// The owner on one instance deletes a message posted on another: members on both hear `deleted`,
/// and a newcomer on either instance finds it gone.
#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn a_deletion_on_one_instance_reaches_the_other() {
    let cluster = Cluster::start(2).await;
    let (code, token) = owned_room(&cluster).await;
    let mut ann = claim_owner(&cluster, 0, &code, "ann", &token).await;
    let mut carol = cluster.join(1, &code, "carol").await;
    cluster.wait_for_members(&code, &["ann", "carol"]).await;
    carol.say("spam").await;
    let seq = carol.expect("message").await["seq"].clone();
    while ann.next().await["type"] != "message" {}

    ann.send(json!({ "type": "delete", "seq": seq })).await;

    assert_eq!(carol.expect("deleted").await["seq"], seq);
    assert_eq!(ann.expect("deleted").await["seq"], seq);
    for on in [0, 1] {
        let newcomer = cluster.join(on, &code, &format!("dave{on}")).await;
        assert_eq!(newcomer.welcome["history"], json!([]), "instance {on}");
    }
}

/// The owner on one instance bans a guest and an account connected to the other: both are sent
/// out there, and neither gets back in on either instance.
#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn a_ban_on_one_instance_keeps_people_out_of_both() {
    let cluster = Cluster::start(2).await;
    let (code, token) = owned_room(&cluster).await;
    let bob_cookie = sign_up(&cluster, 1, "bob").await;
    let mut ann = claim_owner(&cluster, 0, &code, "ann", &token).await;
    let mut eve = cluster.join(1, &code, "eve").await;
    let mut bob = join_signed_in(&cluster, 1, &code, &bob_cookie).await;
    cluster
        .wait_for_members(&code, &["ann", "eve", "bob"])
        .await;

    for target in [eve.id().to_owned(), bob.id().to_owned()] {
        ann.send(json!({ "type": "ban", "user_id": target })).await;
    }

    assert_eq!(eve.expect_close().await.0, 4403);
    assert_eq!(bob.expect_close().await.0, 4403);
    let as_eve = format!("name=eve&resume={}", eve.resume_secret());
    for on in [0, 1] {
        let refused = cluster.try_join(on, &code, &as_eve).await.err();
        assert_eq!(refused.map(|(close, _)| close), Some(4403), "eve on {on}");
        let refused = try_join_signed_in(&cluster, on, &code, &bob_cookie)
            .await
            .err();
        assert_eq!(refused.map(|(close, _)| close), Some(4403), "bob on {on}");
    }
}

/// A password set on one instance holds on the other: a newcomer there needs a pass, which either
/// instance hands out.
#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn a_rooms_password_set_on_one_instance_holds_on_the_other() {
    let cluster = Cluster::start(2).await;
    let (code, token) = owned_room(&cluster).await;
    let mut ann = claim_owner(&cluster, 0, &code, "ann", &token).await;
    let mut bob = cluster.join(1, &code, "bob").await;
    cluster.wait_for_members(&code, &["ann", "bob"]).await;

    ann.send(json!({ "type": "set_password", "password": "open sesame" }))
        .await;

    assert_eq!(bob.expect("room_updated").await["password"], true);
    let refused = cluster.try_join(1, &code, "name=carol").await.err();
    assert_eq!(refused.map(|(close, _)| close), Some(4407));
    let pass: Value = reqwest::Client::new()
        .post(format!("{}/api/rooms/{code}/pass", cluster.instance(0).url))
        .json(&json!({ "password": "open sesame" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pass = pass["pass"].as_str().expect("a pass");
    let query = format!("name=carol&pass={}", crate::helpers::urlencode(pass));
    cluster.join_with(1, &code, &query).await;
}

/// The owner on one instance hands the room to an account on the other, whose new rank that
/// instance honours at once.
#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn a_room_handed_over_on_one_instance_has_its_new_owner_on_the_other() {
    let cluster = Cluster::start(2).await;
    let (code, token) = owned_room(&cluster).await;
    let ann_cookie = sign_up(&cluster, 0, "ann").await;
    let bob_cookie = sign_up(&cluster, 1, "bob").await;
    let mut ann = join_signed_in(&cluster, 0, &code, &ann_cookie).await;
    ann.send(json!({ "type": "claim", "owner_token": token }))
        .await;
    ann.expect("role").await;
    let mut bob = join_signed_in(&cluster, 1, &code, &bob_cookie).await;
    cluster.wait_for_members(&code, &["ann", "bob"]).await;

    ann.send(json!({ "type": "set_role", "user_id": bob.id(), "role": "owner" }))
        .await;

    while bob.next().await["type"] != "role" {}
    assert_eq!(
        bob.expect("role").await["role"],
        "moderator",
        "ann's new rank"
    );
    bob.send(json!({ "type": "kick", "user_id": ann.id() }))
        .await;
    assert_eq!(
        ann.expect_close().await.0,
        4403,
        "the new owner outranks ann"
    );
}

/// A mute made on one instance refuses the member's messages on the other, and an edit made on
/// one reaches the other's members and newcomers.
#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn mutes_and_edits_cross_instances() {
    let cluster = Cluster::start(2).await;
    let (code, token) = owned_room(&cluster).await;
    let mut ann = claim_owner(&cluster, 0, &code, "ann", &token).await;
    let mut bob = cluster.join(1, &code, "bob").await;
    cluster.wait_for_members(&code, &["ann", "bob"]).await;

    ann.send(json!({ "type": "mute", "user_id": bob.id() }))
        .await;
    assert_eq!(bob.expect("moderated").await["action"], "mute");
    bob.say("can you hear me").await;
    assert_eq!(bob.expect("error").await["code"], "muted");
    ann.send(json!({ "type": "unmute", "user_id": bob.id() }))
        .await;
    assert_eq!(bob.expect("moderated").await["action"], "unmute");
    bob.say("helo").await;
    let seq = bob.expect("message").await["seq"].clone();
    bob.send(json!({ "type": "edit", "seq": seq, "text": "hello" }))
        .await;

    let mut edited = ann.next().await;
    while edited["type"] != "edited" {
        assert_ne!(
            edited["text"], "can you hear me",
            "a muted message got through"
        );
        edited = ann.next().await;
    }
    assert_eq!(edited["text"], "hello");
    let newcomer = cluster.join(0, &code, "carol").await;
    assert_eq!(newcomer.welcome["history"][0]["text"], "hello");
}
