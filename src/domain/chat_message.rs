//! Who says what in a room: users and the messages they post.

use serde::Serialize;
use uuid::Uuid;

use super::{DisplayName, MessageRef, MessageText, RoomCode, Timestamp};

/// A person's identity in a room; the name may change, the id never does.
pub type UserId = Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: UserId,
    pub name: DisplayName,
}

/// A message as the room keeps it and as every client sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    pub id: Uuid,
    /// Strictly increasing within a room; clients resume with the last one they saw.
    pub seq: u64,
    pub room: RoomCode,
    pub from: User,
    pub text: MessageText,
    pub ts: Timestamp,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<MessageRef>,
}
