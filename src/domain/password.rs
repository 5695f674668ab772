//! Passwords as a client sends them: checked for length, never trimmed, never shown.

use std::fmt;

use super::{ErrorCode, Invalid};

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Checked before hashing, so a megabyte of password costs nothing but the request.
pub const MAX_PASSWORD_BYTES: usize = 1_024;

/// A password of 8 characters to 1,024 bytes, exactly as typed. `Debug` hides it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: String) -> Result<Self, Invalid> {
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(Self::too_long());
        }
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(Invalid::new(
                ErrorCode::PasswordTooShort,
                format!("a password has at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        Ok(Self(raw))
    }

    /// A password offered to sign in: only the length limit applies, so a password set under
    /// older, looser rules still works, and a short one is checked (and fails) like any wrong one.
    pub fn attempt(raw: String) -> Result<Self, Invalid> {
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(Self::too_long());
        }
        Ok(Self(raw))
    }

    fn too_long() -> Invalid {
        Invalid::new(
            ErrorCode::PasswordTooLong,
            format!("a password has at most {MAX_PASSWORD_BYTES} bytes"),
        )
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_of_7_characters_is_too_short_and_8_will_do() {
        assert_eq!(
            Password::parse("1234567".into()).unwrap_err().code,
            ErrorCode::PasswordTooShort
        );
        assert!(Password::parse("12345678".into()).is_ok());
        // Characters, not bytes: eight accented letters are eight.
        assert!(Password::parse("é".repeat(8)).is_ok());
    }

    #[test]
    fn a_password_over_1024_bytes_is_refused() {
        assert!(Password::parse("a".repeat(1_024)).is_ok());
        assert_eq!(
            Password::parse("a".repeat(1_025)).unwrap_err().code,
            ErrorCode::PasswordTooLong
        );
    }

    #[test]
    fn a_sign_in_attempt_is_held_to_the_length_limit_only() {
        assert!(Password::attempt("short".into()).is_ok());
        assert_eq!(
            Password::attempt("a".repeat(1_025)).unwrap_err().code,
            ErrorCode::PasswordTooLong
        );
    }

    #[test]
    fn a_password_is_never_trimmed() {
        let password = Password::parse("  spaced out  ".into()).unwrap();
        assert_eq!(password.as_bytes(), b"  spaced out  ");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let password = Password::parse("hunter2hunter2".into()).unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
    }
}
