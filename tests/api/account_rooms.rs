//! Accounts in rooms: a session cookie on the upgrade joins as the account, whose username no
//! guest may take, on one device or several; ending the session closes its connections.

use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::accounts::{SetCookie, PASSWORD};
use crate::helpers::{spawn_app, spawn_app_on, try_join_at, urlencode, Client, TestApp};

impl TestApp {
    /// Joins `code` with a raw query and a `Cookie` header, or returns the refusal.
    pub async fn try_join_signed_in(
        &self,
        code: &str,
        query: &str,
        cookie: &str,
    ) -> Result<Client, (u16, String)> {
        let mut request = self
            .ws_url(&format!("/ws/{code}?{query}"))
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
        try_join_at(request).await
    }

    pub async fn join_signed_in(&self, code: &str, cookie: &str) -> Client {
        self.try_join_signed_in(code, "", cookie)
            .await
            .expect("a signed-in join is admitted")
    }

    /// Ann, signed in on two devices, each in one new room: its code, and each device's cookie
    /// and connection.
    async fn two_sessions_in_a_room(&self) -> (String, [(String, Client); 2]) {
        let first = self.signed_up("ann").await;
        let second = self.another_device("ann").await;
        let code = self.create_room().await;
        let one = self.join_signed_in(&code, &first).await;
        let two = self.join_signed_in(&code, &second).await;
        (code, [(first, one), (second, two)])
    }

    /// Signs `username` in again, as on another device, and returns that session's cookie.
    async fn another_device(&self, username: &str) -> String {
        SetCookie::of(&self.login(username, PASSWORD, None).await).header()
    }
}

