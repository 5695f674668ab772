//! The messages actors send each other: sessions to their lobby, and the lobby back to sessions.

use std::sync::Arc;

use actix::{Message, Recipient};
use bytestring::ByteString;

use super::backlog::Backlog;
use super::ids::{ConnId, ResumeSecret};
use super::protocol::CloseCode;
use super::room::{Refusal, RoomInfo};
use crate::domain::{
    ChatMessage, DisplayName, MessageRef, MessageText, Password, Role, Rule, Sanction, TokenDigest,
    UserId,
};
use crate::storage::{Keep, StorageError, Unnumbered};

/// Asks to become a member; the lobby answers the session with a welcome frame or a close.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Join {
    pub conn: ConnId,
    pub outbox: Outbox,
    pub name: DisplayName,
    /// The secret from an earlier welcome, to take over that identity.
    pub resume: Option<ResumeSecret>,
    /// The last seq the client saw; history then holds everything after it.
    pub since: Option<u64>,
    /// The account the connection is signed in as; `name` is then its username.
    pub account: Option<UserId>,
    /// Where the connection comes from, which a guest's ban also covers.
    pub address: Option<std::net::IpAddr>,
    /// A pass into a room with a password.
    pub pass: Option<String>,
}

/// A member proves they own the room with its owner token (the token's digest).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Claim {
    pub conn: ConnId,
    pub token: TokenDigest,
    /// Signed in: make the account the room's owner for good.
    pub bind: bool,
}

/// The author changes a recent message's text.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Edit {
    pub conn: ConnId,
    pub seq: u64,
    pub text: MessageText,
}

/// A member deletes a recent message: their own, or (a moderator) someone's below their rank.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Delete {
    pub conn: ConnId,
    pub seq: u64,
}

/// A moderator acts on the room or on someone in it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Moderate {
    pub conn: ConnId,
    pub act: Act,
}

#[derive(Debug)]
pub enum Act {
    /// A kick, a mute or an unmute of `target`.
    Sanction {
        sanction: Sanction,
        target: UserId,
        reason: Option<MessageText>,
    },
    Rule(Rule),
    /// The owner names a moderator, or makes one a member again.
    SetRole {
        target: UserId,
        role: Role,
    },
    /// A password newcomers need from now on, or with `None`, none.
    SetPassword(Option<Password>),
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

/// Where a lobby tells one connection things. The lobby never names the session's type.
#[derive(Clone)]
pub struct Outbox {
    pub session: Recipient<ToSession>,
    /// The room events queued for the session and not yet written.
    pub backlog: Backlog,
}

/// Everything a lobby can tell a session.
#[derive(Message)]
#[rtype(result = "()")]
pub enum ToSession {
    /// A frame for this connection alone, already encoded, to write as it is: a welcome, or an
    /// answer to its own frame. Past the backlog bound.
    Frame(ByteString),
    /// Room events, each encoded once for every member, to write in order: all that one turn of
    /// the lobby had for this connection. Counted in its [`Backlog`] until written.
    Events(Events),
    /// Close the connection.
    Close(Close),
}

/// One turn's events, shared by every member: each writes those from where it began to listen.
#[derive(Debug, Clone)]
pub struct Events {
    all: Arc<[ByteString]>,
    from: usize,
}

impl Events {
    /// The frames of `all` from index `from` on.
    pub fn new(all: Arc<[ByteString]>, from: usize) -> Self {
        Self { all, from }
    }

    pub fn frames(&self) -> &[ByteString] {
        self.all.get(self.from..).unwrap_or_default()
    }
}

/// A WebSocket close: its code and a reason a person can read.
#[derive(Debug, Clone)]
pub struct Close {
    pub code: CloseCode,
    pub reason: String,
}

/// A close frame's reason fits in 123 bytes (RFC 6455: 125 for the payload, 2 of them the code).
const MAX_CLOSE_REASON_BYTES: usize = 123;

impl Close {
    /// `reason` is cut, at a character boundary, to what a close frame can carry.
    pub fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        if reason.len() > MAX_CLOSE_REASON_BYTES {
            let mut end = MAX_CLOSE_REASON_BYTES - '…'.len_utf8();
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
            reason.push('…');
        }
        Self { code, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_reason_is_cut_to_fit_a_close_frame() {
        let long = Close::new(CloseCode::Kicked, "é".repeat(100));
        assert!(
            long.reason.len() <= MAX_CLOSE_REASON_BYTES,
            "{}",
            long.reason.len()
        );
        assert!(long.reason.ends_with('…'));
        assert_eq!(Close::new(CloseCode::Kicked, "short").reason, "short");
    }
}
