//! Accounts over the JSON API: registering, signing in and out, sessions, throttles, and the
//! cross-site checks that keep a session from being used by another site.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::header::SET_COOKIE;
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_on, spawn_app_with, TestApp};

pub const PASSWORD: &str = "correct horse battery";

/// A `Set-Cookie` header, taken apart.
#[derive(Debug)]
pub struct SetCookie {
    name: String,
    value: String,
    attributes: Vec<String>,
}

impl SetCookie {
    pub fn of(response: &Response) -> Self {
        let header = response
            .headers()
            .get(SET_COOKIE)
            .expect("a Set-Cookie header")
            .to_str()
            .unwrap()
            .to_owned();
        let mut parts = header.split(';').map(str::trim);
        let (name, value) = parts.next().unwrap().split_once('=').unwrap();
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
            attributes: parts.map(str::to_lowercase).collect(),
        }
    }

    fn has(&self, attribute: &str) -> bool {
        self.attributes.iter().any(|a| a == attribute)
    }

    /// What a browser sends back.
    pub fn header(&self) -> String {
        format!("{}={}", self.name, self.value)
    }
}

impl TestApp {
    /// Sends `body` as JSON with `method` to `path`, with extra headers.
    pub async fn account_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self.http.request(method, format!("{}{path}", self.address));
        if let Some(body) = body {
            request = request.json(&body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("the server answers")
    }

    pub async fn register(&self, username: &str, password: &str) -> Response {
        let body = json!({ "username": username, "password": password });
        self.account_call(Method::POST, "/api/account/register", Some(body), &[])
            .await
    }

    pub async fn login(&self, username: &str, password: &str, cookie: Option<&str>) -> Response {
        let body = json!({ "username": username, "password": password });
        let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
        self.account_call(Method::POST, "/api/account/login", Some(body), &headers)
            .await
    }

    /// Registers `username` and returns the session cookie to send back.
    pub async fn signed_up(&self, username: &str) -> String {
        let response = self.register(username, PASSWORD).await;
        assert_eq!(response.status(), 201, "{username}");
        SetCookie::of(&response).header()
    }

    /// `GET /api/account` with `cookie`: the status, and the body.
    pub async fn whoami(&self, cookie: &str) -> (u16, Value) {
        let response = self
            .account_call(Method::GET, "/api/account", None, &[("cookie", cookie)])
            .await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

async fn error_code(response: Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error body");
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

/// Registering answers with the account and a session cookie that signs its holder in.
#[actix_web::test]
async fn registering_signs_in_with_an_http_only_lax_cookie() {
    let app = spawn_app().await;

    let response = app.register("Ann_Lee", PASSWORD).await;

    assert_eq!(response.status(), 201);
    let cookie = SetCookie::of(&response);
    assert_eq!(cookie.name, "hubbub_session");
    assert!(cookie.has("httponly") && cookie.has("samesite=lax") && cookie.has("path=/"));
    assert!(!cookie.has("secure"), "plain http on localhost: {cookie:?}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let account: Value = response.json().await.unwrap();
    assert_eq!(account["username"], "Ann_Lee");
    assert_eq!(account.as_object().unwrap().len(), 2, "{account}");

    let (status, me) = app.whoami(&cookie.header()).await;
    assert_eq!((status, &me), (200, &account));
    let (status, _) = app.whoami("").await;
    assert_eq!(status, 401);
    assert_eq!(
        error_code(
            app.account_call(Method::GET, "/api/account", None, &[])
                .await
        )
        .await,
        (401, "not_signed_in".to_owned())
    );
}

/// Usernames clash by case and by look-alike letters, whoever registered first.
#[actix_web::test]
async fn a_taken_username_is_409_in_any_case_or_look_alike_script() {
    let app = spawn_app().await;
    app.signed_up("Ann").await;
    app.signed_up("paypal").await;

    for taken in [
        "ann",
        "ANN",
        " Ann ",
        "раура1", /* all Cyrillic, with a digit one */
    ] {
        assert_eq!(
            error_code(app.register(taken, PASSWORD).await).await,
            (409, "username_taken".to_owned()),
            "{taken}"
        );
    }
    // Latin with one Cyrillic letter is refused for mixing scripts.
    assert_eq!(
        error_code(app.register("аnn", PASSWORD).await).await,
        (400, "invalid_username".to_owned())
    );
}

/// Every malformed registration gets a 400 with a precise code, and creates nothing.
#[actix_web::test]
async fn bad_registrations_get_a_precise_code_and_create_nothing() {
    let app = spawn_app().await;
    let long = "a".repeat(10_000);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "username": "ab", "password": PASSWORD }),
            "invalid_username",
        ),
        (
            json!({ "username": long, "password": PASSWORD }),
            "invalid_username",
        ),
        (
            json!({ "username": "ann\u{0}", "password": PASSWORD }),
            "invalid_username",
        ),
        (
            json!({ "username": "ann\u{202E}x", "password": PASSWORD }),
            "invalid_username",
        ),
        (
            json!({ "username": "an\u{200B}n", "password": PASSWORD }),
            "invalid_username",
        ),
        (
            json!({ "username": "ann lee", "password": PASSWORD }),
            "invalid_username",
        ),
        (
            json!({ "username": "Admin", "password": PASSWORD }),
            "reserved_username",
        ),
        (
            json!({ "username": "MODERATOR", "password": PASSWORD }),
            "reserved_username",
        ),
        (
            json!({ "username": "ann", "password": "seven77" }),
            "password_too_short",
        ),
        (
            json!({ "username": "ann", "password": "a".repeat(1_025) }),
            "password_too_long",
        ),
        (
            json!({ "username": 5, "password": PASSWORD }),
            "bad_request",
        ),
        (json!({ "username": "ann" }), "bad_request"),
        (
            json!({ "username": "ann", "password": PASSWORD, "admin": true }),
            "bad_request",
        ),
    ];
    for (body, code) in cases {
        let response = app
            .account_call(
                Method::POST,
                "/api/account/register",
                Some(body.clone()),
                &[],
            )
            .await;
        assert!(response.headers().get(SET_COOKIE).is_none(), "{body}");
        assert_eq!(error_code(response).await, (400, code.to_owned()), "{body}");
    }
    // None of them took "ann": it registers now.
    app.signed_up("ann").await;
}

/// Signing in: the right password gives a fresh session; a wrong password and an unknown user
/// get the same answer.
#[actix_web::test]
async fn login_gives_a_new_session_and_one_answer_for_every_wrong_credential() {
    let app = spawn_app().await;
    let first = app.signed_up("ann").await;

    let response = app.login("ANN", PASSWORD, None).await;
    assert_eq!(response.status(), 200);
    let second = SetCookie::of(&response).header();
    assert_ne!(second, first);
    assert_eq!(app.whoami(&second).await.0, 200);
    assert_eq!(
        app.whoami(&first).await.0,
        200,
        "another device stays signed in"
    );

    let wrong: Value = app
        .login("ann", "not the password", None)
        .await
        .json()
        .await
        .unwrap();
    let unknown: Value = app
        .login("nobody", PASSWORD, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(wrong["error"]["code"], "bad_credentials");
    assert_eq!(wrong, unknown);
    assert!(!wrong.to_string().contains("not the password"));
}

/// An unknown username costs one hash, as a wrong password does: timing does not list accounts.
#[actix_web::test]
async fn login_takes_as_long_for_an_unknown_user_as_for_a_wrong_password() {
    let app = spawn_app().await;
    app.signed_up("ann").await;
    // Each attempt from its own loopback address, so the per-address throttle stays out of it.
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for n in 0..12u8 {
        let http = reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, 10 + n]))
            .build()
            .unwrap();
        let username = if n % 2 == 0 { "ann" } else { "nobody" };
        let started = Instant::now();
        let response = http
            .post(format!("{}/api/account/login", app.address))
            .json(&json!({ "username": username, "password": "wrong password" }))
            .send()
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(response.status(), 401);
        if n % 2 == 0 { &mut known } else { &mut unknown }.push(took);
    }
    // The fastest of each kind: other tests hashing at the same time only ever add to an
    // attempt's time, so the minimum is the attempt's own cost.
    let fastest = |times: &[Duration]| times.iter().min().copied().unwrap_or_default();
    let (known, unknown) = (fastest(&known), fastest(&unknown));
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    // Without the dummy hash an unknown user answers in well under a tenth of the time.
    assert!(
        (0.25..4.0).contains(&ratio),
        "unknown {unknown:?} vs known {known:?}"
    );
}

