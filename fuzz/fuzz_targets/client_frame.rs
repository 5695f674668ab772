//! Every text frame a client can send: parsed, or refused with a protocol error that says why.
#![no_main]

use hubbub::chat::protocol::ClientFrame;
use hubbub::domain::ErrorCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The session refuses a frame that is not UTF-8 before it is parsed.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ClientFrame::parse(text) {
        Ok(frame) => {
            // Another encoder's rewriting of the same JSON (keys reordered, escapes undone, numbers
            // reformatted) is the same frame: nothing depends on how the client wrote it.
            let value: serde_json::Value =
                serde_json::from_str(text).expect("a frame that parses is JSON");
            let again = ClientFrame::parse(&value.to_string()).expect("its rewriting parses");
            assert_eq!(format!("{frame:?}"), format!("{again:?}"));
        }
        Err(invalid) => {
            assert!(
                matches!(invalid.code, ErrorCode::BadRequest | ErrorCode::UnknownType),
                "a frame that does not parse is a bad request, not {:?}",
                invalid.code
            );
            assert!(!invalid.message.is_empty());
        }
    }
});
