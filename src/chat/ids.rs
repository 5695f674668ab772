//! The identifiers of the realtime core: a connection, and the secret that resumes an identity.

use std::fmt;

use serde::Serialize;
use uuid::Uuid;

use crate::domain::{ErrorCode, Invalid};

/// Names one WebSocket connection; a user who reconnects keeps their user id but gets a new `ConnId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(Uuid);

impl ConnId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The longest resume secret a client may present; the server's own are 32 characters.
const MAX_SECRET_CHARS: usize = 64;

/// What a client presents to come back as the same person: whoever holds it speaks for that identity,
/// so it is never logged (`Debug` hides it) and is sent only in that person's own welcome.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ResumeSecret(String);

impl ResumeSecret {
    /// A fresh, unguessable secret (122 random bits).
    pub fn generate() -> Self {
        Self(Uuid::new_v4().simple().to_string())
    }

    /// A secret as a client sends it: 1 to 64 printable ASCII characters. It need not be one the
    /// server knows: an unknown secret joins as someone new.
    pub fn parse(raw: String) -> Result<Self, Invalid> {
        if raw.is_empty()
            || raw.len() > MAX_SECRET_CHARS
            || !raw.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Invalid::new(
                ErrorCode::BadRequest,
                format!("`resume` must be 1 to {MAX_SECRET_CHARS} printable ASCII characters"),
            ));
        }
        Ok(Self(raw))
    }

    /// A one-way digest (SHA-1, through a name-based UUID) to file the identity under where
    /// others can read it, in shared mode's presence: it finds the identity without revealing
    /// the secret, which is 122 random bits for the server's own.
    pub fn fingerprint(&self) -> String {
        Uuid::new_v5(&Uuid::NAMESPACE_OID, self.0.as_bytes())
            .simple()
            .to_string()
    }
}

impl fmt::Debug for ResumeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResumeSecret(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_parses_back() {
        let secret = ResumeSecret::generate();
        assert_eq!(ResumeSecret::parse(secret.0.clone()), Ok(secret));
    }

    #[test]
    fn an_empty_overlong_or_spaced_secret_is_refused() {
        for raw in [String::new(), "a".repeat(65), "a b".into(), "é".into()] {
            assert!(ResumeSecret::parse(raw.clone()).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn a_fingerprint_is_stable_and_does_not_hold_the_secret() {
        let secret = ResumeSecret::parse("hunter2hunter2".into()).unwrap();
        assert_eq!(secret.fingerprint(), secret.fingerprint());
        assert!(!secret.fingerprint().contains("hunter2"));
        assert_ne!(secret.fingerprint(), ResumeSecret::generate().fingerprint());
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let secret = ResumeSecret::parse("hunter2".into()).unwrap();
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
