//! `GET /healthz` (liveness: serving, and is storage degraded?), `GET /readyz` (can it load rooms?)
//! and `GET /metrics` (Prometheus text).

use actix_web::{web, HttpResponse};
use serde_json::json;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::storage::Storage;

/// Liveness: a degraded database does not stop the server from serving rooms live, so it stays 200.
pub async fn healthz(storage: web::Data<Storage>) -> HttpResponse {
    let storage = storage.health();
    HttpResponse::Ok().json(json!({ "status": storage.status, "storage": storage }))
}

/// Readiness: 200 when storage answers and is writing; 503 otherwise, so a balancer sends new visitors
/// to healthier instances (this one keeps serving its rooms live).
pub async fn readyz(storage: web::Data<Storage>) -> HttpResponse {
    let unavailable = |error: String| {
        HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable", "error": error }))
    };
    if let Err(err) = storage.ping().await {
        return unavailable(err.to_string());
    }
    let health = storage.health();
    match health.error {
        Some(error) if health.status != "ok" => unavailable(error),
        _ => HttpResponse::Ok().json(json!({ "status": "ready" })),
    }
}

/// Prometheus' text exposition format.
pub async fn metrics(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}
