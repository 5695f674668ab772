//! `/api/account`: register, sign in and out, change the password, delete the account.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::session_cookie::SessionCookie;
use super::{same_origin, ApiError, Proxying};
use crate::accounts::{Accounts, SignedIn};
use crate::chat::sign_ins::SignIns;
use crate::domain::{Account, Invalid, Password, SessionToken, Username};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    /// A new account's username and password, both held to the rules.
    pub fn registration(self) -> Result<(Username, Password), Invalid> {
        Ok((
            Username::parse(&self.username)?,
            Password::parse(self.password)?,
        ))
    }

    /// A sign-in: the username as typed (an unknown one fails like a wrong password) and a
    /// password within the size bound.
    pub fn sign_in(self) -> Result<(String, Password), Invalid> {
        Ok((self.username, Password::attempt(self.password)?))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current: String,
    new: String,
}

impl PasswordChange {
    /// The current password (only bounded) and the new one (held to the rules).
    pub fn passwords(self) -> Result<(Password, Password), Invalid> {
        Ok((Password::attempt(self.current)?, Password::parse(self.new)?))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    password: String,
}

/// `POST /api/account/register` {username, password}: 201 and a session cookie.
#[tracing::instrument(skip_all)]
pub async fn register(
    req: HttpRequest,
    body: web::Json<Credentials>,
    accounts: web::Data<Accounts>,
    proxying: web::Data<Proxying>,
    sign_ins: web::Data<SignIns>,
) -> Result<HttpResponse, ApiError> {
    same_origin::check(&req, &proxying)?;
    let (username, password) = body.into_inner().registration()?;
    let from = proxying.client(&req).address;
    let signed_in = accounts.register(username, password, from).await?;
    let services = (accounts.get_ref(), proxying.get_ref(), sign_ins.get_ref());
    Ok(started(HttpResponse::Created(), &req, services, signed_in).await)
}

/// `POST /api/account/login` {username, password}: 200 and a new session cookie.
#[tracing::instrument(skip_all)]
pub async fn login(
    req: HttpRequest,
    body: web::Json<Credentials>,
    accounts: web::Data<Accounts>,
    proxying: web::Data<Proxying>,
    sign_ins: web::Data<SignIns>,
) -> Result<HttpResponse, ApiError> {
    same_origin::check(&req, &proxying)?;
    let (username, password) = body.into_inner().sign_in()?;
    let from = proxying.client(&req).address;
    let signed_in = accounts.login(&username, password, from).await?;
    let services = (accounts.get_ref(), proxying.get_ref(), sign_ins.get_ref());
    Ok(started(HttpResponse::Ok(), &req, services, signed_in).await)
}

/// `POST /api/account/logout`: 204; the session ends on the server, whatever the browser keeps.
#[tracing::instrument(skip_all)]
pub async fn logout(
    req: HttpRequest,
    accounts: web::Data<Accounts>,
    proxying: web::Data<Proxying>,
    sign_ins: web::Data<SignIns>,
) -> Result<HttpResponse, ApiError> {
    same_origin::check(&req, &proxying)?;
    let cookie = SessionCookie::of(&req, &proxying);
    if let Some(token) = cookie.token(&req) {
        accounts.logout(&token).await?;
        sign_ins.end(&token.digest());
    }
    Ok(HttpResponse::NoContent().cookie(cookie.clear()).finish())
}

/// `GET /api/account`: who this session is signed in as, or 401.
#[tracing::instrument(skip_all)]
pub async fn current(
    req: HttpRequest,
    accounts: web::Data<Accounts>,
    proxying: web::Data<Proxying>,
) -> Result<HttpResponse, ApiError> {
    let (account, _) = signed_in(&req, &accounts, &proxying).await?;
    Ok(private(&mut HttpResponse::Ok()).json(account))
}

/// `POST /api/account/password` {current, new}: 204; every other session of the account ends.
#[tracing::instrument(skip_all)]
pub async fn change_password(
    req: HttpRequest,
    body: web::Json<PasswordChange>,
    accounts: web::Data<Accounts>,
    proxying: web::Data<Proxying>,
    sign_ins: web::Data<SignIns>,
) -> Result<HttpResponse, ApiError> {
    same_origin::check(&req, &proxying)?;
    let (account, token) = signed_in(&req, &accounts, &proxying).await?;
    let (current, new) = body.into_inner().passwords()?;
    let from = proxying.client(&req).address;
    accounts
        .change_password(&account, &token, current, new, from)
        .await?;
    sign_ins.end_account(account.id, Some(&token.digest()));
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/account` {password}: 204; the account and all its sessions are gone.
#[tracing::instrument(skip_all)]
pub async fn delete(
    req: HttpRequest,
    body: web::Json<Confirmation>,
    accounts: web::Data<Accounts>,
    proxying: web::Data<Proxying>,
    sign_ins: web::Data<SignIns>,
) -> Result<HttpResponse, ApiError> {
    same_origin::check(&req, &proxying)?;
    let (account, _) = signed_in(&req, &accounts, &proxying).await?;
    let password = Password::attempt(body.into_inner().password)?;
    let from = proxying.client(&req).address;
    accounts.delete(&account, password, from).await?;
    sign_ins.end_account(account.id, None);
    let cookie = SessionCookie::of(&req, &proxying);
    Ok(HttpResponse::NoContent().cookie(cookie.clear()).finish())
}

/// The account of the request's live session, and its token; 401 without one.
async fn signed_in(
    req: &HttpRequest,
    accounts: &Accounts,
    proxying: &Proxying,
) -> Result<(Account, SessionToken), ApiError> {
    SessionCookie::of(req, proxying)
        .account(req, accounts)
        .await?
        .ok_or(ApiError::NotSignedIn)
}

/// The response that starts a session: the account, and its cookie. A session the browser held
/// before (perhaps planted) ends here, so nobody keeps a token from before this sign-in.
async fn started(
    mut response: actix_web::HttpResponseBuilder,
    req: &HttpRequest,
    (accounts, proxying, sign_ins): (&Accounts, &Proxying, &SignIns),
    signed_in: SignedIn,
) -> HttpResponse {
    let cookie = SessionCookie::of(req, proxying);
    if let Some(previous) = cookie.token(req) {
        match accounts.logout(&previous).await {
            Ok(()) => sign_ins.end(&previous.digest()),
            Err(err) => {
                tracing::warn!(error = %err, "cannot end the session a sign-in replaces; it expires on its own")
            }
        }
    }
    private(&mut response)
        .cookie(cookie.set(&signed_in.token, accounts.session_lifetime()))
        .json(signed_in.account)
}

/// Responses about an account are nobody else's: no cache keeps them.
fn private(response: &mut actix_web::HttpResponseBuilder) -> &mut actix_web::HttpResponseBuilder {
    response.insert_header((header::CACHE_CONTROL, "no-store"))
}
