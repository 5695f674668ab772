//! What happens in a room, as typed values: what the room reports, the broker carries and fan-out encodes.

use serde::{Deserialize, Serialize};

use super::{
    ChatMessage, DisplayName, MessageText, PasswordHash, Role, RoomRules, Sanction, Timestamp, User,
};

/// One thing that happened in a room that its members hear about. Encoded for the wire only at the
/// edge that writes to sockets, so another consumer (a broker, a test, a moderation rule) reads it typed.
/// Serde's form is what a broker carries between instances, not the client protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoomEvent {
    Joined {
        user: User,
        ts: Timestamp,
    },
    Left {
        user: User,
        ts: Timestamp,
    },
    Renamed {
        user: User,
        old_name: DisplayName,
        ts: Timestamp,
    },
    Message(ChatMessage),
    /// Heard by everyone but the typer.
    Typing {
        user: User,
    },
    /// Messages up to this seq have disappeared, in a room whose messages expire.
    Expired {
        through_seq: u64,
    },
    /// A moderator acted on someone: sent them out (not to come back before `until`), or
    /// muted or unmuted them.
    Moderated {
        sanction: Sanction,
        user: User,
        by: User,
        reason: Option<MessageText>,
        until: Option<Timestamp>,
    },
    /// Someone's rank in the room changed (an owner proved the token).
    RoleChanged {
        user: User,
        role: Role,
    },
    /// The owner handed the room to another account: `to` owns it from now on, the owner token
    /// and every claim made with it are void. Members hear it as `to`'s new `role`.
    OwnerChanged {
        to: User,
    },
    /// The author of message `seq` changed its text.
    Edited {
        seq: u64,
        text: MessageText,
        edited_at: Timestamp,
    },
    /// Message `seq` was deleted, by its author or a moderator: it is gone from memory, replay,
    /// the API and storage, where a tombstone keeps its seq.
    Deleted {
        seq: u64,
    },
    /// A moderator changed what the room asks of newcomers.
    RulesChanged {
        rules: RoomRules,
    },
    /// A moderator set the room's password, or with `None` removed it. The hash travels between
    /// instances, which check passes with it; clients hear only the rules.
    PasswordChanged {
        password: Option<PasswordHash>,
        rules: RoomRules,
    },
}
