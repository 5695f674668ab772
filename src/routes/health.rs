//! `GET /healthz`: answers 200 while the server is serving, and says whether storage is degraded.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::storage::Storage;

/// Liveness: a degraded database does not stop the server from serving rooms live, so it stays 200.
pub async fn healthz(storage: web::Data<Storage>) -> HttpResponse {
    let storage = storage.health();
    HttpResponse::Ok().json(json!({ "status": storage.status, "storage": storage }))
}
