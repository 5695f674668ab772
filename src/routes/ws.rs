//! `GET /ws/{code}?name=…&resume=…&since=…`: the WebSocket upgrade into a room.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{ApiError, Proxying};

use crate::chat::connections::ConnectionLimit;
use crate::chat::ids::ResumeSecret;
use crate::chat::messages::Close;
use crate::chat::protocol::CloseCode;
use crate::chat::registry::Registry;
use crate::chat::session::{self, JoinRequest};
use crate::chat::settings::SessionSettings;
use crate::domain::{DisplayName, ErrorCode, Invalid, RoomCode};
use crate::origin::AllowedOrigins;

/// What decides whether and how a WebSocket upgrade goes ahead, shared by every worker.
pub struct Upgrades {
    pub proxying: Proxying,
    pub origins: AllowedOrigins,
    pub connections: ConnectionLimit,
    pub sessions: Arc<SessionSettings>,
}

#[derive(Deserialize)]
pub struct UpgradeParams {
    name: Option<String>,
    resume: Option<String>,
    since: Option<String>,
}

#[tracing::instrument(name = "ws_connect", skip_all, fields(room = %code))]
pub async fn connect(
    req: HttpRequest,
    payload: web::Payload,
    code: web::Path<String>,
    params: web::Query<UpgradeParams>,
    registry: web::Data<Registry>,
    upgrades: web::Data<Upgrades>,
) -> Result<HttpResponse, actix_web::Error> {
    let client = upgrades.proxying.client(&req);
    // A present but unreadable Origin is treated like a foreign one.
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("null"));
    if !upgrades.origins.permits(origin, client.host.as_deref()) {
        tracing::info!(origin, "refused a WebSocket from a foreign origin");
        return Err(ApiError::ForbiddenOrigin.into());
    }
    let slot = match client
        .address
        .map(|address| upgrades.connections.take(address))
    {
        Some(Some(slot)) => Some(slot),
        // Only a TCP peer has an address to count; anything else is not limited here.
        None => None,
        Some(None) => {
            let reason = format!(
                "too many connections from your address (at most {})",
                upgrades.connections.per_address()
            );
            return session::refuse(
                &req,
                payload,
                Close::new(CloseCode::TooManyConnections, reason),
            );
        }
    };
    let join = match parse(&code, params.into_inner(), client.address) {
        Ok(join) => join,
        Err(invalid) => {
            return session::refuse(
                &req,
                payload,
                Close::new(CloseCode::BadRequest, invalid.message),
            )
        }
    };
    match registry.open(&join.room).await {
        Ok(Some(lobby)) => session::start(
            &req,
            payload,
            (lobby, registry.get_ref().clone()),
            join,
            Arc::clone(&upgrades.sessions),
            slot,
        ),
        Ok(None) => {
            let reason = format!("no room has the code {}", join.room);
            session::refuse(&req, payload, Close::new(CloseCode::NoSuchRoom, reason))
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot open a room");
            let reason = "rooms cannot be loaded right now; try again shortly";
            session::refuse(&req, payload, Close::new(CloseCode::TryAgain, reason))
        }
    }
}

fn parse(
    code: &str,
    params: UpgradeParams,
    client: Option<std::net::IpAddr>,
) -> Result<JoinRequest, Invalid> {
    let room = RoomCode::parse(code)?;
    let name = params.name.ok_or_else(|| {
        Invalid::new(
            ErrorCode::InvalidName,
            "a name is required: add ?name=… to the URL",
        )
    })?;
    let since = params
        .since
        .map(|since| {
            since.parse::<u64>().map_err(|_| {
                Invalid::new(
                    ErrorCode::BadRequest,
                    format!("`since` must be a whole number, not {since:?}"),
                )
            })
        })
        .transpose()?;
    Ok(JoinRequest {
        room,
        client,
        name: DisplayName::parse(&name)?,
        resume: params.resume.map(ResumeSecret::parse).transpose()?,
        since,
    })
}
