//! HTTP routes: the WebSocket upgrade, the JSON API, and health.

mod error;
mod health;
mod rooms;
mod ws;

use actix_web::web;

pub use error::ApiError;

/// The largest request body accepted: a 4,000-character message fits many times over.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_BODY_BYTES)
            .error_handler(|err, _| {
                ApiError::BadRequest(format!("invalid JSON body: {err}")).into()
            }),
    )
    .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
    .app_data(
        web::QueryConfig::default()
            .error_handler(|err, _| ApiError::BadRequest(format!("invalid query: {err}")).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|err, _| ApiError::BadRequest(format!("invalid path: {err}")).into()),
    )
    .route("/healthz", web::get().to(health::healthz))
    .route("/ws/{code}", web::get().to(ws::connect))
    .service(
        web::scope("/api/rooms")
            .route("", web::post().to(rooms::create))
            .route("/{code}", web::get().to(rooms::describe))
            .route("/{code}/messages", web::get().to(rooms::messages))
            .route("/{code}/messages", web::post().to(rooms::post_message)),
    )
    .default_service(web::to(|| async { ApiError::NotFound }));
}
