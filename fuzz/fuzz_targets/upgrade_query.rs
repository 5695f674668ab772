//! The WebSocket upgrade's room code and query string (`?name=…&resume=…&since=…&pass=…`), read
//! as actix reads them and validated as the upgrade does, for a guest.
#![no_main]

use actix_web::web::Query;
use hubbub::domain::{DisplayName, RoomCode};
use hubbub::routes::ws::{join_request, UpgradeParams};
use libfuzzer_sys::fuzz_target;

// `CODE?QUERY`, as the request's path ends and its query follows.
fuzz_target!(|target: &str| {
    let (code, query) = target.split_once('?').unwrap_or((target, ""));
    let Ok(Query(params)) = Query::<UpgradeParams>::from_query(query) else {
        return;
    };
    let Ok(join) = join_request(code, params, None, None) else {
        return;
    };
    // What is admitted is what was asked for, validated the same way everywhere.
    assert_eq!(RoomCode::parse(code).as_ref(), Ok(&join.room));
    assert_eq!(
        DisplayName::parse(join.name.as_str()).as_ref(),
        Ok(&join.name)
    );
    assert!(join.signed_in.is_none());
    // As the query says, read by another URL parser.
    let asked = |key: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.into_owned())
    };
    let name = asked("name").expect("a guest's upgrade names them");
    assert_eq!(DisplayName::parse(&name).as_ref(), Ok(&join.name));
    assert_eq!(
        asked("since").map(|since| since.parse::<u64>()),
        join.since.map(Ok)
    );
});
