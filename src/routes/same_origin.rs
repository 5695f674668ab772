//! The cross-site check on requests that change something with a cookie: a page on another site
//! can make a browser send a form or a `fetch` with the visitor's cookie, and this refuses it.

use actix_web::http::header::{self, HeaderName};
use actix_web::HttpRequest;

use super::{ApiError, Proxying};
use crate::origin::AllowedOrigins;

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// Refuses a request that a browser says came from another site (`Sec-Fetch-Site`), or whose
/// `Origin` is not this server's own. `--allowed-origins` does not widen this: it lets other
/// sites' pages open WebSockets, not act with a visitor's session. Scripts send neither header
/// and pass: they hold no visitor's cookie. Paired with JSON-only bodies (a form cannot send
/// `application/json`), this stops CSRF and login CSRF.
pub fn check(request: &HttpRequest, proxying: &Proxying) -> Result<(), ApiError> {
    let header = |name: &HeaderName| {
        request
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap_or("null"))
    };
    // `same-site` is a sibling subdomain, which is another party as far as sessions go.
    if header(&SEC_FETCH_SITE).is_some_and(|site| !matches!(site, "same-origin" | "none")) {
        return Err(ApiError::CrossSite);
    }
    let host = proxying.client(request).host;
    if !AllowedOrigins::default().permits(header(&header::ORIGIN), host.as_deref()) {
        return Err(ApiError::CrossSite);
    }
    Ok(())
}
