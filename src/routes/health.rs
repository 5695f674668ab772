//! `GET /healthz`: answers 200 while the server is serving.

use actix_web::HttpResponse;
use serde_json::json;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}
