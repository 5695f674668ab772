//! Who says what in a room: users and the messages they post.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{DisplayName, MessageRef, MessageText, RoomCode, Timestamp};

/// A person's identity in a room; the name may change, the id never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(Uuid);

impl UserId {
    /// A fresh identity for someone joining.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The same identity every time for the same seed: an API poster's, per room and name.
    pub fn derived_from(seed: &str) -> Self {
        Self(Uuid::new_v5(&Uuid::NAMESPACE_URL, seed.as_bytes()))
    }

    /// As storage keeps it.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(self) -> Uuid {
        self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: DisplayName,
    /// Signed in: the id is the account's, the same in every room, and the name its username.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub account: bool,
}

impl User {
    pub fn guest(id: UserId, name: DisplayName) -> Self {
        Self {
            id,
            name,
            account: false,
        }
    }

    /// The member an account is: its id, and its username for a name.
    pub fn of_account(account: &crate::domain::Account) -> Self {
        Self {
            id: account.id,
            name: account.username.display_name(),
            account: true,
        }
    }
}

/// A message as the room keeps it and as every client sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// When its author last changed the text, if they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Timestamp>,
}

#[cfg(test)]
impl ChatMessage {
    /// A message with `seq` and otherwise ordinary contents, for tests.
    pub fn sample(seq: u64) -> Self {
        Self {
            id: Uuid::new_v4(),
            seq,
            room: RoomCode::parse("ROOM").expect("a valid code"),
            from: User::guest(
                UserId::random(),
                DisplayName::parse("ann").expect("a valid name"),
            ),
            text: MessageText::parse("hi").expect("a valid text"),
            ts: Timestamp::now(),
            reference: None,
            edited_at: None,
        }
    }
}
