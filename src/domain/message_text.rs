//! Message text and the client's correlation `ref`.

use std::sync::Arc;

use serde::Serialize;

use super::{ErrorCode, Invalid};

pub const MAX_MESSAGE_CHARS: usize = 4_000;
const MAX_REF_CHARS: usize = 64;

/// A chat message's text: not blank, at most 4,000 characters, kept exactly as sent.
///
/// Shared (`Arc`) because the same text sits in the room's history and in frames being built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MessageText(Arc<str>);

impl MessageText {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.trim().is_empty() {
            return Err(Invalid::new(ErrorCode::Empty, "a message cannot be empty"));
        }
        let len = raw.chars().count();
        if len > MAX_MESSAGE_CHARS {
            return Err(Invalid::new(
                ErrorCode::TooLong,
                format!("a message has at most {MAX_MESSAGE_CHARS} characters, this one has {len}"),
            ));
        }
        Ok(Self(raw.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client-chosen string echoed back on the resulting `message`, so a sender can match its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MessageRef(String);

impl MessageRef {
    pub fn parse(raw: String) -> Result<Self, Invalid> {
        let len = raw.chars().count();
        if len > MAX_REF_CHARS {
            return Err(Invalid::new(
                ErrorCode::BadRequest,
                format!("`ref` has at most {MAX_REF_CHARS} characters, this one has {len}"),
            ));
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for MessageText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::parsed::<D, Self, String>(deserializer, |raw: String| Self::parse(&raw))
    }
}

impl<'de> serde::Deserialize<'de> for MessageRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::parsed::<D, Self, String>(deserializer, Self::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_text_is_rejected_as_empty() {
        for raw in ["", " ", "\n\t "] {
            assert_eq!(MessageText::parse(raw).unwrap_err().code, ErrorCode::Empty);
        }
    }

    #[test]
    fn text_of_4000_characters_is_accepted_and_4001_is_too_long() {
        assert!(MessageText::parse(&"ß".repeat(4_000)).is_ok());
        assert_eq!(
            MessageText::parse(&"a".repeat(4_001)).unwrap_err().code,
            ErrorCode::TooLong
        );
    }

    #[test]
    fn text_is_kept_exactly_as_sent() {
        let raw = "  two\nlines <b>not html</b>  ";
        assert_eq!(MessageText::parse(raw).unwrap().as_str(), raw);
    }

    #[test]
    fn a_ref_over_64_characters_is_rejected() {
        assert!(MessageRef::parse("a".repeat(64)).is_ok());
        assert_eq!(
            MessageRef::parse("a".repeat(65)).unwrap_err().code,
            ErrorCode::BadRequest
        );
    }
}
