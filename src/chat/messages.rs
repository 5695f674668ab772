//! The messages actors send each other: sessions to their lobby, and the lobby back to sessions.

use actix::{Message, Recipient};
use bytestring::ByteString;

use super::ids::{ConnId, ResumeSecret};
use super::protocol::CloseCode;
use super::room::{Refusal, RoomInfo};
use crate::domain::{ChatMessage, DisplayName, MessageRef, MessageText, UserId};
use crate::storage::{Keep, StorageError, Unnumbered};

/// Asks to become a member; the lobby answers the session with a welcome frame or a close.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Join {
    pub conn: ConnId,
    /// Where the lobby tells this connection things: the lobby never names the session's type.
    pub session: Recipient<ToSession>,
    pub name: DisplayName,
    /// The secret from an earlier welcome, to take over that identity.
    pub resume: Option<ResumeSecret>,
    /// The last seq the client saw; history then holds everything after it.
    pub since: Option<u64>,
    /// The account the connection is signed in as; `name` is then its username.
    pub account: Option<UserId>,
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
#[derive(Message, Clone)]
#[rtype(result = "Result<ChatMessage, PostError>")]
pub struct ApiPost {
    pub name: DisplayName,
    pub text: MessageText,
}

/// Why an API post was not sent.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Shared mode: storage could not number it.
    #[error(transparent)]
    Unnumbered(#[from] Unnumbered),
}

/// Asks for the room's code, members and creation time.
#[derive(Message, Clone, Copy)]
#[rtype(result = "RoomInfo")]
pub struct Describe;

/// Asks for up to `limit` messages with `after < seq < before`, in seq order, from the `keep` end.
#[derive(Message, Clone, Copy)]
#[rtype(result = "Result<Vec<ChatMessage>, StorageError>")]
pub struct ReadHistory {
    pub after: u64,
    pub before: u64,
    pub limit: usize,
    pub keep: Keep,
}

/// Everything a lobby can tell a session.
#[derive(Message)]
#[rtype(result = "()")]
pub enum ToSession {
    /// A frame, already encoded, to write to the socket as it is.
    Frame(ByteString),
    /// Close the connection.
    Close(Close),
}

/// A WebSocket close: its code and a reason a person can read.
#[derive(Debug, Clone)]
pub struct Close {
    pub code: CloseCode,
    pub reason: String,
}

impl Close {
    pub fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}
