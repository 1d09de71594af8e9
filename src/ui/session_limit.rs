//! A login refused while the user holds active sessions (a profile's
//! `maxActivePerUser`): instead of a dead end, the page lists the user's
//! sessions, newest last, each with "End it and log in". The identity the
//! provider just verified is kept for five minutes in a sealed cookie of its
//! own, so ending a session needs no second login (a login that goes on, and
//! logging out, remove it); the session is ended as the user (the API server
//! and the webhook decide, as for `kubectl delete`), only one of the user's
//! own under the dashboard's profile, and the login then starts again.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Preconditions},
};
use minijinja::{context, value::Serde};
use serde::{Deserialize, Serialize};

use super::{
    cookies::{self, Session},
    csrf,
    format::when,
    state::{State, why},
};
use crate::api::SessionClaim;

/// The cookie holding the identity of a login waiting for a session to end.
pub const PENDING_COOKIE: &str = "__Host-portico-pending";
/// How long a refused login may end a session and go on.
const PENDING_LIFETIME: i64 = 300;
/// The label the dashboard puts on the SessionClaims of its logins.
pub const MADE_BY_LABEL: (&str, &str) = ("app.kubernetes.io/created-by", "portico-ui");

/// A login the identity provider verified, waiting for a session to end.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pending {
    /// Kubernetes user name.
    pub user: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Unix time after which it is void.
    pub exp: i64,
}

/// One active session of the user, as the page lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Held {
    /// The SessionClaim's name.
    pub name: String,
    /// Its UID: the one ended is the one listed, not another made under its name since.
    #[serde(skip)]
    pub uid: String,
    /// `dashboard` (a login) or `kubectl` (claimed directly).
    pub via: &'static str,
    /// When it was made, as people read it.
    pub since: String,
    /// When it ends, as people read it (empty until the operator says).
    pub ends: String,
}

/// The active sessions of `user` under `profile` among `claims` (the limit
/// is per profile), oldest first (pure).
pub fn held_by<'a>(claims: impl IntoIterator<Item = &'a SessionClaim>, user: &str, profile: &str) -> Vec<Held> {
    let mut mine: Vec<&SessionClaim> = claims
        .into_iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none() && c.spec.profile == profile)
        .filter(|c| c.status.as_ref().and_then(|s| s.user.as_deref()) == Some(user))
        .collect();
    mine.sort_by_key(|c| (c.metadata.creation_timestamp.clone().map(|t| t.0), c.name_any()));
    mine.into_iter()
        .map(|c| Held {
            name: c.name_any(),
            uid: c.uid().unwrap_or_default(),
            via: match c.labels().get(MADE_BY_LABEL.0).map(String::as_str) == Some(MADE_BY_LABEL.1) {
                true => "dashboard",
                false => "kubectl",
            },
            since: c
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| when(&t.0.to_string()))
                .unwrap_or_default(),
            ends: c
                .status
                .as_ref()
                .and_then(|s| s.expires_at.as_ref())
                .map(|t| when(&t.0.to_string()))
                .unwrap_or_default(),
        })
        .collect()
}

/// The page for a login whose session was refused (`code`, `message`): the
/// user's sessions of the dashboard's profile to end, when the refusal is a
/// 403 (the webhook's limit; not an outage) and there are any; else `None`.
pub(super) fn offer(
    state: &State,
    req: &HttpRequest,
    (user, groups): (&str, &[String]),
    (code, message): (u16, &str),
) -> Option<HttpResponse> {
    if code != 403 {
        return None;
    }
    let held = held_by(state.claims().iter().map(|c| &**c), user, &state.cfg.session.profile);
    if held.is_empty() {
        return None;
    }
    let (token, pre) = csrf::pre_session(state, req);
    let pending = Pending {
        user: user.to_string(),
        groups: groups.to_vec(),
        exp: k8s_openapi::jiff::Timestamp::now().as_second() + PENDING_LIFETIME,
    };
    let mut r = state.render(
        "session_limit.html",
        context! { message, held => Serde(&held), csrf => token, user },
    );
    *r.status_mut() = StatusCode::CONFLICT;
    r.add_cookie(&cookies::seal(&state.key, PENDING_COOKIE, &pending, PENDING_LIFETIME))
        .ok();
    if let Some(c) = pre {
        r.add_cookie(&c).ok();
    }
    Some(r)
}