/// Five rapid attempts from one address go through; the sixth waits, told how long.
#[actix_web::test]
async fn the_sixth_rapid_attempt_is_throttled_with_retry_after() {
    let app = spawn_app().await;
    app.signed_up("ann").await;
    for n in 0..5 {
        assert_eq!(
            app.login("ann", "wrong password", None).await.status(),
            401,
            "{n}"
        );
    }

    let response = app.login("ann", PASSWORD, None).await;

    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&retry), "{retry}");
    assert_eq!(error_code(response).await, (429, "rate_limited".to_owned()));
}

/// Logging out ends the session on the server: the old cookie is refused even if a browser keeps it.
#[actix_web::test]
async fn logout_ends_the_session_server_side() {
    let app = spawn_app().await;
    let cookie = app.signed_up("ann").await;

    let response = app
        .account_call(
            Method::POST,
            "/api/account/logout",
            None,
            &[("cookie", &cookie)],
        )
        .await;

    assert_eq!(response.status(), 204);
    let cleared = SetCookie::of(&response);
    assert!(
        cleared.value.is_empty() && cleared.has("max-age=0"),
        "{cleared:?}"
    );
    assert_eq!(app.whoami(&cookie).await.0, 401);
}

/// A session cookie planted before sign-in (session fixation) is replaced, and ended if it was live.
#[actix_web::test]
async fn a_cookie_planted_before_login_is_replaced() {
    let app = spawn_app().await;
    let planted = app.signed_up("mallory").await;
    app.signed_up("ann").await;

    let response = app.login("ann", PASSWORD, Some(&planted)).await;

    assert_eq!(response.status(), 200);
    let fresh = SetCookie::of(&response).header();
    assert_ne!(fresh, planted);
    assert_eq!(app.whoami(&fresh).await.1["username"], "ann");
    assert_eq!(
        app.whoami(&planted).await.0,
        401,
        "the planted session ended"
    );
    // A garbled cookie is no session at all.
    let response = app
        .login("ann", PASSWORD, Some("hubbub_session=attacker"))
        .await;
    assert_eq!(response.status(), 200);
}

