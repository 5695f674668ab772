//! The messages actors send each other: sessions to their lobby, and the lobby back to sessions.

use actix::{Addr, Message};
use bytestring::ByteString;
use serde::Serialize;
use uuid::Uuid;

use super::session::Session;
use crate::domain::{ChatMessage, DisplayName, MessageRef, MessageText, RoomCode, Timestamp, User};
use crate::storage::{Keep, StorageError};

/// Names one WebSocket connection; a user who reconnects keeps their user id but gets a new `ConnId`.
pub type ConnId = Uuid;

/// Asks to become a member; the lobby answers the session with a welcome `RoomEvent` or a `Close`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Join {
    pub conn: ConnId,
    pub session: Addr<Session>,
    pub name: DisplayName,
    /// The secret from an earlier welcome, to take over that identity.
    pub resume: Option<String>,
    /// The last seq the client saw; history then holds everything after it.
    pub since: Option<u64>,
}

/// The connection has closed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub conn: ConnId,
}

/// A member sends a chat message.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Post {
    pub conn: ConnId,
    pub text: MessageText,
    pub reference: Option<MessageRef>,
}

/// A member changes their display name.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Rename {
    pub conn: ConnId,
    pub name: DisplayName,
}

/// A member is typing.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Typing {
    pub conn: ConnId,
}

/// The server is stopping: close every member's connection with 1012 so clients come back on their own.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Someone without a connection posts over the HTTP API.
#[derive(Message)]
#[rtype(result = "Result<ChatMessage, NameTaken>")]
pub struct ApiPost {
    pub name: DisplayName,
    pub text: MessageText,
}

/// An API poster asked for the name of someone connected to the room.
#[derive(Debug, thiserror::Error)]
#[error("{0} is connected to this room; pick another name")]
pub struct NameTaken(pub DisplayName);

/// Asks for the room's code, members and creation time.
#[derive(Message)]
#[rtype(result = "RoomInfo")]
pub struct Describe;

#[derive(Debug, Serialize)]
pub struct RoomInfo {
    pub code: RoomCode,
    pub members: Vec<User>,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_after_seconds: Option<u64>,
}

/// Asks for up to `limit` messages with `after < seq < before`, in seq order, from the `keep` end.
#[derive(Message)]
#[rtype(result = "Result<Vec<ChatMessage>, StorageError>")]
pub struct ReadHistory {
    pub after: u64,
    pub before: u64,
    pub limit: usize,
    pub keep: Keep,
}

/// Lobby to session: a frame, already encoded, to write to the socket as it is.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomEvent(pub ByteString);

/// Lobby to session: close the connection with this WebSocket close code and reason.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Close {
    pub code: u16,
    pub reason: String,
}

impl Close {
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}
