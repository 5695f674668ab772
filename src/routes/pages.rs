//! Server-rendered pages: the home page, a room, and the HTML error pages.

use actix_web::dev::ServiceResponse;
use actix_web::http::header::ContentType;
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use anyhow::Context;
use serde::Serialize;
use tera::Tera;

use super::session_cookie::SessionCookie;
use super::{ApiError, Proxying};
use crate::accounts::Accounts;
use crate::chat::registry::Registry;
use crate::domain::{Account, ErrorCode, RoomCode, MAX_MESSAGE_CHARS, MAX_NAME_CHARS};

/// The limits the pages tell people about before the server has to.
#[derive(Serialize)]
struct Limits {
    max_name: usize,
    max_message: usize,
}

const LIMITS: Limits = Limits {
    max_name: MAX_NAME_CHARS,
    max_message: MAX_MESSAGE_CHARS,
};

#[derive(Serialize)]
struct HomePage<'a> {
    limits: Limits,
    /// Who is signed in, if anyone: the header says so, and the name is theirs.
    viewer: Option<&'a Account>,
}

#[derive(Serialize)]
struct RoomPage<'a> {
    code: &'a RoomCode,
    limits: Limits,
    /// `--public-url`, if set; otherwise the page uses the address it was opened at.
    invite_base: &'a str,
    viewer: Option<&'a Account>,
}

/// The sign-in page, or with `register` the registration page.
#[derive(Serialize)]
struct SignInPage {
    register: bool,
}

#[derive(Serialize)]
struct AccountPage<'a> {
    viewer: &'a Account,
}

#[derive(Serialize)]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
}

/// What can go wrong rendering a page; the error-page handler turns each into error.html.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("There is no room with the code {0}. It may have closed after everyone left.")]
    NoSuchRoom(String),
    #[error("There is nothing at this address.")]
    NotFound,
    #[error("Rooms cannot be loaded right now. Please try again in a moment.")]
    Unavailable(#[from] crate::storage::StorageError),
    #[error("Something went wrong on our side. Please try again.")]
    Unexpected(#[from] anyhow::Error),
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NoSuchRoom(_) | Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Who the request is signed in as; a failing database shows the page as to a guest.
async fn viewer(req: &HttpRequest, accounts: &Accounts, proxying: &Proxying) -> Option<Account> {
    match SessionCookie::of(req, proxying)
        .account(req, accounts)
        .await
    {
        Ok(signed_in) => signed_in.map(|(account, _)| account),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read a sign-in session for a page");
            None
        }
    }
}

pub async fn home(
    req: HttpRequest,
    tera: web::Data<Tera>,
    accounts: web::Data<Accounts>,
    proxying: web::Data<Proxying>,
) -> Result<HttpResponse, PageError> {
    let viewer = viewer(&req, &accounts, &proxying).await;
    let page = HomePage {
        limits: LIMITS,
        viewer: viewer.as_ref(),
    };
    render(&tera, "home.html", &page)
}

/// `/signin` and `/register`; someone signed in already goes home.
pub async fn sign_in(
    req: HttpRequest,
    tera: web::Data<Tera>,
    accounts: web::Data<Accounts>,
    proxying: web::Data<Proxying>,
) -> Result<HttpResponse, PageError> {
    if viewer(&req, &accounts, &proxying).await.is_some() {
        return Ok(see_other("/"));
    }
    let register = req.path() == "/register";
    render(&tera, "signin.html", &SignInPage { register })
}

/// `/account`: change the password, delete the account; signed out, the sign-in page instead.
pub async fn account(
    req: HttpRequest,
    tera: web::Data<Tera>,
    accounts: web::Data<Accounts>,
    proxying: web::Data<Proxying>,
) -> Result<HttpResponse, PageError> {
    match viewer(&req, &accounts, &proxying).await {
        Some(viewer) => render(&tera, "account.html", &AccountPage { viewer: &viewer }),
        None => Ok(see_other("/signin?next=/account")),
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location))
        .finish()
}

#[tracing::instrument(name = "room_page", skip_all, fields(room = %code))]
pub async fn room(
    req: HttpRequest,
    code: web::Path<String>,
    tera: web::Data<Tera>,
    registry: web::Data<Registry>,
    (accounts, proxying): (web::Data<Accounts>, web::Data<Proxying>),
) -> Result<HttpResponse, PageError> {
    let missing = || PageError::NoSuchRoom(code.to_uppercase());
    let room = RoomCode::parse(&code).map_err(|_| missing())?;
    // Looked up, not loaded: a page view is no use of the room until its socket joins.
    if !registry.exists(&room).await? {
        return Err(missing());
    }
    let invite_base = proxying
        .public_url
        .as_ref()
        .map_or("", |url| url.as_str().trim_end_matches('/'));
    let viewer = viewer(&req, &accounts, &proxying).await;
    let page = RoomPage {
        code: &room,
        limits: LIMITS,
        invite_base,
        viewer: viewer.as_ref(),
    };
    render(&tera, "room.html", &page)
}

fn render(tera: &Tera, template: &str, page: &impl Serialize) -> Result<HttpResponse, PageError> {
    let context =
        tera::Context::from_serialize(page).context("a page context does not serialize")?;
    let html = tera
        .render(template, &context)
        .with_context(|| format!("failed to render {template}"))?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(html))
}

