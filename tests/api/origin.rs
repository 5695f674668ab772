//! Cross-site WebSocket hijacking: foreign origins are refused with 403 before the upgrade.

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::helpers::{spawn_app, spawn_app_with, upgrade_status, TestApp};

async fn status_with_origin(app: &TestApp, code: &str, origin: Option<&str>) -> u16 {
    let mut request = app
        .ws_url(&format!("/ws/{code}?name=ann"))
        .into_client_request()
        .unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(origin).unwrap());
    }
    upgrade_status(request).await
}

#[actix_web::test]
async fn a_foreign_origin_is_refused_before_the_upgrade() {
    let app = spawn_app().await;
    let code = app.create_room().await;

    assert_eq!(
        status_with_origin(&app, &code, Some("https://evil.example")).await,
        403
    );
    assert_eq!(status_with_origin(&app, &code, Some("null")).await, 403);
    assert_eq!(
        status_with_origin(&app, &code, Some("http://127.0.0.1:1")).await,
        403
    );
}

#[actix_web::test]
async fn the_servers_own_origin_and_originless_clients_are_allowed() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let own = format!("http://127.0.0.1:{}", app.port);

    assert_eq!(status_with_origin(&app, &code, Some(&own)).await, 101);
    assert_eq!(status_with_origin(&app, &code, None).await, 101);
}

#[actix_web::test]
async fn an_allow_listed_origin_is_allowed() {
    let app = spawn_app_with(&[
        "--allowed-origins",
        "https://chat.example.com,other.example:8443",
    ])
    .await;
    let code = app.create_room().await;

    assert_eq!(
        status_with_origin(&app, &code, Some("https://chat.example.com")).await,
        101
    );
    assert_eq!(
        status_with_origin(&app, &code, Some("https://other.example:8443")).await,
        101
    );
    assert_eq!(
        status_with_origin(&app, &code, Some("https://other.example")).await,
        403
    );
}
