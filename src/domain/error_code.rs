//! The machine-readable error codes clients match on, each spelled once.

use serde::Serialize;

/// Every `code` the server puts in an error frame or an API error body; docs/PROTOCOL.md lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UnknownType,
    InvalidName,
    InvalidCode,
    InvalidLifetime,
    Empty,
    TooLong,
    RateLimited,
    NameTaken,
    NoSuchRoom,
    RoomTaken,
    RoomLimit,
    ForbiddenOrigin,
    NotFound,
    TooLarge,
    MethodNotAllowed,
    StorageUnavailable,
    TryAgain,
    InvalidUsername,
    ReservedUsername,
    UsernameTaken,
    PasswordTooShort,
    PasswordTooLong,
    BadCredentials,
    NotSignedIn,
    UnsupportedMediaType,
    CrossSite,
    NameLocked,
    NameReserved,
    Forbidden,
    Muted,
    WrongPassword,
    NoPassword,
    Internal,
}

impl ErrorCode {
    /// The wire spelling, also the `code` label of the refused-frames metric.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownType => "unknown_type",
            Self::InvalidName => "invalid_name",
            Self::InvalidCode => "invalid_code",
            Self::InvalidLifetime => "invalid_lifetime",
            Self::Empty => "empty",
            Self::TooLong => "too_long",
            Self::RateLimited => "rate_limited",
            Self::NameTaken => "name_taken",
            Self::NoSuchRoom => "no_such_room",
            Self::RoomTaken => "room_taken",
            Self::RoomLimit => "room_limit",
            Self::ForbiddenOrigin => "forbidden_origin",
            Self::NotFound => "not_found",
            Self::TooLarge => "too_large",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::StorageUnavailable => "storage_unavailable",
            Self::TryAgain => "try_again",
            Self::InvalidUsername => "invalid_username",
            Self::ReservedUsername => "reserved_username",
            Self::UsernameTaken => "username_taken",
            Self::PasswordTooShort => "password_too_short",
            Self::PasswordTooLong => "password_too_long",
            Self::BadCredentials => "bad_credentials",
            Self::NotSignedIn => "not_signed_in",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::CrossSite => "cross_site",
            Self::NameLocked => "name_locked",
            Self::NameReserved => "name_reserved",
            Self::Forbidden => "forbidden",
            Self::Muted => "muted",
            Self::WrongPassword => "wrong_password",
            Self::NoPassword => "no_password",
            Self::Internal => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `as_str` (metric labels) and serde (frames and bodies) must spell every code alike.
    #[test]
    fn the_metric_label_and_the_wire_spelling_agree() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::UnknownType,
            ErrorCode::InvalidName,
            ErrorCode::InvalidCode,
            ErrorCode::InvalidLifetime,
            ErrorCode::Empty,
            ErrorCode::TooLong,
            ErrorCode::RateLimited,
            ErrorCode::NameTaken,
            ErrorCode::NoSuchRoom,
            ErrorCode::RoomTaken,
            ErrorCode::RoomLimit,
            ErrorCode::ForbiddenOrigin,
            ErrorCode::NotFound,
            ErrorCode::TooLarge,
            ErrorCode::MethodNotAllowed,
            ErrorCode::StorageUnavailable,
            ErrorCode::TryAgain,
            ErrorCode::InvalidUsername,
            ErrorCode::ReservedUsername,
            ErrorCode::UsernameTaken,
            ErrorCode::PasswordTooShort,
            ErrorCode::PasswordTooLong,
            ErrorCode::BadCredentials,
            ErrorCode::NotSignedIn,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::CrossSite,
            ErrorCode::NameLocked,
            ErrorCode::NameReserved,
            ErrorCode::Forbidden,
            ErrorCode::Muted,
            ErrorCode::WrongPassword,
            ErrorCode::NoPassword,
            ErrorCode::Internal,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::from(code.as_str())
            );
        }
    }
}
