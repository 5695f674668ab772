//! HTTP routes: the WebSocket upgrade, the JSON API (rooms and accounts), pages, and health.

pub mod account;
mod client;
mod error;
mod health;
mod pages;
pub mod rooms;
mod same_origin;
mod session_cookie;
mod static_files;
pub mod ws;

use actix_web::middleware::{DefaultHeaders, ErrorHandlers};
use actix_web::web;

pub use client::Proxying;
pub use error::ApiError;
pub use rooms::ApiFlood;
pub use ws::Upgrades;

/// Routes and extractor limits; `max_body` bounds every request body, in bytes.
pub fn configure(cfg: &mut web::ServiceConfig, max_body: usize) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(max_body)
            .error_handler(move |err, _| {
                use actix_web::error::JsonPayloadError;
                match err {
                    JsonPayloadError::Overflow { .. }
                    | JsonPayloadError::OverflowKnownLength { .. } => {
                        ApiError::TooLarge(max_body).into()
                    }
                    JsonPayloadError::ContentType => ApiError::UnsupportedMediaType.into(),
                    other => ApiError::BadRequest(format!("invalid JSON body: {other}")).into(),
                }
            }),
    )
    .app_data(web::PayloadConfig::new(max_body))
    .app_data(
        web::QueryConfig::default()
            .error_handler(|err, _| ApiError::BadRequest(format!("invalid query: {err}")).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|err, _| ApiError::BadRequest(format!("invalid path: {err}")).into()),
    )
    .route("/", web::get().to(pages::home))
    .route("/r/{code}", web::get().to(pages::room))
    .route("/signin", web::get().to(pages::sign_in))
    .route("/register", web::get().to(pages::sign_in))
    .route("/account", web::get().to(pages::account))
    .route("/static/{path:.*}", web::get().to(static_files::serve))
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz))
    .route("/metrics", web::get().to(health::metrics))
    .route("/ws/{code}", web::get().to(ws::connect))
    .service(
        web::scope("/api/account")
            .route("", web::get().to(account::current))
            .route("", web::delete().to(account::delete))
            .route("/register", web::post().to(account::register))
            .route("/login", web::post().to(account::login))
            .route("/logout", web::post().to(account::logout))
            .route("/password", web::post().to(account::change_password)),
    )
    .service(
        web::scope("/api/rooms")
            .route("", web::post().to(rooms::create))
            .route("/{code}", web::get().to(rooms::describe))
            .route("/{code}/messages", web::get().to(rooms::messages))
            .route("/{code}/messages", web::post().to(rooms::post_message))
            .route("/{code}/moderation", web::get().to(rooms::moderation_log))
            .route("/{code}/pass", web::post().to(rooms::pass)),
    )
    .default_service(web::to(pages::not_found));
}

/// Renders error.html for every error outside the JSON API and the WebSocket endpoint.
pub fn error_pages<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(pages::error_page)
}

/// Headers on every response. The policy allows scripts, styles and connections (WebSocket
/// included) only from the page's own origin: no inline script, so injected markup cannot run.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        // Room codes are in page URLs: do not hand them to other sites.
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Permissions-Policy", "camera=(), microphone=(), geolocation=()"))
}
