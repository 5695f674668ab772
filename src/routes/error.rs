//! The JSON API's error type: every failure becomes `{"error": {"code", "message"}}` with its status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::accounts::AccountError;
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
    #[error("requests from other sites may not act with a session here")]
    CrossSite,
    #[error("the body must be JSON, sent as Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("the username {0} is taken")]
    UsernameTaken(String),
    #[error("wrong username or password")]
    BadCredentials,
    #[error("not signed in")]
    NotSignedIn,
    #[error("that is not this room's password")]
    WrongPassword,
    #[error("this room has no password: join it as it is")]
    NoPassword,
    #[error("only the room's owner may see this")]
    NotOwner,
    #[error("too many requests; try again in {} s", retry_after_seconds(*.0))]
    Throttled(std::time::Duration),
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

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        match err {
            AccountError::UsernameTaken(name) => Self::UsernameTaken(name.to_string()),
            AccountError::BadCredentials => Self::BadCredentials,
            AccountError::WrongPassword => Self::WrongPassword,
            AccountError::Throttled(throttled) => Self::Throttled(throttled.0),
            AccountError::Storage(err) => Self::Storage(err),
            AccountError::Unexpected(err) => Self::Unexpected(err),
        }
    }
}

/// Whole seconds to wait, rounded up: `Retry-After` takes no fractions, and 0 would invite a retry now.
fn retry_after_seconds(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
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
            // An API poster is no member: nothing else the room refuses applies to it.
            other => Self::Unexpected(anyhow::anyhow!(other)),
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
            Self::CrossSite => ErrorCode::CrossSite,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::UsernameTaken(_) => ErrorCode::UsernameTaken,
            Self::BadCredentials => ErrorCode::BadCredentials,
            Self::NotSignedIn => ErrorCode::NotSignedIn,
            Self::WrongPassword => ErrorCode::WrongPassword,
            Self::NoPassword => ErrorCode::NoPassword,
            Self::NotOwner => ErrorCode::Forbidden,
            Self::Throttled(_) => ErrorCode::RateLimited,
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
            Self::RoomTaken(_) | Self::NameTaken(_) | Self::UsernameTaken(_) => {
                StatusCode::CONFLICT
            }
            Self::ForbiddenOrigin | Self::CrossSite | Self::NotOwner => StatusCode::FORBIDDEN,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BadCredentials | Self::NotSignedIn | Self::WrongPassword => {
                StatusCode::UNAUTHORIZED
            }
            Self::NoPassword => StatusCode::CONFLICT,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
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
        let mut response = HttpResponse::build(self.status_code());
        if let Self::Throttled(wait) = self {
            response.insert_header((
                actix_web::http::header::RETRY_AFTER,
                retry_after_seconds(*wait).to_string(),
            ));
        }
        response.json(json!({ "error": { "code": self.code(), "message": self.to_string() } }))
    }
}
