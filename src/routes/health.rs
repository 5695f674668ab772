//! `GET /healthz` (liveness: serving, and is storage degraded?), `GET /readyz` (can it load rooms?)
//! and `GET /metrics` (Prometheus text).

use actix_web::{web, HttpResponse};
use serde_json::json;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::broker::Broker;
use crate::storage::Storage;

/// Liveness: a degraded database (or, in shared mode, an unreachable Redis) does not stop the
/// server from serving rooms live, so it stays 200.
pub async fn healthz(storage: web::Data<Storage>, broker: web::Data<Broker>) -> HttpResponse {
    let storage = storage.health();
    let redis = broker.is_shared().then(|| redis_status(&broker));
    let status = if redis == Some("down") {
        "degraded"
    } else {
        storage.status
    };
    let mut body = json!({ "status": status, "storage": storage });
    if let Some(redis) = redis {
        body["redis"] = json!(redis);
    }
    HttpResponse::Ok().json(body)
}

/// Readiness: 200 when storage answers and is writing (and, in shared mode, Redis answers); 503
/// otherwise, so a balancer sends new visitors to healthier instances (this one keeps serving its
/// rooms live).
pub async fn readyz(storage: web::Data<Storage>, broker: web::Data<Broker>) -> HttpResponse {
    let unavailable = |error: String| {
        HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable", "error": error }))
    };
    if let Err(err) = storage.ping().await {
        return unavailable(err.to_string());
    }
    if !broker.is_up() {
        return unavailable(
            "Redis is unreachable: rooms are not shared with the other instances".into(),
        );
    }
    let health = storage.health();
    match health.error {
        Some(error) if health.status != "ok" => unavailable(error),
        _ => HttpResponse::Ok().json(json!({ "status": "ready" })),
    }
}

fn redis_status(broker: &Broker) -> &'static str {
    if broker.is_up() {
        "up"
    } else {
        "down"
    }
}

/// Prometheus' text exposition format.
pub async fn metrics(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}
