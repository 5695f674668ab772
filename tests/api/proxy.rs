//! Behind a proxy: X-Forwarded-* headers are believed only with --trust-proxy; invite links use the
//! visitor's address or --public-url.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::helpers::{expect_close, next_json, spawn_app_with, upgrade_status, Socket, TestApp};

fn upgrade_with(
    app: &TestApp,
    name: &str,
    code: &str,
    headers: &[(&'static str, &str)],
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = app
        .ws_url(&format!("/ws/{code}?name={name}"))
        .into_client_request()
        .unwrap();
    for (header, value) in headers {
        request
            .headers_mut()
            .insert(*header, HeaderValue::from_str(value).unwrap());
    }
    request
}

async fn connect(request: tokio_tungstenite::tungstenite::handshake::client::Request) -> Socket {
    tokio_tungstenite::connect_async(request)
        .await
        .expect("the upgrade succeeds")
        .0
}

/// Without --trust-proxy a forged X-Forwarded-For changes nothing: both connections count as 127.0.0.1.
#[actix_web::test]
async fn forwarded_addresses_are_ignored_by_default() {
    let app = spawn_app_with(&["--max-connections-per-address", "1"]).await;
    let code = app.create_room().await;
    let mut first = connect(upgrade_with(
        &app,
        "ann",
        &code,
        &[("x-forwarded-for", "10.0.0.1")],
    ))
    .await;
    next_json(&mut first).await;

    let mut second = connect(upgrade_with(
        &app,
        "bob",
        &code,
        &[("x-forwarded-for", "10.0.0.2")],
    ))
    .await;

    assert_eq!(expect_close(&mut second).await.0, 4429);
}

/// With --trust-proxy each client is counted by the address the proxy appended.
#[actix_web::test]
async fn a_trusted_proxy_names_each_clients_address() {
    let app = spawn_app_with(&["--max-connections-per-address", "1", "--trust-proxy"]).await;
    let code = app.create_room().await;
    let mut ann = connect(upgrade_with(
        &app,
        "ann",
        &code,
        &[("x-forwarded-for", "10.0.0.1")],
    ))
    .await;
    // A client may put anything first; the proxy's own entry is the last one.
    let mut bob = connect(upgrade_with(
        &app,
        "bob",
        &code,
        &[("x-forwarded-for", "10.0.0.1, 10.0.0.2")],
    ))
    .await;

    let mut again = connect(upgrade_with(
        &app,
        "ann2",
        &code,
        &[("x-forwarded-for", "10.0.0.1")],
    ))
    .await;

    assert_eq!(next_json(&mut ann).await["type"], "welcome");
    assert_eq!(
        next_json(&mut bob).await["type"],
        "welcome",
        "10.0.0.2 is another client"
    );
    assert_eq!(expect_close(&mut again).await.0, 4429);
}

/// The Origin check compares with X-Forwarded-Host only when the proxy is trusted.
#[actix_web::test]
async fn the_origin_check_follows_a_trusted_proxys_host() {
    let headers = [
        ("origin", "https://chat.example.com"),
        ("x-forwarded-host", "chat.example.com"),
        ("x-forwarded-proto", "https"),
    ];
    let trusting = spawn_app_with(&["--trust-proxy"]).await;
    let careful = spawn_app_with(&[]).await;
    let (trusted_code, careful_code) = (trusting.create_room().await, careful.create_room().await);

    assert_eq!(
        upgrade_status(upgrade_with(&trusting, "ann", &trusted_code, &headers)).await,
        101
    );
    assert_eq!(
        upgrade_status(upgrade_with(&careful, "ann", &careful_code, &headers)).await,
        403
    );
}

/// Invite links use the address the visitor used, the proxy's when trusted, or --public-url.
#[actix_web::test]
async fn invite_links_use_the_visitors_address_or_the_public_url() {
    let forwarded = |app: &TestApp| {
        app.http
            .post(format!("{}/api/rooms", app.address))
            .header("x-forwarded-host", "chat.example.com")
            .header("x-forwarded-proto", "https")
            .json(&json!({}))
            .send()
    };
    let url_of = |body: Value| {
        body["url"]
            .as_str()
            .unwrap()
            .rsplit_once("/r/")
            .unwrap()
            .0
            .to_owned()
    };
    let plain = spawn_app_with(&[]).await;
    let trusting = spawn_app_with(&["--trust-proxy"]).await;
    let public = spawn_app_with(&["--public-url", "https://hub.example.org/"]).await;

    let ignored = url_of(forwarded(&plain).await.unwrap().json().await.unwrap());
    let believed = url_of(forwarded(&trusting).await.unwrap().json().await.unwrap());
    let configured = url_of(forwarded(&public).await.unwrap().json().await.unwrap());

    assert_eq!(ignored, plain.address);
    assert_eq!(believed, "https://chat.example.com");
    assert_eq!(configured, "https://hub.example.org");
}
