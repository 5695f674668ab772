//! Usernames: the names accounts sign in with, reserved for their holders in every room.

use std::fmt;

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use unicode_security::{GeneralSecurityProfile, MixedScript};

use super::{DisplayName, ErrorCode, Invalid};

pub const MIN_USERNAME_CHARS: usize = 3;
pub const MAX_USERNAME_CHARS: usize = 32;

/// Names nobody may register: they would pass for the server or for a room's staff. Compared by
/// [`AccountKey`], so `ADMIN` and `аdmin` (with a Cyrillic а) are refused too.
const RESERVED: &[&str] = &[
    "admin",
    "administrator",
    "anonymous",
    "everyone",
    "guest",
    "here",
    "hubbub",
    "mod",
    "moderator",
    "null",
    "owner",
    "root",
    "server",
    "staff",
    "support",
    "system",
];

/// An NFC-normalized name of 3–32 letters and digits of one script, plus `_`, `-` and `.`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Username(String);

/// What names are compared by wherever accounts are concerned: case-folded, then reduced to the
/// UTS #39 confusable skeleton, so that names which look alike are one name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountKey(String);

impl AccountKey {
    /// The key of any text, a guest's display name included: a guest may not pass for an account.
    pub fn of(name: &str) -> Self {
        let folded = caseless::default_case_fold_str(&name.nfc().collect::<String>());
        Self(unicode_security::skeleton(&folded).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Username {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let name: String = raw.trim().nfc().collect();
        let invalid = |message: String| Invalid::new(ErrorCode::InvalidUsername, message);
        let len = name.chars().count();
        if !(MIN_USERNAME_CHARS..=MAX_USERNAME_CHARS).contains(&len) {
            return Err(invalid(format!(
                "a username has {MIN_USERNAME_CHARS} to {MAX_USERNAME_CHARS} characters, this one has {len}"
            )));
        }
        if let Some(bad) = name.chars().find(|&c| !is_allowed(c)) {
            return Err(invalid(format!(
                "a username has only letters, digits, `_`, `-` and `.` (found U+{:04X})",
                bad as u32
            )));
        }
        // Mixing scripts is how look-alikes are made (a Latin name with one Cyrillic letter).
        if !name.is_single_script() {
            return Err(invalid(
                "a username is written in one script: do not mix, say, Latin and Cyrillic letters"
                    .to_owned(),
            ));
        }
        let username = Self(name);
        let key = username.key();
        if RESERVED.iter().any(|word| AccountKey::of(word) == key) {
            return Err(Invalid::new(
                ErrorCode::ReservedUsername,
                format!("{username} is reserved; pick another username"),
            ));
        }
        Ok(username)
    }

    pub fn key(&self) -> AccountKey {
        AccountKey::of(&self.0)
    }

    /// The name an account goes by in rooms. Every username is a valid display name: 3–32
    /// letters, digits and separators, nothing invisible.
    pub fn display_name(&self) -> DisplayName {
        DisplayName::parse(&self.0).expect("a username is a valid display name")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Letters and digits that UTS #39 recommends for identifiers (no obsolete or invisible ones), and
/// three separators.
fn is_allowed(c: char) -> bool {
    matches!(c, '_' | '-' | '.') || (c.is_alphanumeric() && c.identifier_allowed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(raw: &str) -> ErrorCode {
        Username::parse(raw).unwrap_err().code
    }

    #[test]
    fn letters_digits_and_separators_of_one_script_are_accepted() {
        for raw in ["ann", "Ann_Lee-2.0", "José", "李雷雷", "Ωμέγα", "петров"] {
            assert!(Username::parse(raw).is_ok(), "{raw:?} was refused");
        }
    }

    #[test]
    fn a_username_of_2_or_33_characters_is_refused() {
        assert_eq!(refusal("ab"), ErrorCode::InvalidUsername);
        assert_eq!(refusal(&"a".repeat(33)), ErrorCode::InvalidUsername);
        assert!(Username::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn spaces_symbols_controls_and_invisible_characters_are_refused() {
        for raw in [
            "ann lee",
            "ann@home",
            "ann\u{0}",
            "an\u{200B}n",
            "ann\u{202E}",
            "ann\u{FEFF}",
            "🦀crab",
        ] {
            assert_eq!(refusal(raw), ErrorCode::InvalidUsername, "{raw:?}");
        }
    }

    #[test]
    fn mixed_scripts_are_refused() {
        // Latin "p" and "y" around a Cyrillic "а".
        assert_eq!(refusal("pаypal"), ErrorCode::InvalidUsername);
        assert_eq!(refusal("Ωmega"), ErrorCode::InvalidUsername);
    }

    #[test]
    fn reserved_words_are_refused_in_any_case() {
        for raw in ["admin", "Admin", "ADMIN", "Moderator", "system", "HUBBUB"] {
            assert_eq!(refusal(raw), ErrorCode::ReservedUsername, "{raw:?}");
        }
        // With a Cyrillic а it is two scripts, refused as such; its key is admin's all the same.
        assert_eq!(refusal("аdmin"), ErrorCode::InvalidUsername);
        assert_eq!(AccountKey::of("аdmin"), AccountKey::of("ADMIN"));
    }

    #[test]
    fn look_alike_names_share_a_key() {
        let key = |raw: &str| Username::parse(raw).unwrap().key();
        assert_eq!(key("paypal"), key("PayPal"));
        // All Cyrillic: "раураl" is one script, and looks like "paypal".
        assert_eq!(key("paypal"), key("раура1"));
        assert_eq!(key("Zo\u{eb}y"), key("ZOE\u{308}Y"));
        assert_ne!(key("ann"), key("anne"));
    }

    #[test]
    fn a_display_name_that_looks_like_a_username_has_its_key() {
        assert_eq!(AccountKey::of("аNN"), Username::parse("ann").unwrap().key());
    }

    #[test]
    fn a_username_is_its_own_display_name() {
        for raw in ["ann", "Ann_Lee-2.0", "李雷雷", &"a".repeat(32)] {
            assert_eq!(Username::parse(raw).unwrap().display_name().as_str(), raw);
        }
    }

    #[test]
    fn names_are_normalized_to_nfc_and_trimmed() {
        let name = Username::parse(" Zoe\u{308} ").unwrap();
        assert_eq!(name.as_str(), "Zo\u{eb}");
    }
}
