//! The login provider's side of a session: the ID token (the hint of a
//! logout at the provider) and the refresh token, sealed in a cookie of their
//! own. With `oidc.refreshSeconds`, every session a request showed lately is
//! refreshed at the provider that often in the background; a session the
//! provider refuses, or whose user or groups it now names differently, ends
//! at once (its claim deleted, its streams closed), and so does one the
//! provider has not confirmed for twice the interval. Refreshed tokens reach
//! the browser's cookie with its next request.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
};
use serde::{Deserialize, Serialize};

use super::{
    claims::User,
    cookies::{self, SESSION_COOKIE, Session},
    oidc::{RefreshError, Tokens},
    state::UiState,
};

/// The provider cookie.
pub const PROVIDER_COOKIE: &str = "__Host-portico-provider";
/// Browsers keep cookies up to 4096 bytes; past this the ID token is left
/// out (a logout at the provider then names only the client).
const MAX_COOKIE: usize = 4000;
/// Sessions refreshed at once.
const AT_ONCE: usize = 8;
/// How long one refresh may take.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(15);

/// What the provider cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProviderCookie {
    /// The user the tokens are for: they count only with that user's session.
    pub user: String,
    /// The ID token.
    pub id_token: Option<String>,
    /// The refresh token.
    pub refresh: Option<String>,
    /// Unix time the provider last confirmed the session.
    pub checked: i64,
}

impl ProviderCookie {
    /// The cookie of a login or refresh.
    pub fn new(user: &str, tokens: &Tokens, checked: i64) -> ProviderCookie {
        ProviderCookie {
            user: user.to_string(),
            id_token: Some(tokens.id_token.clone()),
            refresh: tokens.refresh.clone(),
            checked,
        }
    }

    /// Sealed, leaving out the ID token if the cookie would be too long.
    pub fn seal(mut self, key: &actix_web::cookie::Key, max_age: i64) -> actix_web::cookie::Cookie<'static> {
        let sealed = cookies::seal(key, PROVIDER_COOKIE, &self, max_age);
        if sealed.value().len() <= MAX_COOKIE {
            return sealed;
        }
        self.id_token = None;
        cookies::seal(key, PROVIDER_COOKIE, &self, max_age)
    }

    fn tokens(&self) -> Tokens {
        Tokens {
            id_token: self.id_token.clone().unwrap_or_default(),
            refresh: self.refresh.clone(),
        }
    }
}

/// A session being refreshed.
struct Watched {
    session: Session,
    cookie: ProviderCookie,
    busy: bool,
}

/// The sessions this dashboard refreshes, by SessionClaim, and those the
/// provider refused (no longer accepted here, even if deleting their claim
/// failed).
#[derive(Default)]
pub struct Refreshes {
    watched: Mutex<HashMap<String, Watched>>,
    refused: Mutex<std::collections::HashSet<String>>,
}

impl Refreshes {
    /// Notes a request's session and provider cookie; returns a newer cookie
    /// to send back when a refresh rotated the tokens since.
    fn note(&self, s: &Session, cookie: ProviderCookie) -> Option<ProviderCookie> {
        let mut watched = self.watched.lock().unwrap();
        match watched.get_mut(&s.claim) {
            Some(w) if w.cookie.checked > cookie.checked => Some(w.cookie.clone()),
            Some(w) => {
                w.cookie = cookie;
                None
            }
            None => {
                watched.insert(
                    s.claim.clone(),
                    Watched {
                        session: s.clone(),
                        cookie,
                        busy: false,
                    },
                );
                None
            }
        }
    }

    /// Stops refreshing a session.
    pub fn forget(&self, claim: &str) {
        self.watched.lock().unwrap().remove(claim);
    }

    /// Stops refreshing a session the provider refused, and accepts it no more.
    fn refuse(&self, claim: &str) {
        self.forget(claim);
        self.refused.lock().unwrap().insert(claim.to_string());
    }

    /// Whether the provider refused the session of `claim`.
    pub fn refused(&self, claim: &str) -> bool {
        self.refused.lock().unwrap().contains(claim)
    }

    /// The sessions due for a refresh (marked busy), dropping those that ended.
    fn due(&self, now: i64, every: i64, alive: impl Fn(&str) -> bool) -> Vec<(Session, ProviderCookie)> {
        self.refused.lock().unwrap().retain(|c| alive(c));
        let mut watched = self.watched.lock().unwrap();
        watched.retain(|_, w| w.session.exp > now && alive(&w.session.claim));
        watched
            .values_mut()
            .filter(|w| !w.busy && now - w.cookie.checked >= every)
            .map(|w| {
                w.busy = true;
                (w.session.clone(), w.cookie.clone())
            })
            .collect()
    }

    fn done(&self, claim: &str, cookie: Option<ProviderCookie>) {
        if let Some(w) = self.watched.lock().unwrap().get_mut(claim) {
            w.busy = false;
            if let Some(c) = cookie {
                w.cookie = c;
            }
        }
    }
}

/// The provider cookie a request carries for session `s`, if it opens and
/// names the same user.
pub fn cookie_of(state: &UiState, req: &actix_web::HttpRequest, s: &Session) -> Option<ProviderCookie> {
    let c: ProviderCookie = cookies::open(&state.key, PROVIDER_COOKIE, &req.cookie(PROVIDER_COOKIE)?)?;
    (c.user == s.user).then_some(c)
}

