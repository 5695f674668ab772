//! The WebSocket wire format: JSON text frames in both directions, tagged by `type`.
//!
//! Documented in docs/PROTOCOL.md; the lobby never sees JSON, the session never sees room state.

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ids::ResumeSecret;
use super::room::Welcome;
use crate::domain::{
    ChatMessage, DisplayName, ErrorCode, Invalid, MessageText, Role, RoomCode, RoomEvent,
    RoomRules, Sanction, Timestamp, User, UserId,
};

/// Why the server closes a WebSocket: RFC 6455's codes where one fits, application codes
/// (4000–4999) otherwise, each sent with a readable reason. docs/PROTOCOL.md lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// The frames broke the WebSocket protocol.
    Protocol,
    /// A binary frame: only JSON text frames are spoken.
    Unsupported,
    /// A text frame that is not UTF-8.
    InvalidPayload,
    /// A frame or reassembled message over the size bound.
    TooBig,
    /// The server is restarting (RFC 6455's "service restart"); reconnect and resume.
    ServiceRestart,
    /// Try again shortly (RFC 6455's "try again later"): the room could not be reached just now.
    TryAgain,
    /// A newer connection resumed this identity.
    Replaced,
    /// The connection's outbound backlog passed its bound (the client stopped reading).
    TooSlow,
    /// The upgrade's parameters were invalid (name, `since`, `resume`).
    BadRequest,
    /// No room has that code.
    NoSuchRoom,
    /// The client answered no ping within the client timeout.
    Timeout,
    /// Someone in the room already uses that name.
    NameTaken,
    /// The room already has its maximum of members.
    RoomFull,
    /// The client's address already holds its maximum of connections.
    TooManyConnections,
    /// A moderator sent this person out of the room.
    Kicked,
    /// The room is locked to newcomers.
    Locked,
    /// The room has a password, and the join brought no good pass.
    PasswordRequired,
    /// The session this connection was signed in with has ended (logout, password change,
    /// account deleted).
    SignedOut,
}

impl CloseCode {
    /// The number on the wire.
    pub fn number(self) -> u16 {
        match self {
            Self::Protocol => 1002,
            Self::Unsupported => 1003,
            Self::InvalidPayload => 1007,
            Self::TooBig => 1009,
            Self::ServiceRestart => 1012,
            Self::TryAgain => 1013,
            Self::Replaced => 4000,
            Self::TooSlow => 4008,
            Self::BadRequest => 4400,
            Self::NoSuchRoom => 4404,
            Self::Timeout => 4408,
            Self::NameTaken => 4409,
            Self::RoomFull => 4413,
            Self::TooManyConnections => 4429,
            Self::SignedOut => 4401,
            Self::Kicked => 4403,
            Self::Locked => 4423,
            Self::PasswordRequired => 4407,
        }
    }

    /// The `reason` label of the disconnects metric for a connection the server closed this way.
    pub fn metric_reason(self) -> &'static str {
        match self {
            Self::ServiceRestart => "restart",
            Self::Replaced => "replaced",
            Self::TooSlow => "too_slow",
            Self::Timeout => "timeout",
            Self::SignedOut => "signed_out",
            Self::Kicked => "kicked",
            Self::Protocol | Self::Unsupported | Self::InvalidPayload | Self::TooBig => "protocol",
            Self::TryAgain
            | Self::BadRequest
            | Self::NoSuchRoom
            | Self::NameTaken
            | Self::RoomFull
            | Self::Locked
            | Self::PasswordRequired
            | Self::TooManyConnections => "other",
        }
    }
}

/// What a client may send. Unknown fields (a forged `from`, `id`, `seq` or `ts`) are ignored.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Message {
        text: String,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    Rename {
        name: String,
    },
    Typing {},
    /// Proves ownership with the room's owner token; `bind` (signed in) makes the account owner.
    Claim {
        owner_token: String,
        #[serde(default)]
        bind: bool,
    },
    /// Sends someone out of the room for a while (moderators and owners).
    Kick {
        user_id: UserId,
        reason: Option<String>,
    },
    /// Refuses someone's messages until unmuted (moderators and owners).
    Mute {
        user_id: UserId,
        reason: Option<String>,
    },
    Unmute {
        user_id: UserId,
    },
    /// Sends someone out and keeps them out until unbanned (moderators and owners).
    Ban {
        user_id: UserId,
        reason: Option<String>,
    },
    Unban {
        user_id: UserId,
    },
    Lock {},
    Unlock {},
    /// Admits only signed-in members from now on, or guests again.
    AccountsOnly {
        on: bool,
    },
    /// Newcomers need this password from now on; `null` removes it. The field is required: a frame
    /// that forgot it must not pass for a removal.
    SetPassword {
        #[serde(deserialize_with = "required_or_null")]
        password: Option<String>,
    },
    /// The owner names a signed-in member moderator, or makes them a member again.
    SetRole {
        user_id: UserId,
        role: Role,
    },
    /// The author changes the text of one of their recent messages.
    Edit {
        seq: u64,
        text: String,
    },
    /// Deletes a recent message: the author's own, or a moderator's pick below their rank.
    Delete {
        seq: u64,
    },
}

