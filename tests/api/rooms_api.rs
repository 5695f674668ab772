//! The HTTP JSON API: rooms, messages, health, and JSON errors for everything that goes wrong.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_on, spawn_app_with, TestApp};

async fn body(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

/// Asserts the shared error shape and returns its code.
async fn error_code(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    let body = body(response).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"]["code"]
        .as_str()
        .expect("an error code")
        .to_owned()
}

#[actix_web::test]
async fn healthz_answers_200() {
    let app = spawn_app().await;

    let response = app.get("/healthz").await;

    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await["status"], "ok");
}

#[actix_web::test]
async fn creating_a_room_returns_a_generated_code_and_its_url() {
    let app = spawn_app().await;

    let response = app.post_json("/api/rooms", &json!({})).await;
    let empty_body = app
        .http
        .post(format!("{}/api/rooms", app.address))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 201);
    assert_eq!(empty_body.status(), 201);
    let created = body(response).await;
    let code = created["code"].as_str().unwrap();
    assert_eq!(code.len(), 6);
    assert!(
        code.chars()
            .all(|c| "23456789ABCDEFGHJKMNPQRSTUVWXYZ".contains(c)),
        "{code}"
    );
    assert_eq!(created["url"], format!("{}/r/{code}", app.address));
}

#[actix_web::test]
async fn a_custom_code_is_case_insensitive_and_taken_once() {
    let app = spawn_app().await;

    let first = app
        .post_json("/api/rooms", &json!({ "code": "team-Standup" }))
        .await;
    let again = app
        .post_json("/api/rooms", &json!({ "code": "TEAM-standup" }))
        .await;

    assert_eq!(body(first).await["code"], "TEAM-STANDUP");
    assert_eq!(error_code(again, 409).await, "room_taken");
    assert_eq!(app.get("/api/rooms/team-standup").await.status(), 200);
}

/// Two servers on one database, asked for the same code at the same moment: the database decides,
/// and exactly one answers 201. (Creation used to be fire-and-forget, and both said yes.)
#[actix_web::test]
async fn a_chosen_code_is_taken_once_across_servers_sharing_a_database() {
    let first = spawn_app().await;
    let second = spawn_app_on(first.database.clone(), &[]).await;

    for round in 0..5 {
        let code = json!({ "code": format!("race-{round}") });
        let (a, b) = tokio::join!(
            first.post_json("/api/rooms", &code),
            second.post_json("/api/rooms", &code)
        );
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "round {round}");
    }
}

/// A storage failure answers a fixed text with a stable code; the database's own words go to the
/// log only (they used to be the JSON `message`).
#[actix_web::test]
async fn a_storage_failure_tells_the_client_no_internals() {
    let app = spawn_app_with(&["--room-idle-timeout", "1s"]).await;
    app.database.drop_rooms_table().await;

    let response = app.get("/api/rooms/STORED").await;

    assert_eq!(response.status(), 503);
    let body = body(response).await;
    assert_eq!(body["error"]["code"], "storage_unavailable");
    assert_eq!(
        body["error"]["message"],
        "rooms cannot be reached right now; try again shortly"
    );
}

