//! Display names: what people call themselves in a room.

use std::fmt;

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use super::{ErrorCode, Invalid};

pub const MAX_NAME_CHARS: usize = 32;

/// A trimmed, NFC-normalized name of 1–32 characters with nothing invisible or direction-changing in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

/// What two names are compared by: "Ana" and "ANA" (or a composed and a decomposed "Zoë") clash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NameKey(String);

impl NameKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let name: String = raw.trim().nfc().collect();
        let len = name.chars().count();
        if len == 0 {
            return Err(Invalid::new(
                ErrorCode::InvalidName,
                "a name cannot be empty",
            ));
        }
        if len > MAX_NAME_CHARS {
            return Err(Invalid::new(
                ErrorCode::InvalidName,
                format!("a name has at most {MAX_NAME_CHARS} characters, this one has {len}"),
            ));
        }
        if let Some(bad) = name.chars().find(|&c| is_forbidden(c)) {
            return Err(Invalid::new(
                ErrorCode::InvalidName,
                format!(
                    "a name cannot contain control, invisible or text-direction characters (found U+{:04X})",
                    bad as u32
                ),
            ));
        }
        Ok(Self(name))
    }

    pub fn key(&self) -> NameKey {
        // Lower-casing can denormalize (e.g. 'İ' becomes 'i' + a combining dot), so normalize again.
        NameKey(self.0.to_lowercase().nfc().collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Characters that would let a name hide, impersonate another, or reorder the text around it.
fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{061C}'              // Arabic letter mark
            | '\u{180E}'              // Mongolian vowel separator
            | '\u{FEFF}'              // zero-width no-break space
        )
}

impl<'de> serde::Deserialize<'de> for DisplayName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::parsed::<D, Self, String>(deserializer, |raw: String| Self::parse(&raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_trimmed() {
        assert_eq!(DisplayName::parse("  alice \t").unwrap().as_str(), "alice");
    }

    #[test]
    fn an_empty_or_blank_name_is_rejected() {
        assert!(DisplayName::parse("").is_err());
        assert!(DisplayName::parse("   ").is_err());
    }

    #[test]
    fn a_name_of_32_characters_is_accepted() {
        assert!(DisplayName::parse(&"é".repeat(32)).is_ok());
    }

    #[test]
    fn a_name_of_33_characters_is_rejected() {
        assert_eq!(
            DisplayName::parse(&"a".repeat(33)).unwrap_err().code,
            ErrorCode::InvalidName
        );
    }

    #[test]
    fn length_is_counted_after_normalization() {
        // 32 × ('e' + combining acute) is 64 chars raw but 32 once composed.
        assert!(DisplayName::parse(&"e\u{301}".repeat(32)).is_ok());
    }

    #[test]
    fn control_bidi_and_zero_width_characters_are_rejected() {
        for raw in [
            "a\u{0}b",
            "a\nb",
            "evil\u{202E}gnp",
            "a\u{200B}b",
            "\u{2066}x",
            "a\u{FEFF}",
        ] {
            assert!(DisplayName::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn names_compare_case_insensitively_after_nfc() {
        let composed = DisplayName::parse("Zo\u{eb}").unwrap();
        let decomposed = DisplayName::parse("ZOE\u{308}").unwrap();
        assert_eq!(composed.key(), decomposed.key());
        assert_ne!(composed.key(), DisplayName::parse("Zoe").unwrap().key());
    }

    #[test]
    fn emoji_and_non_latin_names_are_accepted() {
        for raw in ["🦀 crab", "José", "李雷", "Ωmega"] {
            assert!(DisplayName::parse(raw).is_ok(), "{raw:?} was rejected");
        }
    }
}
