//! Display names, usernames, room codes, message text and passwords: what passes validation is
//! normalized, bounded and free of what each forbids, and validating it again changes nothing.
#![no_main]

use hubbub::domain::{
    AccountKey, DisplayName, MessageText, Password, RoomCode, Username, MAX_MESSAGE_CHARS,
    MAX_NAME_CHARS, MAX_PASSWORD_BYTES, MAX_USERNAME_CHARS, MIN_PASSWORD_CHARS, MIN_USERNAME_CHARS,
};
use libfuzzer_sys::fuzz_target;
use unicode_normalization::is_nfc;

fuzz_target!(|raw: &str| {
    if let Ok(name) = DisplayName::parse(raw) {
        let text = name.as_str();
        assert!(is_nfc(text), "{text:?} is not NFC");
        assert_eq!(text, text.trim());
        let len = text.chars().count();
        assert!((1..=MAX_NAME_CHARS).contains(&len));
        assert!(
            !text.chars().any(char::is_control),
            "{text:?} has a control character"
        );
        assert_eq!(DisplayName::parse(text).as_ref(), Ok(&name));
        // The key a name is compared by is a fixed point: a name and its key's name clash.
        if let Ok(keyed) = DisplayName::parse(name.key().as_str()) {
            assert_eq!(keyed.key(), name.key());
        }
    }

    if let Ok(username) = Username::parse(raw) {
        let text = username.as_str();
        assert!(is_nfc(text));
        let len = text.chars().count();
        assert!((MIN_USERNAME_CHARS..=MAX_USERNAME_CHARS).contains(&len));
        assert_eq!(Username::parse(text).as_ref(), Ok(&username));
        assert_eq!(username.key(), AccountKey::of(text));
        // An account goes by its username in rooms: it must be a display name as it stands.
        let as_name = DisplayName::parse(text).expect("a username is a display name");
        assert_eq!(as_name.as_str(), text);
        assert_eq!(username.display_name(), as_name);
    }

    if let Ok(code) = RoomCode::parse(raw) {
        let text = code.as_str();
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'));
        assert!(text.eq_ignore_ascii_case(raw));
        assert_eq!(
            RoomCode::parse(&text.to_ascii_lowercase()).as_ref(),
            Ok(&code)
        );
    }

    if let Ok(message) = MessageText::parse(raw) {
        // Kept exactly as sent: a message is never rewritten.
        assert_eq!(message.as_str(), raw);
        assert!(raw.chars().count() <= MAX_MESSAGE_CHARS);
        assert!(!raw.trim().is_empty());
    }

    // A password is never trimmed or normalized: the bytes typed are the bytes hashed.
    match Password::attempt(raw.to_owned()) {
        Ok(password) => {
            assert_eq!(password.as_bytes(), raw.as_bytes());
            assert!(raw.len() <= MAX_PASSWORD_BYTES);
            if Password::parse(raw.to_owned()).is_ok() {
                assert!(raw.chars().count() >= MIN_PASSWORD_CHARS);
            }
        }
        Err(_) => assert!(
            Password::parse(raw.to_owned()).is_err(),
            "parse is stricter than attempt"
        ),
    }
});
