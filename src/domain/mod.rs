//! Validated values that cross the server's edges: room codes, display names, message text.
//!
//! Each type is parsed once where input arrives; past that point the type proves the value is valid.

mod chat_message;
mod display_name;
mod error_code;
mod lifetime;
mod message_text;
mod room_code;
mod room_event;
mod timestamp;

pub use chat_message::{ChatMessage, User, UserId};
pub use display_name::{DisplayName, NameKey, MAX_NAME_CHARS};
pub use error_code::ErrorCode;
pub use lifetime::MessageLifetime;
pub use message_text::{MessageRef, MessageText, MAX_MESSAGE_CHARS};
pub use room_code::RoomCode;
pub use room_event::RoomEvent;
pub use timestamp::Timestamp;

/// Why a piece of user input was refused; `code` is the machine-readable word clients match on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub code: ErrorCode,
    pub message: String,
}

impl Invalid {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
