//! The JSON bodies of the HTTP API, read and validated as their handlers do: each is accepted
//! with values that hold to the rules, or refused as a bad request.
#![no_main]

use actix_web::ResponseError;
use hubbub::domain::{DisplayName, MessageText, Password, RoomCode, Username};
use hubbub::routes::account::{Credentials, PasswordChange};
use hubbub::routes::rooms::{CreateRoom, NewMessage};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// A body's field, by name in an object or by position in an array (serde reads a struct from
/// either), when the body parsed as a struct with the field as a string.
fn field<'a>(body: &'a Value, name: &str, position: usize) -> &'a str {
    let value = if body.is_array() {
        &body[position]
    } else {
        &body[name]
    };
    value
        .as_str()
        .expect("a body that parsed has the field as a string")
}

fuzz_target!(|bytes: &[u8]| {
    match CreateRoom::from_body(bytes) {
        Ok(asked) => {
            if let Some(code) = asked.code {
                assert_eq!(RoomCode::parse(code.as_str()).as_ref(), Ok(&code));
            }
        }
        Err(refused) => assert!(refused.status_code().is_client_error(), "{refused:?}"),
    }
    // Handlers take bodies through serde; a body that reads as one also reads as plain JSON.
    let Ok(body) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    if let Ok(message) = serde_json::from_slice::<NewMessage>(bytes) {
        let accepted = DisplayName::parse(field(&body, "name", 0)).is_ok()
            && MessageText::parse(field(&body, "text", 1)).is_ok();
        assert_eq!(message.post().is_ok(), accepted);
    }
    if let Ok(credentials) = serde_json::from_slice::<Credentials>(bytes) {
        let (username, password) = (field(&body, "username", 0), field(&body, "password", 1));
        let allowed = Password::attempt(password.to_owned()).is_ok();
        match credentials.registration() {
            Ok((registered, _)) => {
                assert_eq!(Username::parse(username).as_ref(), Ok(&registered));
                // Whatever may register may sign in.
                assert!(allowed);
            }
            Err(_) => assert!(
                Username::parse(username).is_err() || Password::parse(password.to_owned()).is_err()
            ),
        }
        let again: Credentials = serde_json::from_slice(bytes).expect("it parsed once");
        assert_eq!(again.sign_in().is_ok(), allowed);
    }
    if let Ok(change) = serde_json::from_slice::<PasswordChange>(bytes) {
        let accepted = Password::attempt(field(&body, "current", 0).to_owned()).is_ok()
            && Password::parse(field(&body, "new", 1).to_owned()).is_ok();
        assert_eq!(change.passwords().is_ok(), accepted);
    }
});
