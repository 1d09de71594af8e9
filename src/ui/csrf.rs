//! The one CSRF rule of every form: a form sent from another site (its
//! `Origin` is not the dashboard's) is refused, and so is one without the
//! right token. Logged-in forms carry the session's token; the development
//! login, before any session, carries a pre-session token that must match its
//! cookie (double submit, compared in constant time). [`SignedForm`] is
//! the extractor for a logged-in form: the session, the form, and this rule,
//! before the handler runs.

use actix_web::{HttpRequest, HttpResponse, ResponseError, cookie::Cookie, http::StatusCode, http::header};

use super::{
    cookies::{self, PRE_SESSION_COOKIE, PreSession, Session},
    logged_in::LoggedIn,
    state::{State, UiState},
};

/// How long a pre-session token lives (a login page left open longer is reloaded).
const PRE_SESSION_LIFETIME: i64 = 12 * 3600;

/// A form whose only field is the CSRF token.
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

/// A form that carries the CSRF token.
pub trait WithCsrf {
    /// The submitted token.
    fn csrf(&self) -> Option<&str>;
}

impl WithCsrf for CsrfForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

impl WithCsrf for std::collections::BTreeMap<String, String> {
    fn csrf(&self) -> Option<&str> {
        self.get("csrf").map(String::as_str)
    }
}

/// A form's fields in the order the browser sent them.
impl WithCsrf for Vec<(String, String)> {
    fn csrf(&self) -> Option<&str> {
        self.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str())
    }
}

/// A handler argument: the logged-in user's session and a form `T` that
/// passed the CSRF rule. Without a session: to the login page; from
/// another site or without the token: the refusal page.
pub struct SignedForm<T>(pub Session, pub T);

impl<T: WithCsrf + serde::de::DeserializeOwned + 'static> actix_web::FromRequest for SignedForm<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<SignedForm<T>, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let logged_in = LoggedIn::from_request(req, &mut actix_web::dev::Payload::None);
        let form = actix_web::web::Form::<T>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let LoggedIn(s) = logged_in.await?;
            let form = form.await?.into_inner();
            let state = req
                .app_data::<State>()
                .ok_or_else(|| actix_web::error::ErrorInternalServerError("the dashboard's state is missing"))?;
            match refusal(state, &req, &s, form.csrf()) {
                Some(refused) => Err(actix_web::error::InternalError::from_response("refused", refused).into()),
                None => Ok(SignedForm(s, form)),
            }
        })
    }
}

/// The page refusing a logged-in form sent from another site or without the
/// session's token, or `None` when it may go ahead.
pub(super) fn refusal(state: &UiState, req: &HttpRequest, s: &Session, token: Option<&str>) -> Option<HttpResponse> {
    check(
        state,
        (req, Some(s)),
        Some(cookies::csrf_token(&state.key, s)),
        token,
        "reload the page",
    )
}

/// The same rule for the development login: the token must match the
/// pre-session cookie the login page set.
pub(super) fn login_refusal(state: &UiState, req: &HttpRequest, token: Option<&str>) -> Option<HttpResponse> {
    let expected = req
        .cookie(PRE_SESSION_COOKIE)
        .and_then(|c| cookies::open::<PreSession>(&state.key, PRE_SESSION_COOKIE, &c))
        .map(|p| p.token);
    check(
        state,
        (req, None),
        expected,
        token,
        "open the dashboard's own login page and log in there",
    )
}

/// The pre-session token of this browser (kept when its cookie is valid),
/// and the cookie to set when it is new.
pub(super) fn pre_session(state: &UiState, req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    if let Some(p) = req
        .cookie(PRE_SESSION_COOKIE)
        .and_then(|c| cookies::open::<PreSession>(&state.key, PRE_SESSION_COOKIE, &c))
    {
        return (p.token, None);
    }
    let p = PreSession {
        token: hex::encode(rand::random::<[u8; 16]>()),
    };
    let cookie = cookies::seal(&state.key, PRE_SESSION_COOKIE, &p, PRE_SESSION_LIFETIME);
    (p.token, Some(cookie))
}

/// The refusal page is a logged-in page for the session `s`, when there is one.
fn check(
    state: &UiState,
    (req, s): (&HttpRequest, Option<&Session>),
    expected: Option<String>,
    submitted: Option<&str>,
    what_to_do: &str,
) -> Option<HttpResponse> {
    if let Some(origin) = other_site(state, req) {
        return Some(state.refuse(
            s,
            StatusCode::FORBIDDEN,
            "Refused",
            &format!(
                "This form was sent from another site ({origin}), not from this dashboard's pages, so it was ignored; {what_to_do}."
            ),
        ).error_response());
    }
    match (expected, submitted) {
        (Some(want), Some(got)) if cookies::tokens_match(&want, got) => None,
        _ => Some(
            state
                .refuse(
                    s,
                    StatusCode::FORBIDDEN,
                    "Refused",
                    &format!("The form's CSRF token is missing or wrong, so it was ignored; {what_to_do}."),
                )
                .error_response(),
        ),
    }
}

/// The `Origin` of a request sent from another site, if it is one: a browser
/// names the page's origin on every form it posts (`null` for opaque ones).
fn other_site(state: &UiState, req: &HttpRequest) -> Option<String> {
    let origin = req.headers().get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("an unreadable Origin");
    (origin != state.public_origin()).then(|| origin.to_string())
}
