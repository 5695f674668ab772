//! The JSON API's error type: every failure becomes `{"error": {"code", "message"}}` with its status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::chat::messages::PostError;
use crate::chat::registry::{CreateError, ReachError};
use crate::chat::room::Refusal;
use crate::domain::{ErrorCode, Invalid, RoomCode};
use crate::storage::{StorageError, Unnumbered};

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
    #[error("{0} is connected to this room; pick another name")]
    NameTaken(String),
    #[error("pages from this origin may not open WebSockets here")]
    ForbiddenOrigin,
    #[error("too many requests: slow down")]
    RateLimited,
    #[error("no such endpoint")]
    NotFound,
    /// The cause goes to the log; the client is told only that storage is unavailable.
    #[error("rooms cannot be reached right now; try again shortly")]
    Storage(#[from] StorageError),
    #[error("the room is being reloaded; try again")]
    TryAgain,
    #[error("the server holds its maximum of {0} rooms; try again later")]
    RoomLimit(usize),
    #[error("the request body is larger than the {0} bytes allowed")]
    TooLarge(usize),
    /// Anything else: logged with its cause, answered with a fixed text.
    #[error("something went wrong on our side; please try again")]
    Unexpected(#[from] anyhow::Error),
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

impl From<ReachError> for ApiError {
    fn from(err: ReachError) -> Self {
        match err {
            ReachError::Unloading => Self::TryAgain,
            ReachError::Storage(err) => Self::Storage(err),
        }
    }
}

impl From<PostError> for ApiError {
    fn from(err: PostError) -> Self {
        match err {
            PostError::Refused(refusal) => refusal.into(),
            PostError::Unnumbered(Unnumbered::Storage(err)) => Self::Storage(err),
            PostError::Unnumbered(Unnumbered::NoSuchRoom) => Self::TryAgain,
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NameTaken(name) => Self::NameTaken(name.to_string()),
            // An API poster is no member: a full room does not refuse it.
            other @ Refusal::RoomFull(_) => Self::Unexpected(anyhow::anyhow!(other)),
        }
    }
}

impl ApiError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(invalid) => invalid.code,
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::NoSuchRoom(_) => ErrorCode::NoSuchRoom,
            Self::RoomTaken(_) => ErrorCode::RoomTaken,
            Self::NameTaken(_) => ErrorCode::NameTaken,
            Self::ForbiddenOrigin => ErrorCode::ForbiddenOrigin,
            Self::RateLimited => ErrorCode::RateLimited,
            Self::NotFound => ErrorCode::NotFound,
            Self::Storage(_) => ErrorCode::StorageUnavailable,
            Self::TryAgain => ErrorCode::TryAgain,
            Self::RoomLimit(_) => ErrorCode::RoomLimit,
            Self::TooLarge(_) => ErrorCode::TooLarge,
            Self::Unexpected(_) => ErrorCode::Internal,
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
            Self::Storage(_) | Self::TryAgain | Self::RoomLimit(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Storage(err) => tracing::error!(error = %err, "an API request failed on storage"),
            Self::Unexpected(err) => {
                tracing::error!(error = format!("{err:#}"), "an API request failed")
            }
            _ => {}
        }
        HttpResponse::build(self.status_code())
            .json(json!({ "error": { "code": self.code(), "message": self.to_string() } }))
    }
}