/// Gives every error response a body in its area's shape: JSON under /api/, an HTML page outside it
/// (the WebSocket endpoint's own errors are left alone), so nobody meets a framework's default text.
pub fn error_page<B>(response: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let path = response.request().path();
    let is_api_error = response
        .response()
        .error()
        .is_some_and(|err| err.as_error::<ApiError>().is_some());
    if path.starts_with("/ws/") || (path.starts_with("/api/") && is_api_error) {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    if path.starts_with("/api/") {
        // actix's own refusals (an oversized body, a wrong method) get the API's JSON shape too.
        let status = response.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::TooLarge,
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            status if status.is_server_error() => ErrorCode::Internal,
            _ => ErrorCode::BadRequest,
        };
        let message = response.response().error().map_or_else(
            || status.canonical_reason().unwrap_or("error").to_owned(),
            ToString::to_string,
        );
        let (request, _) = response.into_parts();
        let body = HttpResponse::build(status)
            .json(serde_json::json!({ "error": { "code": code, "message": message } }));
        return Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(request, body).map_into_right_body(),
        ));
    }
    let status = response.status();
    let page_error = response
        .response()
        .error()
        .and_then(|err| err.as_error::<PageError>());
    match page_error {
        Some(PageError::Unexpected(err)) => tracing::error!(error = ?err, "page failed"),
        Some(PageError::Unavailable(err)) => {
            tracing::error!(error = %err, "page failed on storage")
        }
        _ => {}
    }
    let message = page_error.map(ToString::to_string);
    let (request, _) = response.into_parts();
    let html = render_error(&request, status, message.as_deref());
    let page = HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(html);
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(request, page).map_into_right_body(),
    ))
}

fn render_error(request: &HttpRequest, status: StatusCode, message: Option<&str>) -> String {
    let title = status.canonical_reason().unwrap_or("Error");
    let page = ErrorPage {
        status: status.as_u16(),
        title,
        message: message.unwrap_or(if status.is_server_error() {
            "Something went wrong on our side. Please try again."
        } else {
            "That request could not be handled."
        }),
    };
    let rendered = request.app_data::<web::Data<Tera>>().and_then(|tera| {
        let context = tera::Context::from_serialize(&page).ok()?;
        tera.render("error.html", &context).ok()
    });
    // If even the error template fails, a plain line still beats a blank page.
    rendered.unwrap_or_else(|| format!("{} {title}", status.as_u16()))
}

/// Anything no route matched: JSON under /api/, a page everywhere else.
pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, actix_web::Error> {
    if request.path().starts_with("/api/") {
        Err(super::ApiError::NotFound.into())
    } else {
        Err(PageError::NotFound.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every template renders with its typed context, so a typo fails `cargo test`, not a visitor.
    #[test]
    fn every_template_renders() {
        let tera = crate::assets::templates().unwrap();
        let code = RoomCode::parse("K7MXQ2").unwrap();
        let ann = Account {
            id: crate::domain::UserId::random(),
            username: crate::domain::Username::parse("ann").unwrap(),
        };
        fn context(page: impl Serialize) -> tera::Context {
            tera::Context::from_serialize(page).unwrap()
        }
        let pages: Vec<(&str, tera::Context)> = vec![
            (
                "home.html",
                context(&HomePage {
                    limits: LIMITS,
                    viewer: None,
                }),
            ),
            (
                "home.html",
                context(&HomePage {
                    limits: LIMITS,
                    viewer: Some(&ann),
                }),
            ),
            (
                "room.html",
                context(&RoomPage {
                    code: &code,
                    limits: LIMITS,
                    invite_base: "",
                    viewer: Some(&ann),
                }),
            ),
            ("signin.html", context(&SignInPage { register: true })),
            ("signin.html", context(&SignInPage { register: false })),
            ("account.html", context(&AccountPage { viewer: &ann })),
            (
                "error.html",
                tera::Context::from_serialize(ErrorPage {
                    status: 404,
                    title: "Not Found",
                    message: "gone",
                })
                .unwrap(),
            ),
        ];
        // base.html is extended by all, account_nav.html included in some.
        for name in tera.get_template_names() {
            assert!(
                ["base.html", "account_nav.html"].contains(&name)
                    || pages.iter().any(|(page, _)| page == &name),
                "{name} has no render test"
            );
        }
        for (name, context) in pages {
            let html = tera
                .render(name, &context)
                .unwrap_or_else(|err| panic!("{name}: {err:?}"));
            assert!(html.starts_with("<!doctype html>"), "{name}");
        }
    }

    #[test]
    fn the_header_says_who_is_signed_in() {
        let tera = crate::assets::templates().unwrap();
        let ann = Account {
            id: crate::domain::UserId::random(),
            username: crate::domain::Username::parse("ann").unwrap(),
        };
        let page = HomePage {
            limits: LIMITS,
            viewer: Some(&ann),
        };
        let html = tera
            .render("home.html", &tera::Context::from_serialize(page).unwrap())
            .unwrap();
        assert!(html.contains("Signed in as"), "{html}");
        assert!(html.contains("data-username=\"ann\""));
        let page = HomePage {
            limits: LIMITS,
            viewer: None,
        };
        let html = tera
            .render("home.html", &tera::Context::from_serialize(page).unwrap())
            .unwrap();
        assert!(html.contains("href=\"/signin\""));
    }

    #[test]
    fn user_text_in_templates_is_escaped() {
        let tera = crate::assets::templates().unwrap();
        let page = ErrorPage {
            status: 404,
            title: "Not Found",
            message: "<img src=x onerror=alert(1)>",
        };
        let html = tera
            .render("error.html", &tera::Context::from_serialize(page).unwrap())
            .unwrap();
        assert!(!html.contains("<img src=x"));
        assert!(html.contains("&lt;img src=x"));
    }
}
