//! The JSON API for bots, scripts and polling clients: create rooms, read them, post to them.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, Proxying};
use actix::Addr;

use crate::chat::lobby::Lobby;
use crate::chat::messages::{ApiPost, Describe, ReadHistory};
use crate::chat::registry::Registry;
use crate::domain::{DisplayName, MessageLifetime, MessageText, RoomCode};
use crate::startup::ApiFlood;
use crate::storage::Keep;

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

#[derive(Deserialize, Default)]
struct CreateRoom {
    code: Option<String>,
    /// Messages disappear this many seconds after they are sent.
    expire_after_seconds: Option<u64>,
}

/// `POST /api/rooms` with an optional `{"code": "…"}`.
#[tracing::instrument(skip_all)]
pub async fn create(
    req: HttpRequest,
    body: web::Bytes,
    registry: web::Data<Registry>,
    proxying: web::Data<Proxying>,
) -> Result<HttpResponse, ApiError> {
    // An empty body is allowed: it asks for a generated code.
    let body: CreateRoom = if body.iter().all(u8::is_ascii_whitespace) {
        CreateRoom::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|err| ApiError::BadRequest(format!("invalid JSON body: {err}")))?
    };
    let requested = body.code.as_deref().map(RoomCode::parse).transpose()?;
    let lifetime = body
        .expire_after_seconds
        .map(MessageLifetime::from_seconds)
        .transpose()?;
    let code = registry.create(requested, lifetime).await?;
    let url = format!("{}/r/{code}", proxying.base_url(&req));
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/rooms/{code}")))
        .json(json!({ "code": code, "url": url })))
}

/// `GET /api/rooms/{code}`.
#[tracing::instrument(skip_all, fields(room = %code))]
pub async fn describe(
    code: web::Path<String>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, ApiError> {
    let (code, lobby) = find(&code, &registry).await?;
    let info = lobby
        .send(Describe)
        .await
        .map_err(|_| ApiError::NoSuchRoom(code))?;
    Ok(HttpResponse::Ok().json(info))
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
    let (code, lobby) = find(&code, &registry).await?;
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
    let messages = lobby
        .send(read)
        .await
        .map_err(|_| ApiError::NoSuchRoom(code))??;
    Ok(HttpResponse::Ok().json(json!({ "messages": messages })))
}

#[derive(Deserialize)]
pub struct NewMessage {
    name: String,
    text: String,
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
    let body = body.into_inner();
    let post = ApiPost {
        name: DisplayName::parse(&body.name)?,
        text: MessageText::parse(&body.text)?,
    };
    if let Some(address) = proxying.client(&req).address {
        flood
            .check_key(&address)
            .map_err(|_| ApiError::RateLimited)?;
    }
    let (code, lobby) = find(&code, &registry).await?;
    let message = lobby
        .send(post)
        .await
        .map_err(|_| ApiError::NoSuchRoom(code))??;
    Ok(HttpResponse::Created().json(message))
}

async fn find(code: &str, registry: &Registry) -> Result<(RoomCode, Addr<Lobby>), ApiError> {
    let code = RoomCode::parse(code)?;
    match registry.open(&code).await? {
        Some(lobby) => Ok((code, lobby)),
        None => Err(ApiError::NoSuchRoom(code)),
    }
}
