//! The WebSocket wire format: JSON text frames in both directions, tagged by `type`.
//!
//! Documented in docs/PROTOCOL.md; the lobby never sees JSON, the session never sees room state.

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{ChatMessage, DisplayName, Invalid, RoomCode, Timestamp, User};

// Application close codes (4000–4999), sent with a readable reason; docs/PROTOCOL.md lists them.
/// The server is restarting (RFC 6455's "service restart"); reconnect and resume.
pub const CLOSE_SERVICE_RESTART: u16 = 1012;
/// A newer connection resumed this identity.
pub const CLOSE_REPLACED: u16 = 4000;
/// The connection's outbound backlog passed its bound (the client stopped reading).
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// The room already has its maximum of members.
pub const CLOSE_ROOM_FULL: u16 = 4413;
/// The client's address already holds its maximum of connections.
pub const CLOSE_TOO_MANY_CONNECTIONS: u16 = 4429;
/// The upgrade's parameters were invalid (name, `since`).
pub const CLOSE_BAD_REQUEST: u16 = 4400;
/// No room has that code.
pub const CLOSE_NO_SUCH_ROOM: u16 = 4404;
/// The client answered no ping within the client timeout.
pub const CLOSE_TIMEOUT: u16 = 4408;
/// Someone in the room already uses that name.
pub const CLOSE_NAME_TAKEN: u16 = 4409;

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
}

const CLIENT_TYPES: [&str; 3] = ["message", "rename", "typing"];

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
    let bad_request = |message: String| Invalid::new("bad_request", message);
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(fields)) => match fields.get("type") {
            Some(Value::String(kind)) if !CLIENT_TYPES.contains(&kind.as_str()) => Invalid::new(
                "unknown_type",
                format!("unknown frame type {kind:?}; expected one of message, rename, typing"),
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
pub enum ServerFrame<'a> {
    Welcome {
        room: &'a RoomCode,
        you: &'a User,
        resume: &'a str,
        members: Vec<&'a User>,
        history: Vec<&'a ChatMessage>,
        /// True when some messages after the requested `since` are not included.
        truncated: bool,
        /// Set in a room whose messages disappear after this many seconds.
        #[serde(skip_serializing_if = "Option::is_none")]
        expire_after_seconds: Option<u64>,
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
    Error {
        code: &'a str,
        message: &'a str,
        /// The refused message's `ref`, so the sender knows which pending message failed.
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
    },
}

impl ServerFrame<'_> {
    pub fn encode(&self) -> ByteString {
        // Every field is a string, number, bool or a struct of those: serialization cannot fail.
        serde_json::to_string(self)
            .expect("server frames always serialize")
            .into()
    }

    pub fn error(invalid: &Invalid, reference: Option<&str>) -> ByteString {
        ServerFrame::Error {
            code: invalid.code,
            message: &invalid.message,
            reference,
        }
        .encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(text: &str) -> &'static str {
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
        assert_eq!(code_of("hello"), "bad_request");
        assert_eq!(code_of("[1,2]"), "bad_request");
    }

    #[test]
    fn an_unknown_type_is_named_as_such() {
        assert_eq!(code_of(r#"{"type":"shout","text":"hi"}"#), "unknown_type");
    }

    #[test]
    fn a_missing_or_mistyped_field_is_a_bad_request() {
        assert_eq!(code_of(r#"{"type":"message"}"#), "bad_request");
        assert_eq!(code_of(r#"{"type":"message","text":5}"#), "bad_request");
        assert_eq!(code_of(r#"{"text":"hi"}"#), "bad_request");
        assert_eq!(code_of(r#"{"type":7}"#), "bad_request");
    }
}