const CLIENT_TYPES: [&str; 16] = [
    "edit",
    "set_password",
    "delete",
    "ban",
    "unban",
    "set_role",
    "message",
    "rename",
    "typing",
    "claim",
    "kick",
    "mute",
    "unmute",
    "lock",
    "unlock",
    "accounts_only",
];

/// A field that must be present, though it may be `null`; serde would default a missing `Option`.
fn required_or_null<'de, D: serde::Deserializer<'de>>(
    field: D,
) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(field)
}

impl ClientFrame {
    /// Parses a text frame, saying precisely what is wrong when it cannot.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        serde_json::from_str(text).map_err(|err| explain(text, err))
    }

    /// The `ref` of a message frame, echoed on whatever answers it.
    pub fn reference(&self) -> Option<&str> {
        match self {
            ClientFrame::Message { reference, .. } => reference.as_deref(),
            _ => None,
        }
    }
}

/// Tells a frame of an unknown type apart from a malformed one; runs only on the error path.
fn explain(text: &str, err: serde_json::Error) -> Invalid {
    let bad_request = |message: String| Invalid::new(ErrorCode::BadRequest, message);
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(fields)) => match fields.get("type") {
            Some(Value::String(kind)) if !CLIENT_TYPES.contains(&kind.as_str()) => Invalid::new(
                ErrorCode::UnknownType,
                format!(
                    "unknown frame type {kind:?}; expected one of {}",
                    CLIENT_TYPES.join(", ")
                ),
            ),
            Some(Value::String(_)) => bad_request(err.to_string()),
            Some(_) => bad_request("`type` must be a string".into()),
            None => bad_request("a frame needs a `type` field".into()),
        },
        Ok(_) => bad_request("a frame must be a JSON object".into()),
        Err(_) => bad_request(format!("a frame must be JSON: {err}")),
    }
}

/// What the server sends. Each is encoded once and the bytes shared by every recipient.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerFrame<'a> {
    Welcome {
        room: &'a RoomCode,
        you: You<'a>,
        resume: &'a ResumeSecret,
        members: &'a [&'a User],
        history: &'a [&'a ChatMessage],
        /// True when some messages after the requested `since` are not included.
        truncated: bool,
        /// Set in a room whose messages disappear after this many seconds.
        #[serde(skip_serializing_if = "Option::is_none")]
        expire_after_seconds: Option<u64>,
        /// The members ranked above member; everyone else is a member.
        roles: Vec<Ranked>,
        /// The ids of the members who are muted.
        muted: &'a [UserId],
        #[serde(flatten)]
        rules: RoomRules,
    },
    Message(&'a ChatMessage),
    Joined {
        user: &'a User,
        ts: Timestamp,
    },
    Left {
        user: &'a User,
        ts: Timestamp,
    },
    Renamed {
        user: &'a User,
        old_name: &'a DisplayName,
        ts: Timestamp,
    },
    Typing {
        user: &'a User,
    },
    /// Messages up to this seq have disappeared (in a room whose messages expire).
    Expired {
        through_seq: u64,
    },
    Moderated {
        action: Sanction,
        user: &'a User,
        by: &'a User,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a MessageText>,
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<Timestamp>,
    },
    Role {
        user: &'a User,
        role: Role,
    },
    RoomUpdated {
        #[serde(flatten)]
        rules: RoomRules,
    },
    Edited {
        seq: u64,
        text: &'a MessageText,
        edited_at: Timestamp,
    },
    Deleted {
        seq: u64,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
        /// The refused message's `ref`, so the sender knows which pending message failed.
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
    },
}

/// The welcome's `you`: who you are, and your rank.
#[derive(Debug, Serialize)]
struct You<'a> {
    #[serde(flatten)]
    user: &'a User,
    role: Role,
}