#[actix_web::test]
async fn bad_room_requests_get_400_with_a_reason() {
    let app = spawn_app().await;
    let raw = |body: &'static str| {
        app.http
            .post(format!("{}/api/rooms", app.address))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    assert_eq!(
        error_code(
            app.post_json("/api/rooms", &json!({ "code": "ab" })).await,
            400
        )
        .await,
        "invalid_code"
    );
    assert_eq!(
        error_code(
            app.post_json("/api/rooms", &json!({ "code": "a b c" }))
                .await,
            400
        )
        .await,
        "invalid_code"
    );
    assert_eq!(
        error_code(raw("{not json").await.unwrap(), 400).await,
        "bad_request"
    );
    assert_eq!(
        error_code(raw(r#"{"code": 5}"#).await.unwrap(), 400).await,
        "bad_request"
    );
    assert_eq!(
        error_code(app.get("/api/rooms/a!").await, 400).await,
        "invalid_code"
    );
}

#[actix_web::test]
async fn describing_a_room_lists_its_members() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let ann = app.join(&code, "ann").await;

    let room = body(
        app.get(&format!("/api/rooms/{}", code.to_lowercase()))
            .await,
    )
    .await;

    assert_eq!(room["code"], code);
    assert_eq!(room["members"], json!([{ "id": ann.id(), "name": "ann" }]));
    assert!(chrono::DateTime::parse_from_rfc3339(room["created_at"].as_str().unwrap()).is_ok());
}

#[actix_web::test]
async fn an_unknown_room_is_404_everywhere() {
    let app = spawn_app().await;
    let post = json!({ "name": "bot", "text": "hi" });

    assert_eq!(
        error_code(app.get("/api/rooms/NOPE42").await, 404).await,
        "no_such_room"
    );
    assert_eq!(
        error_code(app.get("/api/rooms/NOPE42/messages").await, 404).await,
        "no_such_room"
    );
    assert_eq!(
        error_code(
            app.post_json("/api/rooms/NOPE42/messages", &post).await,
            404
        )
        .await,
        "no_such_room"
    );
}

#[actix_web::test]
async fn unknown_endpoints_get_a_json_404() {
    let app = spawn_app().await;

    assert_eq!(
        error_code(app.get("/api/nothing-here").await, 404).await,
        "not_found"
    );
}

/// A message posted over the API is delivered live and is then in the room's history.
#[actix_web::test]
async fn posting_a_message_delivers_it_live() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let mut ann = app.join(&code, "ann").await;

    let response = app
        .post_json(
            &format!("/api/rooms/{code}/messages"),
            &json!({ "name": "bot", "text": "deploy done" }),
        )
        .await;

    assert_eq!(response.status(), 201);
    let posted = body(response).await;
    let live = ann.expect("message").await;
    assert_eq!(posted["text"], "deploy done");
    assert_eq!(posted["from"]["name"], "bot");
    assert_eq!(
        live.as_object().unwrap().len(),
        posted.as_object().unwrap().len() + 1,
        "the frame adds only `type`"
    );
    assert_eq!(live["id"], posted["id"]);
    assert_eq!(live["seq"], 1);
}

#[actix_web::test]
async fn posting_as_a_connected_member_is_a_conflict() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let _ann = app.join(&code, "ann").await;

    let response = app
        .post_json(
            &format!("/api/rooms/{code}/messages"),
            &json!({ "name": "ANN", "text": "spoof" }),
        )
        .await;

    assert_eq!(error_code(response, 409).await, "name_taken");
}

#[actix_web::test]
async fn posting_invalid_messages_is_refused_with_the_reason() {
    let app = spawn_app().await;
    let code = app.create_room().await;
    let path = format!("/api/rooms/{code}/messages");
    let cases = [
        (json!({ "name": "bot", "text": "" }), "empty"),
        (
            json!({ "name": "bot", "text": "x".repeat(4_001) }),
            "too_long",
        ),
        (json!({ "name": "", "text": "hi" }), "invalid_name"),
        (json!({ "text": "hi" }), "bad_request"),
    ];

    for (post, code) in cases {
        assert_eq!(
            error_code(app.post_json(&path, &post).await, 400).await,
            code,
            "{post}"
        );
    }
    assert_eq!(
        body(app.get(&format!("/api/rooms/{code}/messages")).await).await["messages"],
        json!([])
    );
}

async fn post_n(app: &TestApp, code: &str, n: usize) {
    for i in 1..=n {
        let response = app
            .post_json(
                &format!("/api/rooms/{code}/messages"),
                &json!({ "name": "bot", "text": format!("m{i}") }),
            )
            .await;
        assert_eq!(response.status(), 201);
    }
}

fn seqs(page: &Value) -> Vec<u64> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