/// `POST /login/end-session`: ends one of the pending user's own sessions,
/// as the user, then logs in. A login attempt (rate limited) and a form
/// under the pre-session CSRF rule.
pub(super) async fn end_and_log_in(
    state: State,
    req: HttpRequest,
    form: web::Form<BTreeMap<String, String>>,
) -> HttpResponse {
    if let Err(too_many) = state.login_limit.attempt(&req) {
        return too_many.page(&state);
    }
    if let Some(refused) = csrf::login_refusal(&state, &req, form.get("csrf").map(String::as_str)) {
        return refused;
    }
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let Some(p) = req
        .cookie(PENDING_COOKIE)
        .and_then(|c| cookies::open::<Pending>(&state.key, PENDING_COOKIE, &c))
        .filter(|p| p.exp > now)
    else {
        return state.message(
            StatusCode::BAD_REQUEST,
            "Login expired",
            "Ending a session must follow the login that was refused, within five minutes; log in again.",
        );
    };
    let name = form.get("claim").cloned().unwrap_or_default();
    let held = held_by(state.claims().iter().map(|c| &**c), &p.user, &state.cfg.session.profile);
    let Some(uid) = held.iter().find(|h| h.name == name).map(|h| h.uid.clone()) else {
        return state.message(
            StatusCode::NOT_FOUND,
            "Not ended",
            "That is not one of your active sessions (it may have ended already); log in again.",
        );
    };
    // As the user: what they may end with kubectl, and nothing more; with
    // their login's ID token where the dashboard acts with those.
    let as_user = Session {
        user: p.user.clone(),
        groups: p.groups.clone(),
        claim: String::new(),
        exp: p.exp,
    };
    let id_token = req
        .cookie(super::provider_session::PROVIDER_COOKIE)
        .and_then(|c| {
            cookies::open::<super::provider_session::ProviderCookie>(
                &state.key,
                super::provider_session::PROVIDER_COOKIE,
                &c,
            )
        })
        .filter(|c| c.user == p.user)
        .and_then(|c| c.id_token);
    let client = match (state.acts_with_tokens(), &id_token) {
        (true, Some(token)) => state.with_token(token),
        (true, None) => Err(kube::Error::Service(
            "this dashboard acts with the ID token of your login, and it is gone; log in again".into(),
        )),
        (false, _) => state.as_user(&as_user),
    };
    let ended = match client {
        Ok(client) => Api::<SessionClaim>::namespaced(client, &state.cfg.session.namespace)
            .delete(
                &name,
                &DeleteParams::default().preconditions(Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
            )
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = ended {
        return state.message(
            StatusCode::FORBIDDEN,
            "Not ended",
            &format!("The session could not be ended: {}", why(&e)),
        );
    }
    state.ends.end(&name);
    tracing::info!(user = %p.user, claim = %name, "ended a session to log in");
    // A login that goes on removes the pending cookie itself; one refused
    // again offers afresh, with a new one.
    super::login::start_session(&state, &req, p.user, p.groups, id_token).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(name: &str, user: &str, created: &str, dashboard: bool, deleting: bool) -> SessionClaim {
        let mut v = json!({"apiVersion": "portico.dev/v1alpha1", "kind": "SessionClaim",
            "metadata": {"name": name, "namespace": "portico-sessions", "creationTimestamp": created},
            "spec": {"profile": "developer"},
            "status": {"user": user, "expiresAt": "2026-12-06T12:00:00Z"}});
        if dashboard {
            v["metadata"]["labels"] = json!({MADE_BY_LABEL.0: MADE_BY_LABEL.1});
        }
        if deleting {
            v["metadata"]["deletionTimestamp"] = json!("2026-12-06T11:00:00Z");
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_users_active_sessions_oldest_first_and_how_they_were_made() {
        let claims = [
            claim("ui-b", "alice", "2026-12-06T10:05:00Z", true, false),
            claim("cli", "alice", "2026-12-06T10:01:00Z", false, false),
            claim("ui-a", "alice", "2026-12-06T10:03:00Z", true, false),
            claim("ending", "alice", "2026-12-06T10:00:00Z", true, true),
            claim("bobs", "bob", "2026-12-06T10:00:00Z", true, false),
        ];
        let held = held_by(&claims, "alice", "developer");
        let names: Vec<(&str, &str)> = held.iter().map(|h| (h.name.as_str(), h.via)).collect();
        assert_eq!(
            names,
            [("cli", "kubectl"), ("ui-a", "dashboard"), ("ui-b", "dashboard")]
        );
        assert_eq!(held[0].since, "2026-12-06 10:01:00 UTC");
        assert_eq!(held[0].ends, "2026-12-06 12:00:00 UTC");
        assert!(held_by(&claims, "carol", "developer").is_empty());
        assert!(held_by(&claims, "alice", "ops").is_empty(), "the limit is per profile");
    }
}