/// Middleware: notes each request's session for refreshing, and sends back
/// tokens a refresh rotated since (unless the response sets the cookie
/// itself, as logging out does).
pub async fn keep(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<super::state::State>().cloned();
    let newer = state
        .as_ref()
        .filter(|st| st.provider.as_ref().is_some_and(|p| p.refreshes()))
        .and_then(|st| {
            let s: Session = cookies::open(&st.key, SESSION_COOKIE, &req.cookie(SESSION_COOKIE)?)?;
            let c = cookie_of(st, req.request(), &s)?;
            let now = k8s_openapi::jiff::Timestamp::now().as_second();
            (s.exp > now && st.claim_alive(&s.claim)).then_some(())?;
            st.refreshes.note(&s, c).map(|c| (st.clone(), c, s.exp - now))
        });
    let mut res = next.call(req).await?;
    if let Some((st, cookie, max_age)) = newer
        && !res.response().cookies().any(|c| c.name() == PROVIDER_COOKIE)
    {
        res.response_mut().add_cookie(&cookie.seal(&st.key, max_age)).ok();
    }
    Ok(res)
}

/// Refreshes due sessions until the dashboard stops.
pub async fn run(state: Arc<UiState>) {
    use futures::StreamExt;
    let Some(every) = state.cfg.oidc.as_ref().and_then(|o| o.refresh_seconds) else {
        return;
    };
    let every = i64::from(every);
    let mut tick = tokio::time::interval(Duration::from_millis((every as u64 * 1000 / 4).clamp(250, 30_000)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        let due = state.refreshes.due(now, every, |claim| state.claim_alive(claim));
        futures::stream::iter(due)
            .for_each_concurrent(AT_ONCE, |(s, cookie)| refresh_one(&state, s, cookie, now, every))
            .await;
    }
}

async fn refresh_one(state: &Arc<UiState>, s: Session, cookie: ProviderCookie, now: i64, every: i64) {
    let Some(provider) = &state.provider else { return };
    let user = User {
        name: s.user.clone(),
        groups: s.groups.clone(),
    };
    let answer = tokio::time::timeout(REFRESH_TIMEOUT, provider.refresh(&cookie.tokens(), &user))
        .await
        .unwrap_or_else(|_| Err(RefreshError::Unreachable("the provider did not answer in time".into())));
    match answer {
        Ok(tokens) => {
            state.note_id_token(&s.claim, &tokens.id_token);
            state
                .refreshes
                .done(&s.claim, Some(ProviderCookie::new(&s.user, &tokens, now)));
        }
        Err(RefreshError::Unreachable(e)) if now - cookie.checked < 2 * every => {
            tracing::warn!(user = %s.user, claim = %s.claim, error = %e, "the provider could not refresh the session; trying again");
            state.refreshes.done(&s.claim, None);
        }
        Err(e) => {
            tracing::info!(user = %s.user, claim = %s.claim, reason = %e, "session ended: the provider no longer confirms it");
            state.refreshes.refuse(&s.claim);
            super::login::end_session(state, &s).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(claim: &str) -> Session {
        Session {
            user: "alice".into(),
            groups: vec![],
            claim: claim.into(),
            exp: 1_000,
        }
    }

    fn cookie(checked: i64, refresh: &str) -> ProviderCookie {
        ProviderCookie {
            user: "alice".into(),
            id_token: Some("id".into()),
            refresh: Some(refresh.into()),
            checked,
        }
    }

    #[test]
    fn sessions_come_due_once_and_rotated_tokens_go_back_to_the_browser() {
        let r = Refreshes::default();
        assert_eq!(r.note(&session("ui-1"), cookie(100, "r1")), None);
        assert!(r.due(150, 60, |_| true).is_empty(), "not due before the interval");
        let due = r.due(160, 60, |_| true);
        assert_eq!(due.len(), 1);
        assert!(
            r.due(500, 60, |_| true).is_empty(),
            "a busy session is not handed out twice"
        );
        r.done("ui-1", Some(cookie(160, "r2")));
        // A request with the old cookie gets the rotated one back.
        assert_eq!(r.note(&session("ui-1"), cookie(100, "r1")), Some(cookie(160, "r2")));
        // A cookie newer than the known (another replica refreshed) is taken.
        assert_eq!(r.note(&session("ui-1"), cookie(200, "r3")), None);
        assert_eq!(r.due(260, 60, |_| true)[0].1, cookie(200, "r3"));
    }

    #[test]
    fn ended_and_expired_sessions_are_dropped() {
        let r = Refreshes::default();
        r.note(&session("ui-1"), cookie(0, "a"));
        r.note(&session("ui-2"), cookie(0, "b"));
        assert_eq!(r.due(100, 60, |c| c != "ui-2").len(), 1);
        assert!(r.watched.lock().unwrap().get("ui-2").is_none());
        assert!(r.due(2_000, 60, |_| true).is_empty(), "past the cookie's expiry");
        assert!(r.watched.lock().unwrap().is_empty());
    }

    #[test]
    fn a_refused_session_stays_refused_until_its_claim_is_gone() {
        let r = Refreshes::default();
        r.note(&session("ui-1"), cookie(0, "a"));
        r.refuse("ui-1");
        assert!(r.refused("ui-1") && !r.refused("ui-2"));
        assert!(r.due(100, 60, |_| true).is_empty(), "no longer refreshed");
        r.due(100, 60, |c| c != "ui-1");
        assert!(!r.refused("ui-1"), "forgotten once its claim is gone");
    }

    #[test]
    fn a_cookie_too_long_for_browsers_leaves_the_id_token_out() {
        let key = actix_web::cookie::Key::generate();
        let long = ProviderCookie {
            id_token: Some("x".repeat(5_000)),
            ..cookie(1, "r")
        };
        let sealed = long.seal(&key, 60);
        assert!(sealed.value().len() <= MAX_COOKIE);
        let back: ProviderCookie = cookies::open(&key, PROVIDER_COOKIE, &sealed).unwrap();
        assert_eq!((back.id_token, back.refresh.as_deref()), (None, Some("r")));
    }
}