#[actix_web::test]
async fn messages_page_by_after_and_limit() {
    let app = spawn_app_with(&["--rate-limit", "1000", "--rate-burst", "1000"]).await;
    let code = app.create_room().await;
    post_n(&app, &code, 60).await;
    let page = |query: &str| format!("/api/rooms/{code}/messages{query}");

    assert_eq!(
        seqs(&body(app.get(&page("")).await).await),
        (1..=50).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(&body(app.get(&page("?after=55")).await).await),
        [56, 57, 58, 59, 60]
    );
    assert_eq!(
        seqs(&body(app.get(&page("?after=10&limit=3")).await).await),
        [11, 12, 13]
    );
    assert_eq!(
        seqs(&body(app.get(&page("?after=60")).await).await),
        Vec::<u64>::new()
    );
}

#[actix_web::test]
async fn bad_paging_parameters_get_400() {
    let app = spawn_app().await;
    let code = app.create_room().await;

    for query in ["?limit=0", "?limit=501", "?after=-1", "?after=soon"] {
        let response = app.get(&format!("/api/rooms/{code}/messages{query}")).await;
        assert_eq!(error_code(response, 400).await, "bad_request", "{query}");
    }
    assert_eq!(
        app.get(&format!("/api/rooms/{code}/messages?limit=500"))
            .await
            .status(),
        200
    );
}

/// Posting over the API has the same flood limit as a connection, per client address; creating
/// the room took one of its burst of three. A refused post says when the next will be taken.
#[actix_web::test]
async fn api_posts_are_rate_limited_per_address() {
    let app = spawn_app_with(&["--rate-limit", "1", "--rate-burst", "3"]).await;
    let code = app.create_room().await;
    let path = format!("/api/rooms/{code}/messages");
    let post = json!({ "name": "bot", "text": "hi" });

    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let answer = app.post_json(&path, &post).await;
        statuses.push(answer.status().as_u16());
        if answer.status() == 429 {
            retry_after = answer.headers().get("retry-after").cloned();
        }
    }

    assert_eq!(&statuses[..2], [201, 201]);
    assert!(statuses.contains(&429), "{statuses:?}");
    let retry_after = retry_after.expect("a refused post says when to try again");
    assert_eq!(retry_after.to_str().unwrap(), "1", "one post a second");
}

/// A burst of room creations from one address gets the API's flood limit: the burst is created,
/// the rest is refused with 429 and `Retry-After` and creates nothing, and after that wait the
/// address may create again.
#[actix_web::test]
async fn a_burst_of_room_creations_from_one_address_is_throttled() {
    let app = spawn_app_with(&[
        "--rate-limit",
        "1",
        "--rate-burst",
        "5",
        "--max-rooms",
        "10",
    ])
    .await;

    let answers = futures_util::future::join_all(
        (0..30).map(|_| app.http.post(format!("{}/api/rooms", app.address)).send()),
    )
    .await;

    let mut created = 0;
    for answer in answers {
        let answer = answer.expect("the server answers");
        match answer.status().as_u16() {
            201 => created += 1,
            429 => {
                let retry_after = answer.headers()["retry-after"].to_str().unwrap().to_owned();
                assert!(
                    retry_after.parse::<u64>().is_ok_and(|s| s >= 1),
                    "{retry_after}"
                );
                assert_eq!(error_code(answer, 429).await, "rate_limited");
            }
            other => panic!("a creation answered {other}"),
        }
    }
    // The burst, and at most one more if a second passed while the requests were answered.
    assert!((5..=6).contains(&created), "{created} rooms created");
    // Had the refusals created rooms, the room limit of 10 would refuse this one once allowed.
    let again = crate::helpers::eventually("the address may create a room again", || async {
        let answer = app
            .http
            .post(format!("{}/api/rooms", app.address))
            .send()
            .await
            .ok()?;
        (answer.status() != 429).then_some(answer.status())
    })
    .await;
    assert_eq!(again, 201);
}