#[derive(Debug, Serialize)]
struct Ranked {
    id: UserId,
    role: Role,
}

impl ServerFrame<'_> {
    fn encode(&self) -> ByteString {
        // Every field is a string, number, bool or a struct of those: serialization cannot fail.
        serde_json::to_string(self)
            .expect("server frames always serialize")
            .into()
    }
}

/// The frame that tells members about `event`.
pub fn event_frame(event: &RoomEvent) -> ByteString {
    match event {
        RoomEvent::Joined { user, ts } => ServerFrame::Joined { user, ts: *ts },
        RoomEvent::Left { user, ts } => ServerFrame::Left { user, ts: *ts },
        RoomEvent::Renamed { user, old_name, ts } => ServerFrame::Renamed {
            user,
            old_name,
            ts: *ts,
        },
        RoomEvent::Message(message) => ServerFrame::Message(message),
        RoomEvent::Typing { user } => ServerFrame::Typing { user },
        RoomEvent::Expired { through_seq } => ServerFrame::Expired {
            through_seq: *through_seq,
        },
        RoomEvent::Moderated {
            sanction,
            user,
            by,
            reason,
            until,
        } => ServerFrame::Moderated {
            action: *sanction,
            user,
            by,
            reason: reason.as_ref(),
            until: *until,
        },
        RoomEvent::RoleChanged { user, role } => ServerFrame::Role { user, role: *role },
        RoomEvent::OwnerChanged { to } => ServerFrame::Role {
            user: to,
            role: Role::Owner,
        },
        RoomEvent::RulesChanged { rules } | RoomEvent::PasswordChanged { rules, .. } => {
            ServerFrame::RoomUpdated { rules: *rules }
        }
        RoomEvent::Edited {
            seq,
            text,
            edited_at,
        } => ServerFrame::Edited {
            seq: *seq,
            text,
            edited_at: *edited_at,
        },
        RoomEvent::Deleted { seq } => ServerFrame::Deleted { seq: *seq },
    }
    .encode()
}

/// The first frame a member gets: who they are, who is here, and what they missed.
pub fn welcome_frame(welcome: &Welcome<'_>) -> ByteString {
    ServerFrame::Welcome {
        room: welcome.room,
        you: You {
            user: welcome.you,
            role: welcome.role,
        },
        resume: welcome.resume,
        members: &welcome.members,
        history: &welcome.history,
        truncated: welcome.truncated,
        expire_after_seconds: welcome.expire_after_seconds,
        roles: welcome
            .ranked
            .iter()
            .map(|&(id, role)| Ranked { id, role })
            .collect(),
        muted: &welcome.muted,
        rules: welcome.rules,
    }
    .encode()
}

/// Why a client's frame was refused; `reference` names the refused message.
pub fn error_frame(invalid: &Invalid, reference: Option<&str>) -> ByteString {
    ServerFrame::Error {
        code: invalid.code,
        message: &invalid.message,
        reference,
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(text: &str) -> ErrorCode {
        ClientFrame::parse(text).unwrap_err().code
    }

    #[test]
    fn a_message_frame_parses_with_an_optional_ref() {
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"message","text":"hi","ref":"r1"}"#),
            Ok(ClientFrame::Message { text, reference: Some(r) }) if text == "hi" && r == "r1"
        ));
        assert!(ClientFrame::parse(r#"{"type":"typing"}"#).is_ok());
    }

    #[test]
    fn forged_identity_fields_are_ignored() {
        let frame = r#"{"type":"message","text":"hi","from":{"id":"x","name":"root"},"seq":1}"#;
        assert!(ClientFrame::parse(frame).is_ok());
    }

    #[test]
    fn not_json_is_a_bad_request() {
        assert_eq!(code_of("hello"), ErrorCode::BadRequest);
        assert_eq!(code_of("[1,2]"), ErrorCode::BadRequest);
    }

    #[test]
    fn an_unknown_type_is_named_as_such() {
        assert_eq!(
            code_of(r#"{"type":"shout","text":"hi"}"#),
            ErrorCode::UnknownType
        );
    }

    #[test]
    fn a_missing_or_mistyped_field_is_a_bad_request() {
        assert_eq!(code_of(r#"{"type":"message"}"#), ErrorCode::BadRequest);
        assert_eq!(
            code_of(r#"{"type":"message","text":5}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(code_of(r#"{"text":"hi"}"#), ErrorCode::BadRequest);
        assert_eq!(code_of(r#"{"type":7}"#), ErrorCode::BadRequest);
    }
}
