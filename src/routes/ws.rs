//! `GET /ws/{code}?name=…&resume=…&since=…`: the WebSocket upgrade into a room.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::session_cookie::SessionCookie;
use super::{ApiError, Proxying};

use crate::accounts::Accounts;
use crate::chat::connections::ConnectionLimit;
use crate::chat::ids::ResumeSecret;
use crate::chat::messages::Close;
use crate::chat::protocol::CloseCode;
use crate::chat::registry::Registry;
use crate::chat::session::{self, JoinRequest, SignedInAs};
use crate::chat::settings::SessionSettings;
use crate::chat::sign_ins::SignIns;
use crate::domain::{Account, DisplayName, ErrorCode, Invalid, RoomCode};
use crate::origin::AllowedOrigins;

/// What decides whether and how a WebSocket upgrade goes ahead, shared by every worker.
pub struct Upgrades {
    pub proxying: Proxying,
    pub origins: AllowedOrigins,
    pub connections: ConnectionLimit,
    pub sessions: Arc<SessionSettings>,
    pub sign_ins: SignIns,
}

#[derive(Deserialize)]
pub struct UpgradeParams {
    name: Option<String>,
    resume: Option<String>,
    since: Option<String>,
    /// A pass into a room with a password: short-lived, and not the password, so it may sit in a URL.
    pass: Option<String>,
}

/// Longer than any pass the server issues (13 digits, a dot, 64 hex digits).
const MAX_PASS_CHARS: usize = 100;

#[tracing::instrument(name = "ws_connect", skip_all, fields(room = %code))]
pub async fn connect(
    req: HttpRequest,
    payload: web::Payload,
    code: web::Path<String>,
    params: web::Query<UpgradeParams>,
    registry: web::Data<Registry>,
    upgrades: web::Data<Upgrades>,
    accounts: web::Data<Accounts>,
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
    // A cookie that signs nobody in (expired, ended, garbled) joins as a guest.
    let cookie = SessionCookie::of(&req, &upgrades.proxying);
    let signed_in = match cookie.account(&req, &accounts).await {
        Ok(signed_in) => signed_in.map(|(account, token)| SignedInAs {
            account,
            session: token.digest(),
            sign_ins: upgrades.sign_ins.clone(),
        }),
        Err(err) => {
            tracing::error!(error = %err, "cannot read a sign-in session");
            let reason = "sign-ins cannot be checked right now; try again shortly";
            return session::refuse(&req, payload, Close::new(CloseCode::TryAgain, reason));
        }
    };
    let join = match join_request(&code, params.into_inner(), client.address, signed_in) {
        Ok(join) => join,
        Err(invalid) => {
            return session::refuse(
                &req,
                payload,
                Close::new(CloseCode::BadRequest, invalid.message),
            )
        }
    };
    if join.signed_in.is_none() {
        match registry.reserved_by_account(&join.name).await {
            Ok(false) => {}
            Ok(true) => {
                let reason = session::reserved_name(&join.name).message;
                return session::refuse(&req, payload, Close::new(CloseCode::NameTaken, reason));
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot check a name against the accounts");
                let reason = "names cannot be checked right now; try again shortly";
                return session::refuse(&req, payload, Close::new(CloseCode::TryAgain, reason));
            }
        }
    }
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

/// What an upgrade asks for, validated: the room, the name, and how to resume.
pub fn join_request(
    code: &str,
    params: UpgradeParams,
    client: Option<std::net::IpAddr>,
    signed_in: Option<SignedInAs>,
) -> Result<JoinRequest, Invalid> {
    let room = RoomCode::parse(code)?;
    let name = match (&signed_in, params.name) {
        (Some(signed_in), asked) => account_name(&signed_in.account, asked.as_deref())?,
        (None, Some(name)) => DisplayName::parse(&name)?,
        (None, None) => {
            return Err(Invalid::new(
                ErrorCode::InvalidName,
                "a name is required: add ?name=… to the URL, or sign in",
            ))
        }
    };
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
    if params
        .pass
        .as_ref()
        .is_some_and(|pass| pass.len() > MAX_PASS_CHARS)
    {
        return Err(Invalid::new(
            ErrorCode::BadRequest,
            "that is no pass: it is far too long",
        ));
    }
    Ok(JoinRequest {
        room,
        client,
        name,
        resume: params.resume.map(ResumeSecret::parse).transpose()?,
        since,
        signed_in,
        pass: params.pass,
    })
}

/// The name a signed-in member goes by: their username, which `?name`, if given, must match.
fn account_name(account: &Account, asked: Option<&str>) -> Result<DisplayName, Invalid> {
    let own = account.username.display_name();
    match asked.map(DisplayName::parse).transpose()? {
        Some(asked) if asked.key() != own.key() => Err(Invalid::new(
            ErrorCode::NameLocked,
            format!("signed in as {own}: leave out ?name, or make it {own}"),
        )),
        _ => Ok(own),
    }
}
