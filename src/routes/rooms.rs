//! The JSON API for bots, scripts and polling clients: create rooms, read them, post to them.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use governor::clock::{Clock, DefaultClock};
use governor::DefaultKeyedRateLimiter;
use serde::Deserialize;
use serde_json::json;

use super::session_cookie::SessionCookie;
use super::{same_origin, ApiError, Proxying};
use crate::accounts::Accounts;

use crate::chat::messages::{ApiPost, ReadHistory};
use crate::chat::registry::Registry;
use crate::domain::{
    DisplayName, Invalid, MessageLifetime, MessageText, Ownership, Password, RoomCode,
    SessionToken, PASS_LIFETIME,
};
use crate::storage::Keep;

/// Per-address flood control for messages posted over the HTTP API.
pub type ApiFlood = DefaultKeyedRateLimiter<IpAddr>;

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

/// The body of `POST /api/rooms`: all of it optional, the body itself included.
#[derive(Deserialize, Default)]
struct CreateRoomBody {
    code: Option<String>,
    /// Messages disappear this many seconds after they are sent.
    expire_after_seconds: Option<u64>,
}

/// What a room is asked to be created as.
#[derive(Debug)]
pub struct CreateRoom {
    pub code: Option<RoomCode>,
    pub lifetime: Option<MessageLifetime>,
}

impl CreateRoom {
    /// Reads the request's body; an empty one asks for a generated code and lasting messages.
    pub fn from_body(body: &[u8]) -> Result<Self, ApiError> {
        let body: CreateRoomBody = if body.iter().all(u8::is_ascii_whitespace) {
            CreateRoomBody::default()
        } else {
            serde_json::from_slice(body)
                .map_err(|err| ApiError::BadRequest(format!("invalid JSON body: {err}")))?
        };
        Ok(Self {
            code: body.code.as_deref().map(RoomCode::parse).transpose()?,
            lifetime: body
                .expire_after_seconds
                .map(MessageLifetime::from_seconds)
                .transpose()?,
        })
    }
}

/// Takes one request from the client address's API quota (posts and room creations share it);
/// `Err` says how long until the address has one again.
fn spend_quota(
    flood: &ApiFlood,
    proxying: &Proxying,
    req: &HttpRequest,
) -> Result<(), std::time::Duration> {
    let Some(address) = proxying.client(req).address else {
        return Ok(());
    };
    flood
        .check_key(&address)
        .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

/// `POST /api/rooms` with an optional `{"code": "…"}`. Answers, once, the room's owner token:
/// only its digest is kept. A signed-in creator's account owns the room as well. Creations count
/// against the address's API quota, so one address cannot take every room the server may hold.
#[tracing::instrument(skip_all)]
pub async fn create(
    req: HttpRequest,
    body: web::Bytes,
    registry: web::Data<Registry>,
    proxying: web::Data<Proxying>,
    accounts: web::Data<Accounts>,
    flood: web::Data<ApiFlood>,
) -> Result<HttpResponse, ApiError> {
    // With a cookie it acts for an account: held to the cross-site rules.
    let session = SessionCookie::of(&req, &proxying).token(&req);
    if session.is_some() {
        same_origin::check(&req, &proxying)?;
    }
    let asked = CreateRoom::from_body(&body)?;
    let creator = match &session {
        Some(token) => accounts.authenticate(token).await?,
        None => None,
    };
    spend_quota(&flood, &proxying, &req).map_err(ApiError::Throttled)?;
    let owner_token = SessionToken::generate();
    let ownership = Ownership {
        token: Some(owner_token.digest()),
        account: creator.map(|account| account.id),
        ..Ownership::default()
    };
    let code = registry
        .create(asked.code, asked.lifetime, ownership)
        .await?;
    let url = format!("{}/r/{code}", proxying.base_url(&req));
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/rooms/{code}")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "code": code, "url": url, "owner_token": owner_token.expose() })))
}

/// `GET /api/rooms/{code}`.
#[tracing::instrument(skip_all, fields(room = %code))]
pub async fn describe(
    code: web::Path<String>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, ApiError> {
    let code = RoomCode::parse(&code)?;
    match registry.describe(&code).await? {
        Some(info) => Ok(HttpResponse::Ok().json(info)),
        None => Err(ApiError::NoSuchRoom(code)),
    }
}

#[derive(Deserialize)]
pub struct Page {
    after: Option<u64>,
    before: Option<u64>,
    limit: Option<usize>,
}

/// `GET /api/rooms/{code}/messages?after=SEQ&limit=N` pages forward from `after` (default: the
/// start); with `before=SEQ` it pages backward, giving the newest `N` messages before that seq.
#[tracing::instrument(skip_all, fields(room = %code))]
pub async fn messages(
    code: web::Path<String>,
    page: web::Query<Page>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be between 1 and {MAX_PAGE}, not {limit}"
        )));
    }
    let code = RoomCode::parse(&code)?;
    let read = ReadHistory {
        after: page.after.unwrap_or(0),
        before: page.before.unwrap_or(u64::MAX),
        limit,
        // Paging backward keeps the messages nearest `before`; forward, those nearest `after`.
        keep: if page.before.is_some() && page.after.is_none() {
            Keep::Newest
        } else {
            Keep::Oldest
        },
    };
    match registry.read(&code, read).await? {
        Some(messages) => Ok(HttpResponse::Ok().json(json!({ "messages": messages }))),
        None => Err(ApiError::NoSuchRoom(code)),
    }
}