/// Over https the cookie is Secure and `__Host-` prefixed; a forwarded header counts only from
/// a trusted proxy.
#[actix_web::test]
async fn cookie_flags_follow_https_public_url_and_trusted_proxies() {
    static HTTPS: [(&str, &str); 1] = [("x-forwarded-proto", "https")];
    let register = |app: &TestApp, headers: &'static [(&'static str, &'static str)]| {
        let body = json!({ "username": "ann", "password": PASSWORD });
        let address = app.address.clone();
        let http = app.http.clone();
        async move {
            let mut request = http
                .post(format!("{address}/api/account/register"))
                .json(&body);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            SetCookie::of(&request.send().await.unwrap())
        }
    };

    let public = spawn_app_with(&["--public-url", "https://chat.example.com"]).await;
    let cookie = register(&public, &[]).await;
    assert_eq!(cookie.name, "__Host-hubbub_session");
    assert!(cookie.has("secure") && cookie.has("path=/") && cookie.has("httponly"));
    assert!(!cookie.attributes.iter().any(|a| a.starts_with("domain")));

    let proxied = spawn_app_with(&["--trust-proxy"]).await;
    let cookie = register(&proxied, &HTTPS).await;
    assert_eq!(cookie.name, "__Host-hubbub_session");
    assert!(cookie.has("secure"));
    let sent = cookie.header();
    // Read back under the same name, and only under it.
    let headers: Vec<(&str, &str)> = HTTPS
        .iter()
        .copied()
        .chain([("cookie", sent.as_str())])
        .collect();
    let me = proxied
        .account_call(Method::GET, "/api/account", None, &headers)
        .await;
    assert_eq!(me.status(), 200);
    let plain = format!("hubbub_session={}", cookie.value);
    let headers: Vec<(&str, &str)> = HTTPS
        .iter()
        .copied()
        .chain([("cookie", plain.as_str())])
        .collect();
    let me = proxied
        .account_call(Method::GET, "/api/account", None, &headers)
        .await;
    assert_eq!(
        me.status(),
        401,
        "a plain-named cookie may have been planted over http"
    );

    let untrusted = spawn_app().await;
    let cookie = register(&untrusted, &HTTPS).await;
    assert_eq!(cookie.name, "hubbub_session");
    assert!(
        !cookie.has("secure"),
        "X-Forwarded-Proto from anyone is not believed"
    );
}

