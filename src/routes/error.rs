//! The JSON API's error type: every failure becomes `{"error": {"code", "message"}}` with its status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::chat::messages::NameTaken;
use crate::chat::registry::CreateError;
use crate::domain::{Invalid, RoomCode};
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("{0}")]
    BadRequest(String),
    #[error("no room has the code {0}")]
    NoSuchRoom(RoomCode),
    #[error("the room code {0} is already taken")]
    RoomTaken(RoomCode),
    #[error(transparent)]
    NameTaken(#[from] NameTaken),
    #[error("pages from this origin may not open WebSockets here")]
    ForbiddenOrigin,
    #[error("too many requests: slow down")]
    RateLimited,
    #[error("no such endpoint")]
    NotFound,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the server holds its maximum of {0} rooms; try again later")]
    RoomLimit(usize),
    #[error("the request body is larger than the {0} bytes allowed")]
    TooLarge(usize),
}

impl From<CreateError> for ApiError {
    fn from(err: CreateError) -> Self {
        match err {
            CreateError::Taken(code) => Self::RoomTaken(code),
            CreateError::Storage(err) => Self::Storage(err),
            CreateError::Full(max) => Self::RoomLimit(max),
        }
    }
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(invalid) => invalid.code,
            Self::BadRequest(_) => "bad_request",
            Self::NoSuchRoom(_) => "no_such_room",
            Self::RoomTaken(_) => "room_taken",
            Self::NameTaken(_) => "name_taken",
            Self::ForbiddenOrigin => "forbidden_origin",
            Self::RateLimited => "rate_limited",
            Self::NotFound => "not_found",
            Self::Storage(_) => "storage_unavailable",
            Self::RoomLimit(_) => "room_limit",
            Self::TooLarge(_) => "too_large",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Invalid(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NoSuchRoom(_) | Self::NotFound => StatusCode::NOT_FOUND,
            Self::RoomTaken(_) | Self::NameTaken(_) => StatusCode::CONFLICT,
            Self::ForbiddenOrigin => StatusCode::FORBIDDEN,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Storage(_) | Self::RoomLimit(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Storage(err) = self {
            tracing::error!(error = %err, "an API request failed on storage");
        }
        HttpResponse::build(self.status_code())
            .json(json!({ "error": { "code": self.code(), "message": self.to_string() } }))
    }
}
