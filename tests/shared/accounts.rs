//! Accounts across instances: one table of accounts and sessions, so a sign-in, a reserved name
//! and a logout hold on every instance.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::Cluster;
use crate::helpers::{try_join_at, Client};

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
    let ws = cluster.instance(on).url.replacen("http://", "ws://", 1);
    let mut request = format!("{ws}/ws/{code}").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    try_join_at(request)
        .await
        .expect("a signed-in join is admitted")
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