/// Another site cannot act with a visitor's session: a foreign Origin, a cross-site fetch, a
/// form post and a text/plain body are all refused, and nothing changes.
#[actix_web::test]
async fn cross_site_and_non_json_requests_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let cookie = app.signed_up("ann").await;
    let credentials = json!({ "username": "mallory", "password": PASSWORD });
    let path = "/api/account/register";

    let foreign = app
        .account_call(
            Method::POST,
            path,
            Some(credentials.clone()),
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(error_code(foreign).await, (403, "cross_site".to_owned()));
    let fetched = app
        .account_call(
            Method::POST,
            path,
            Some(credentials.clone()),
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(error_code(fetched).await, (403, "cross_site".to_owned()));
    let form = app
        .http
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username=mallory&password={PASSWORD}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(form).await,
        (415, "unsupported_media_type".to_owned())
    );
    let plain = app
        .http
        .post(format!("{}{path}", app.address))
        .header("content-type", "text/plain")
        .body(credentials.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(plain).await,
        (415, "unsupported_media_type".to_owned())
    );
    let logout = app
        .account_call(
            Method::POST,
            "/api/account/logout",
            None,
            &[("cookie", &cookie), ("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(logout.status(), 403);

    assert_eq!(app.whoami(&cookie).await.0, 200, "still signed in");
    assert_eq!(
        app.login("mallory", PASSWORD, None).await.status(),
        401,
        "never registered"
    );
    // The page itself (same origin) is welcome.
    let own = app.address.clone();
    let same = app
        .account_call(
            Method::POST,
            path,
            Some(credentials),
            &[("origin", &own), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(same.status(), 201);
}

/// A password change needs the current password and ends every other session.
#[actix_web::test]
async fn changing_the_password_ends_the_other_sessions() {
    let app = spawn_app().await;
    let here = app.signed_up("ann").await;
    let elsewhere = SetCookie::of(&app.login("ann", PASSWORD, None).await).header();
    let change = |current: &str, new: &str| {
        let body = json!({ "current": current, "new": new });
        let here = here.clone();
        let app = &app;
        async move {
            app.account_call(
                Method::POST,
                "/api/account/password",
                Some(body),
                &[("cookie", &here)],
            )
            .await
        }
    };

    assert_eq!(
        error_code(change("wrong one", "a new password").await).await,
        (401, "bad_credentials".to_owned())
    );
    assert_eq!(
        error_code(change(PASSWORD, "short").await).await,
        (400, "password_too_short".to_owned())
    );
    assert_eq!(
        app.whoami(&elsewhere).await.0,
        200,
        "refusals change nothing"
    );
    assert_eq!(change(PASSWORD, "a new password").await.status(), 204);

    assert_eq!(app.whoami(&here).await.0, 200);
    assert_eq!(app.whoami(&elsewhere).await.0, 401);
    assert_eq!(app.login("ann", PASSWORD, None).await.status(), 401);
    assert_eq!(app.login("ann", "a new password", None).await.status(), 200);
}

/// Deleting an account takes its password, and leaves no session and no username behind.
#[actix_web::test]
async fn deleting_the_account_ends_its_sessions_and_frees_the_username() {
    let app = spawn_app().await;
    let cookie = app.signed_up("ann").await;
    let delete = |password: &str| {
        let body = json!({ "password": password });
        let cookie = cookie.clone();
        let app = &app;
        async move {
            app.account_call(
                Method::DELETE,
                "/api/account",
                Some(body),
                &[("cookie", &cookie)],
            )
            .await
        }
    };

    assert_eq!(delete("wrong password").await.status(), 401);
    assert_eq!(app.whoami(&cookie).await.0, 200);
    assert_eq!(delete(PASSWORD).await.status(), 204);

    assert_eq!(app.whoami(&cookie).await.0, 401);
    assert_eq!(app.login("ann", PASSWORD, None).await.status(), 401);
    app.signed_up("ann").await;
}

/// Sessions live in the database: they survive a restart, and an expired one is refused.
#[actix_web::test]
async fn sessions_survive_a_restart_and_expire() {
    let app = spawn_app().await;
    let cookie = app.signed_up("ann").await;
    let database = app.stop().await;
    let app = spawn_app_on(database, &[]).await;
    assert_eq!(app.whoami(&cookie).await.0, 200);

    let mut connection = app.database.connect().await;
    sqlx::query("UPDATE account_sessions SET expires_at = 0")
        .execute(&mut connection)
        .await
        .unwrap();

    assert_eq!(app.whoami(&cookie).await.0, 401);
}

/// The database holds neither the password nor the session token, only their hashes.
#[actix_web::test]
async fn the_database_keeps_hashes_not_secrets() {
    let app = spawn_app().await;
    let cookie = app.signed_up("ann").await;
    let token = cookie.split_once('=').unwrap().1.to_owned();

    let mut connection = app.database.connect().await;
    let (hash,): (String,) = sqlx::query_as("SELECT password_hash FROM accounts")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    let (digest,): (String,) = sqlx::query_as("SELECT token_digest FROM account_sessions")
        .fetch_one(&mut connection)
        .await
        .unwrap();

    assert!(
        hash.starts_with("$argon2id$") && !hash.contains(PASSWORD),
        "{hash}"
    );
    assert_eq!(digest.len(), 64);
    assert_ne!(digest, token);
}
