//! A room's password as the server keeps it (an Argon2id hash), and the short-lived passes that
//! let someone who knows the password through the door without putting it in a URL.

use std::fmt;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::session_token::hex;
use super::{RoomCode, Timestamp};

/// How long a pass admits its holder: long enough to connect, and to reconnect after a blip.
pub const PASS_LIFETIME: Duration = Duration::from_secs(60);

/// The PHC string (`$argon2id$…`) of a room's password. Every instance of the room holds it, to
/// check passes; it never reaches a client. `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// A hash as the hasher made it or storage keeps it.
    pub fn from_stored(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A pass into `room` until `expires`: `<expiry millis>.<HMAC-SHA256 hex>`, keyed by this hash.
    /// Any instance holding the hash checks it without asking anyone, and a new password voids
    /// every pass given for the old one.
    pub fn issue_pass(&self, room: &RoomCode, expires: Timestamp) -> String {
        let millis = expires.as_millis();
        format!(
            "{millis}.{}",
            hex(&self.mac(room, millis).finalize().into_bytes())
        )
    }

    /// Whether `pass` is one this hash issued for `room` that has not expired by `now`.
    pub fn admits(&self, pass: &str, room: &RoomCode, now: Timestamp) -> bool {
        let Some((millis, tag)) = pass.split_once('.') else {
            return false;
        };
        let Ok(millis) = millis.parse::<i64>() else {
            return false;
        };
        let Some(tag) = unhex(tag) else {
            return false;
        };
        millis > now.as_millis() && self.mac(room, millis).verify_slice(&tag).is_ok()
    }

    fn mac(&self, room: &RoomCode, millis: i64) -> hmac::Hmac<Sha256> {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(self.0.as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(room.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(millis.to_string().as_bytes());
        mac
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(…)")
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(code: &str) -> RoomCode {
        RoomCode::parse(code).unwrap()
    }

    #[test]
    fn a_pass_admits_to_its_room_until_it_expires() {
        let hash = PasswordHash::from_stored("$argon2id$v=19$one".into());
        let now = Timestamp::now();
        let pass = hash.issue_pass(&room("K7MXQ2"), now.later_by(PASS_LIFETIME));
        assert!(hash.admits(&pass, &room("K7MXQ2"), now));
        assert!(!hash.admits(&pass, &room("K7MXQ3"), now), "another room");
        assert!(!hash.admits(&pass, &room("K7MXQ2"), now.later_by(PASS_LIFETIME)));
        let other = PasswordHash::from_stored("$argon2id$v=19$two".into());
        assert!(
            !other.admits(&pass, &room("K7MXQ2"), now),
            "a new password voids it"
        );
    }

    #[test]
    fn a_forged_or_garbled_pass_admits_nobody() {
        let hash = PasswordHash::from_stored("$argon2id$v=19$one".into());
        let now = Timestamp::now();
        let pass = hash.issue_pass(&room("K7MXQ2"), now.later_by(PASS_LIFETIME));
        let (millis, tag) = pass.split_once('.').unwrap();
        let later = now.later_by(Duration::from_secs(3600)).as_millis();
        for forged in [
            format!("{later}.{tag}"),
            format!("{millis}.{}", "0".repeat(64)),
            format!("{millis}.{}", &tag[..62]),
            format!("{millis}.é{}", &tag[2..]),
            millis.to_owned(),
            String::new(),
            "x.y".to_owned(),
        ] {
            assert!(!hash.admits(&forged, &room("K7MXQ2"), now), "{forged}");
        }
    }
}
