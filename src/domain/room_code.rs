//! Room codes: short, case-insensitive, free of look-alike characters when generated.

use std::fmt;

use rand::Rng;
use serde::Serialize;

use super::{ErrorCode, Invalid};

/// Generated codes avoid 0/O and 1/I/L so a code read aloud or off a screen is typed right.
const GENERATED_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const GENERATED_LEN: usize = 6;
const MIN_LEN: usize = 3;
const MAX_LEN: usize = 32;

/// A room's code, stored upper-case so that `k7mxq2` and `K7MXQ2` name the same room.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RoomCode(String);

impl RoomCode {
    /// Accepts 3–32 ASCII letters, digits or '-', in any case.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let len = raw.chars().count();
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(Invalid::new(
                ErrorCode::InvalidCode,
                format!("a room code has {MIN_LEN} to {MAX_LEN} characters, this one has {len}"),
            ));
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(Invalid::new(
                ErrorCode::InvalidCode,
                format!("a room code may hold only letters, digits and '-', not {bad:?}"),
            ));
        }
        Ok(Self(raw.to_ascii_uppercase()))
    }

    /// A fresh random code such as `K7MXQ2`.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let code = (0..GENERATED_LEN)
            .map(|_| GENERATED_ALPHABET[rng.random_range(0..GENERATED_ALPHABET.len())] as char)
            .collect();
        Self(code)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for RoomCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::parsed::<D, Self, String>(deserializer, |raw: String| Self::parse(&raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_case_insensitive() {
        assert_eq!(RoomCode::parse("k7mxq2"), RoomCode::parse("K7MXQ2"));
        assert_eq!(RoomCode::parse("my-Room").unwrap().as_str(), "MY-ROOM");
    }

    #[test]
    fn a_code_of_two_characters_is_rejected() {
        assert_eq!(
            RoomCode::parse("ab").unwrap_err().code,
            ErrorCode::InvalidCode
        );
    }

    #[test]
    fn a_code_of_32_characters_is_accepted_and_33_rejected() {
        assert!(RoomCode::parse(&"a".repeat(32)).is_ok());
        assert!(RoomCode::parse(&"a".repeat(33)).is_err());
    }

    #[test]
    fn a_code_with_spaces_slashes_or_non_ascii_is_rejected() {
        for raw in ["my room", "a/b/c", "ümlaut", "abc_def", "abc.def"] {
            assert!(RoomCode::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn generated_codes_are_six_characters_without_look_alikes() {
        for _ in 0..1000 {
            let code = RoomCode::generate();
            assert_eq!(code.as_str().len(), 6);
            assert!(!code.as_str().contains(['0', 'O', '1', 'I', 'L']), "{code}");
            assert_eq!(RoomCode::parse(code.as_str()).unwrap(), code);
        }
    }
}