/// A session cookie on the upgrade joins as the account: its id, its username, `account: true`,
/// and everyone sees the flag.
#[actix_web::test]
async fn a_signed_in_member_joins_as_the_account() {
    let app = spawn_app().await;
    let response = app.register("ann", PASSWORD).await;
    let cookie = SetCookie::of(&response).header();
    let account: Value = response.json().await.unwrap();
    let code = app.create_room().await;

    let ann = app.join_signed_in(&code, &cookie).await;

    let you = &ann.welcome["you"];
    assert_eq!(you["id"], account["id"]);
    assert_eq!(you["name"], "ann");
    assert_eq!(you["account"], true);
    let mut bob = app.join(&code, "bob").await;
    assert_eq!(bob.welcome["members"][0]["account"], true);
    assert!(
        bob.welcome["you"].get("account").is_none(),
        "guests carry no flag"
    );
    let room: Value = app
        .get(&format!("/api/rooms/{code}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(room["members"][0]["account"], true);
    let mut carol = app.join(&code, "carol").await;
    bob.expect("joined").await;
    // The same id in every room, and a join elsewhere is nothing to this one.
    let other = app.create_room().await;
    let elsewhere = app.join_signed_in(&other, &cookie).await;
    assert_eq!(elsewhere.welcome["you"]["id"], account["id"]);
    bob.expect_nothing_before(&mut carol).await;
}

/// `?name` may be left out when signed in, and must be the username if given.
#[actix_web::test]
async fn a_signed_in_name_must_be_the_username() {
    let app = spawn_app().await;
    let cookie = app.signed_up("ann").await;
    let code = app.create_room().await;

    let same = app.try_join_signed_in(&code, "name=ANN", &cookie).await;
    assert_eq!(same.unwrap().welcome["you"]["name"], "ann");
    let (close, reason) = app
        .try_join_signed_in(&code, "name=bob", &cookie)
        .await
        .err()
        .expect("another name is refused");
    assert_eq!(close, 4400);
    assert!(reason.contains("signed in as ann"), "{reason}");
}

/// A cookie that signs nobody in is no account: the join is a guest's, never an error.
#[actix_web::test]
async fn an_unknown_or_ended_cookie_joins_as_a_guest() {
    let app = spawn_app().await;
    let cookie = app.signed_up("ann").await;
    let code = app.create_room().await;
    app.account_call(
        Method::POST,
        "/api/account/logout",
        None,
        &[("cookie", &cookie)],
    )
    .await;

    for stale in [cookie.as_str(), "hubbub_session=garbage", "hubbub_session="] {
        let guest = app
            .try_join_signed_in(&code, "name=zed", stale)
            .await
            .unwrap();
        assert!(guest.welcome["you"].get("account").is_none(), "{stale}");
        drop(guest);
        let (close, _) = app
            .try_join_signed_in(&code, "", stale)
            .await
            .err()
            .unwrap();
        assert_eq!(close, 4400, "a guest needs a name");
    }
}

/// An account's username is reserved in every room: a guest can neither join nor rename to it,
/// nor to a look-alike.
#[actix_web::test]
async fn a_guest_cannot_take_an_accounts_name() {
    let app = spawn_app().await;
    app.signed_up("ann").await;
    let code = app.create_room().await;

    for taken in ["ann", "ANN", "аnn" /* Cyrillic а */] {
        let (close, reason) = app
            .try_join(&code, &format!("name={}", urlencode(taken)))
            .await
            .err()
            .expect("refused");
        assert_eq!(close, 4409, "{taken}");
        assert!(reason.contains("account"), "{reason}");
    }
    let mut bob = app.join(&code, "bob").await;
    bob.send(json!({ "type": "rename", "name": "Ann" })).await;
    let error = bob.expect("error").await;
    assert_eq!(error["code"], "name_reserved");
    let room: Value = app
        .get(&format!("/api/rooms/{code}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(room["members"][0]["name"], "bob");
}

/// The reservation outlives a restart, and ends with the account: the instance knows every
/// username from its start, and what registering and deleting change after it.
#[actix_web::test]
async fn a_username_is_reserved_across_a_restart_until_its_account_is_deleted() {
    let app = spawn_app().await;
    app.signed_up("ann").await;
    let app = spawn_app_on(app.stop().await, &[]).await;
    let code = app.create_room().await;
    let (close, _) = app
        .try_join(&code, "name=Ann")
        .await
        .err()
        .expect("refused");
    assert_eq!(close, 4409);

    let cookie = app.another_device("ann").await;
    let deleted = app
        .account_call(
            Method::DELETE,
            "/api/account",
            Some(json!({ "password": PASSWORD })),
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(deleted.status(), 204);
    let guest = app.join(&code, "Ann").await;
    assert_eq!(guest.welcome["you"]["name"], "Ann");
}

/// A guest who had the name before the account came is renamed `name-guest`, told with
/// `renamed` like everyone, and the holder gets in.
#[actix_web::test]
async fn a_guest_using_the_name_makes_way_when_the_holder_arrives() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut guest = app.join(&code, "Ann").await;
    let cookie = app.signed_up("ann").await;

    let ann = app.join_signed_in(&code, &cookie).await;

    let renamed = guest.expect("renamed").await;
    assert_eq!(renamed["user"]["name"], "Ann-guest");
    assert_eq!(renamed["old_name"], "Ann");
    assert_eq!(guest.expect("joined").await["user"]["name"], "ann");
    let names: Vec<&str> = ann.welcome["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ann-guest", "ann"]);
}

/// Signed in, you go by your username: a rename frame is refused.
#[actix_web::test]
async fn an_account_holder_cannot_rename_in_a_room() {
    let app = spawn_app().await;
    let cookie = app.signed_up("ann").await;
    let code = app.create_room().await;
    let mut ann = app.join_signed_in(&code, &cookie).await;

    ann.send(json!({ "type": "rename", "name": "anna" })).await;

    assert_eq!(ann.expect("error").await["code"], "name_locked");
}

/// The same account on two devices is one member: one `joined`, and one `left` when the last goes.
#[actix_web::test]
async fn two_devices_are_one_member_who_leaves_with_the_last() {
    let app = spawn_app().await;
    let phone_cookie = app.signed_up("ann").await;
    let laptop_cookie = app.another_device("ann").await;
    let code = app.create_room().await;
    let phone = app.join_signed_in(&code, &phone_cookie).await;
    let mut bob = app.join(&code, "bob").await;

    let mut laptop = app.join_signed_in(&code, &laptop_cookie).await;

    assert_eq!(laptop.welcome["you"]["id"], phone.welcome["you"]["id"]);
    assert_eq!(laptop.welcome["members"].as_array().unwrap().len(), 2);
    bob.expect_nothing_before(&mut laptop).await;
    assert_eq!(laptop.expect("message").await["from"]["account"], true);
    drop(phone);
    let mut carol = app.join(&code, "carol").await;
    bob.expect("joined").await;
    bob.expect_nothing_before(&mut carol).await;
    drop(laptop);
    let left = bob.expect("left").await;
    assert_eq!(left["user"]["name"], "ann");
}

/// Logging out closes that session's connections with 4401, and its cookie no longer signs in.
#[actix_web::test]
async fn logout_closes_the_sessions_connections_with_4401() {
    let app = spawn_app().await;
    let (code, [(cookie, mut here), (_, mut there)]) = app.two_sessions_in_a_room().await;

    app.account_call(
        Method::POST,
        "/api/account/logout",
        None,
        &[("cookie", &cookie)],
    )
    .await;

    assert_eq!(here.expect_close().await.0, 4401);
    let (close, _) = app
        .try_join_signed_in(&code, "", &cookie)
        .await
        .err()
        .unwrap();
    assert_eq!(close, 4400, "the old cookie is a guest's, who needs a name");
    // The other device has a session of its own.
    there.say("still here").await;
    assert_eq!(there.expect("message").await["text"], "still here");
}

/// A password change closes the connections of the account's other sessions, not this one's.
#[actix_web::test]
async fn a_password_change_closes_the_other_sessions_connections() {
    let app = spawn_app().await;
    let (_, [(here_cookie, mut here), (_, mut there)]) = app.two_sessions_in_a_room().await;

    let body = json!({ "current": PASSWORD, "new": "another password" });
    let changed = app
        .account_call(
            Method::POST,
            "/api/account/password",
            Some(body),
            &[("cookie", &here_cookie)],
        )
        .await;

    assert_eq!(changed.status(), 204);
    assert_eq!(there.expect_close().await.0, 4401);
    here.say("still here").await;
    assert_eq!(here.expect("message").await["text"], "still here");
}

/// A session that ends out of this instance's sight (expired, or ended by another instance
/// sharing the database) closes its connections at the next check, within seconds.
#[actix_web::test]
async fn a_session_that_expires_closes_its_connections() {
    let app = spawn_app().await;
    let cookie = app.signed_up("ann").await;
    let code = app.create_room().await;
    let mut ann = app.join_signed_in(&code, &cookie).await;

    let mut connection = app.database.connect().await;
    sqlx::query("UPDATE account_sessions SET expires_at = 0")
        .execute(&mut connection)
        .await
        .unwrap();

    // The check runs every 5 s; expect_close waits up to PATIENCE (10 s).
    assert_eq!(ann.expect_close().await.0, 4401);
}
