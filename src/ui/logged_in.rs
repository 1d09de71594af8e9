//! The `LoggedIn` extractor: the request's live dashboard session (its
//! cookie opens, has not expired, and its SessionClaim is there, the user's
//! and not being deleted). Without one, the handler does not run: the
//! browser is sent to the login page, and a cookie that no longer opens a
//! session is removed on the way.

use std::{future::Future, pin::Pin};

use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, http::StatusCode};

use super::{
    cookies::{self, SESSION_COOKIE, Session},
    state::{State, redirect},
};

/// A handler argument: the logged-in user's session.
pub struct LoggedIn(pub Session);

impl std::ops::Deref for LoggedIn {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.0
    }
}

/// No live session: to the login page.
#[derive(Debug, thiserror::Error)]
#[error("log in first")]
pub struct NotLoggedIn {
    /// Whether the request carried a session cookie (now stale).
    stale_cookie: bool,
}

impl ResponseError for NotLoggedIn {
    fn status_code(&self) -> StatusCode {
        StatusCode::SEE_OTHER
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = redirect("/login");
        if self.stale_cookie {
            r.add_cookie(&cookies::removal(SESSION_COOKIE)).ok();
        }
        r
    }
}

impl FromRequest for LoggedIn {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<LoggedIn, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<State>()
                .cloned()
                .ok_or_else(|| actix_web::error::ErrorInternalServerError("the dashboard's state is missing"))?;
            match state.session(&req).await {
                Some(s) => Ok(LoggedIn(s)),
                None => Err(NotLoggedIn {
                    stale_cookie: req.cookie(SESSION_COOKIE).is_some(),
                }
                .into()),
            }
        })
    }
}
