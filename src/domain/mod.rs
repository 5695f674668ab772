//! Validated values that cross the server's edges: room codes, display names, message text,
//! usernames and passwords.
//!
//! Each type is parsed once where input arrives; past that point the type proves the value is valid.

mod account;
mod chat_message;
mod display_name;
mod error_code;
mod instance_id;
mod lifetime;
mod message_text;
mod password;
mod role;
mod room_code;
mod room_event;
mod room_pass;
mod session_token;
mod timestamp;
mod username;

pub use account::Account;
pub use chat_message::{ChatMessage, User, UserId};
pub use display_name::{DisplayName, NameKey, MAX_NAME_CHARS};
pub use error_code::ErrorCode;
pub use instance_id::InstanceId;
pub use lifetime::MessageLifetime;
pub use message_text::{MessageRef, MessageText, MAX_MESSAGE_CHARS};
pub use password::{Password, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};
pub use role::{Ban, Ownership, Role, RoomRules, Rule, Sanction};
pub use room_code::RoomCode;
pub use room_event::RoomEvent;
pub use room_pass::{PasswordHash, PASS_LIFETIME};
pub use session_token::{SessionToken, TokenDigest};
pub use timestamp::Timestamp;
pub use username::{AccountKey, Username, MAX_USERNAME_CHARS, MIN_USERNAME_CHARS};

/// Why a piece of user input was refused; `code` is the machine-readable word clients match on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub code: ErrorCode,
    pub message: String,
}

/// Reads a validated value through its own parser, so what another instance sends (through the
/// broker) is held to the same rules as what a client sends.
fn parsed<'de, D, T, S>(
    deserializer: D,
    parse: impl FnOnce(S) -> Result<T, Invalid>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    S: serde::Deserialize<'de>,
{
    let raw = S::deserialize(deserializer)?;
    parse(raw).map_err(serde::de::Error::custom)
}

impl Invalid {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