#[derive(Deserialize)]
pub struct NewMessage {
    name: String,
    text: String,
}

impl NewMessage {
    /// The post this body asks for, its name and text validated.
    pub fn post(&self) -> Result<ApiPost, Invalid> {
        Ok(ApiPost {
            name: DisplayName::parse(&self.name)?,
            text: MessageText::parse(&self.text)?,
        })
    }
}

/// `POST /api/rooms/{code}/messages` with `{"name": "…", "text": "…"}`: delivered live to the room.
#[tracing::instrument(skip_all, fields(room = %code))]
pub async fn post_message(
    req: HttpRequest,
    code: web::Path<String>,
    body: web::Json<NewMessage>,
    registry: web::Data<Registry>,
    flood: web::Data<ApiFlood>,
    proxying: web::Data<Proxying>,
) -> Result<HttpResponse, ApiError> {
    let post = body.post()?;
    spend_quota(&flood, &proxying, &req).map_err(ApiError::Throttled)?;
    let code = RoomCode::parse(&code)?;
    match registry.ask(&code, post).await? {
        Some(posted) => Ok(HttpResponse::Created().json(posted?)),
        None => Err(ApiError::NoSuchRoom(code)),
    }
}

#[derive(Deserialize)]
pub struct RoomPassword {
    password: String,
}

/// `POST /api/rooms/{code}/pass` with `{password}`: 200 `{pass, expires_in_seconds}`, a pass to
/// put in the upgrade's `?pass=`. The password itself never goes in a URL.
#[tracing::instrument(skip_all, fields(room = %code))]
pub async fn pass(
    req: HttpRequest,
    code: web::Path<String>,
    body: web::Json<RoomPassword>,
    registry: web::Data<Registry>,
    proxying: web::Data<Proxying>,
    accounts: web::Data<Accounts>,
) -> Result<HttpResponse, ApiError> {
    let code = RoomCode::parse(&code)?;
    let password = Password::attempt(body.into_inner().password)?;
    let ownership = registry
        .ownership(&code)
        .await?
        .ok_or_else(|| ApiError::NoSuchRoom(code.clone()))?;
    let hash = ownership.password.ok_or(ApiError::NoPassword)?;
    let from = proxying.client(&req).address;
    let pass = accounts.room_pass(&code, &hash, password, from).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "pass": pass, "expires_in_seconds": PASS_LIFETIME.as_secs() })))
}

/// `GET /api/rooms/{code}/moderation`: the room's moderation log, for its owner only, who shows it
/// with the owning account's session or the owner token (`Authorization: Bearer TOKEN`).
#[tracing::instrument(skip_all, fields(room = %code))]
pub async fn moderation_log(
    req: HttpRequest,
    code: web::Path<String>,
    registry: web::Data<Registry>,
    proxying: web::Data<Proxying>,
    accounts: web::Data<Accounts>,
) -> Result<HttpResponse, ApiError> {
    let code = RoomCode::parse(&code)?;
    let ownership = registry
        .ownership(&code)
        .await?
        .ok_or_else(|| ApiError::NoSuchRoom(code.clone()))?;
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(|token| SessionToken::parse(token.trim()));
    let by_token = bearer.is_some_and(|token| ownership.token == Some(token.digest()));
    let by_account = SessionCookie::of(&req, &proxying)
        .account(&req, &accounts)
        .await?
        .is_some_and(|(account, _)| ownership.account == Some(account.id));
    if !(by_token || by_account) {
        return Err(ApiError::NotOwner);
    }
    let entries = registry.moderation_log(&code).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "entries": entries })))
}
