//! Sign-in session tokens: the cookie's secret, and the digest storage keeps instead of it.

use std::fmt::{self, Write as _};

use rand::Rng;
use sha2::{Digest, Sha256};

/// Random bytes in a token: 256 bits, far beyond guessing.
const TOKEN_BYTES: usize = 32;

/// A 256-bit secret: the one in a session cookie, or a room's owner token. Whoever holds it acts
/// with it, so `Debug` hides it and it goes nowhere but the one response that hands it out.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

/// SHA-256 of a token, in hex: what the sessions table is keyed by. A copy of the database signs
/// nobody in, and a plain hash is enough, since the token is random and not a password.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenDigest(String);

impl SessionToken {
    pub fn generate() -> Self {
        let bytes: [u8; TOKEN_BYTES] = rand::rng().random();
        Self(hex(&bytes))
    }

    /// A token as a client sends it back; anything but the server's own shape is no token at all,
    /// so a planted or garbled cookie is treated as no cookie.
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == TOKEN_BYTES * 2
            && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| Self(raw.to_owned()))
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest(hex(&Sha256::digest(self.0.as_bytes())))
    }

    /// For the one response that hands it out (a `Set-Cookie` header, a new room's answer).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TokenDigest {
    /// A digest as the sessions table holds it.
    pub fn from_stored(digest: String) -> Self {
        Self(digest)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(…)")
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        write!(text, "{byte:02x}").expect("formatting");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_back_and_tokens_differ() {
        let token = SessionToken::generate();
        assert_eq!(SessionToken::parse(token.expose()), Some(token.clone()));
        assert_ne!(SessionToken::generate(), token);
    }

    #[test]
    fn a_token_of_another_shape_is_no_token() {
        for raw in ["", "abc", &"A".repeat(64), &"g".repeat(64), &"a".repeat(65)] {
            assert_eq!(SessionToken::parse(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn the_digest_is_sha256_and_not_the_token() {
        let token = SessionToken::parse(&"0".repeat(64)).unwrap();
        let digest = token.digest();
        assert_eq!(digest.as_str().len(), 64);
        assert_ne!(digest.as_str(), token.expose());
        assert!(!format!("{token:?}").contains("000"));
    }
}
