//! The sign-in session cookie: its name, its flags, and reading it back.
//!
//! HttpOnly (no script reads it) and SameSite=Lax (other sites' requests carry it only on
//! top-level navigation). Over https it is also `Secure` and named with the `__Host-` prefix,
//! which browsers accept only from a secure origin, for the whole host and no other: a sibling
//! subdomain or a plain-http page cannot plant one.

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::HttpRequest;

use super::Proxying;
use crate::accounts::Accounts;
use crate::domain::{Account, SessionToken};
use crate::storage::StorageError;

const PLAIN_NAME: &str = "hubbub_session";
const SECURE_NAME: &str = "__Host-hubbub_session";

/// How this request's session cookie is named and flagged.
pub struct SessionCookie {
    secure: bool,
}

impl SessionCookie {
    /// Secure when the visitor's page is https: the connection itself, `--public-url https://…`,
    /// or `X-Forwarded-Proto: https` from a proxy trusted with `--trust-proxy`.
    pub fn of(request: &HttpRequest, proxying: &Proxying) -> Self {
        let public_https = proxying
            .public_url
            .as_ref()
            .is_some_and(|url| url.scheme() == "https");
        Self {
            secure: public_https || proxying.client(request).scheme == "https",
        }
    }

    fn name(&self) -> &'static str {
        if self.secure {
            SECURE_NAME
        } else {
            PLAIN_NAME
        }
    }

    /// The token the request carries, if it carries one of the server's shape.
    pub fn token(&self, request: &HttpRequest) -> Option<SessionToken> {
        request
            .cookie(self.name())
            .and_then(|cookie| SessionToken::parse(cookie.value()))
    }

    /// The account the request's cookie signs in as, with its token; `None` without a cookie or
    /// with one that signs nobody in (expired, ended, garbled).
    pub async fn account(
        &self,
        request: &HttpRequest,
        accounts: &Accounts,
    ) -> Result<Option<(Account, SessionToken)>, StorageError> {
        let Some(token) = self.token(request) else {
            return Ok(None);
        };
        Ok(accounts
            .authenticate(&token)
            .await?
            .map(|account| (account, token)))
    }

    /// Starts a session in the browser for `lifetime`.
    pub fn set(&self, token: &SessionToken, lifetime: std::time::Duration) -> Cookie<'static> {
        let max_age =
            time::Duration::seconds(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
        self.build(token.expose().to_owned(), max_age)
    }

    /// Removes the cookie from the browser.
    pub fn clear(&self) -> Cookie<'static> {
        self.build(String::new(), time::Duration::ZERO)
    }

    fn build(&self, value: String, max_age: time::Duration) -> Cookie<'static> {
        Cookie::build(self.name(), value)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(max_age)
            .finish()
    }
}
