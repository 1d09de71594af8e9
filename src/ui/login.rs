//! Logging in and out: the OIDC round trip (login page, callback), the
//! development login (demo users, no password, guarded like every form by the
//! CSRF rule with a pre-session token), the SessionClaim each login makes as
//! the user, and logout, which ends the session's open streams too. Login
//! attempts (not page views) are rate limited per client.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, http::header, web};
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};
use minijinja::{context, value::Serde};

use super::provider_session::{PROVIDER_COOKIE, ProviderCookie};
use super::session_limit::MADE_BY_LABEL;
use super::{
    cookies::{self, LOGIN_COOKIE, LoginState, SESSION_COOKIE, Session},
    csrf::{self, CsrfForm, SignedForm},
    state::{State, redirect},
};
use crate::api::SessionClaim;

/// How long a session cookie is valid at most (the SessionClaim ends it sooner).
const COOKIE_LIFETIME: i64 = 24 * 3600;

/// The login and logout routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login))
        .route("/auth/callback", web::get().to(callback))
        .route("/dev-login", web::post().to(dev_login))
        .route(
            "/login/end-session",
            web::post().to(super::session_limit::end_and_log_in),
        )
        .route("/logout", web::post().to(logout))
        .route("/logged-out", web::get().to(logged_out));
}

/// `GET /login`: to the identity provider, or the development login page.
/// A page view: not a login attempt, not rate limited.
async fn login(state: State, req: HttpRequest) -> HttpResponse {
    if state.session(&req).await.is_some() {
        return redirect("/");
    }
    let Some(provider) = &state.provider else {
        let users = state.cfg.dev_users.clone().unwrap_or_default();
        let (token, cookie) = csrf::pre_session(&state, &req);
        let mut r = state.render(
            "dev_login.html",
            context! { product => state.cfg.product_name.clone(), users => Serde(&users), csrf => token },
        );
        if let Some(c) = cookie {
            r.add_cookie(&c).ok();
        }
        return r;
    };
    let (url, login) = provider.start();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url))
        .cookie(cookies::seal(&state.key, LOGIN_COOKIE, &login, 600))
        .finish()
}

#[derive(serde::Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/callback`: the identity provider's answer; a login attempt.
async fn callback(state: State, req: HttpRequest, q: web::Query<Callback>) -> HttpResponse {
    if let Err(too_many) = state.login_limit.attempt(&req) {
        return too_many.page(&state);
    }
    if let Some(e) = &q.error {
        return state.message(
            StatusCode::UNAUTHORIZED,
            "Login failed",
            &format!("The identity provider said: {e}"),
        );
    }
    let Some(login) = req
        .cookie(LOGIN_COOKIE)
        .and_then(|c| cookies::open::<LoginState>(&state.key, LOGIN_COOKIE, &c))
    else {
        return state.message(
            StatusCode::BAD_REQUEST,
            "Login expired",
            "The login took too long or started elsewhere; log in again.",
        );
    };
    let (Some(code), Some(st)) = (q.code.clone(), q.state.as_deref()) else {
        return state.message(
            StatusCode::BAD_REQUEST,
            "Login failed",
            "The identity provider sent no code.",
        );
    };
    if st != login.state {
        return state.message(
            StatusCode::BAD_REQUEST,
            "Login failed",
            "The login state does not match; log in again.",
        );
    }
    let Some(provider) = &state.provider else {
        return redirect("/login");
    };
    let (user, tokens) = match provider.finish(code, &login).await {
        Ok(u) => u,
        Err(e) => return state.message(StatusCode::UNAUTHORIZED, "Login failed", &e.to_string()),
    };
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let cookie = ProviderCookie::new(&user.name, &tokens, now).seal(&state.key, COOKIE_LIFETIME);
    // Kept whether the session starts now or after the user ends another.
    let mut r = start_session(&state, &req, user.name, user.groups, Some(tokens.id_token)).await;
    r.add_cookie(&cookie).ok();
    r
}

/// `POST /dev-login`: any listed user, no password (only without `oidc`); a
/// login attempt, and a form like any other (the pre-session CSRF token).
async fn dev_login(state: State, req: HttpRequest, form: web::Form<BTreeMap<String, String>>) -> HttpResponse {
    if let Err(too_many) = state.login_limit.attempt(&req) {
        return too_many.page(&state);
    }
    let users = state.cfg.dev_users.clone().unwrap_or_default();
    let (true, Some(u)) = (
        state.provider.is_none(),
        users.iter().find(|u| form.get("user") == Some(&u.name)),
    ) else {
        return state.message(StatusCode::FORBIDDEN, "Refused", "There is no development login here.");
    };
    if let Some(refused) = csrf::login_refusal(&state, &req, form.get("csrf").map(String::as_str)) {
        return refused;
    }
    start_session(&state, &req, u.name.clone(), u.groups.clone(), None).await
}

/// Creates the SessionClaim as the user and sets the session cookie; when it
/// is refused and the user holds sessions, offers to end one of them.
/// Acting with users' ID tokens, `id_token` is the login's: the API server
/// must name its user as the dashboard does, or the login is refused.
pub(super) async fn start_session(
    state: &State,
    req: &HttpRequest,
    user: String,
    groups: Vec<String>,
    id_token: Option<String>,
) -> HttpResponse {
    let name = format!("ui-{}", hex::encode(rand::random::<[u8; 5]>()));
    let s = Session {
        user,
        groups,
        claim: name.clone(),
        exp: k8s_openapi::jiff::Timestamp::now().as_second() + COOKIE_LIFETIME,
    };
    if state.acts_with_tokens() {
        if let Err(why) = same_identity(state, &s, id_token.as_deref()).await {
            return state.message(StatusCode::FORBIDDEN, "No session", &why);
        }
        state.note_id_token(&name, id_token.as_deref().unwrap_or_default());
    }
    let claim: SessionClaim = serde_json::from_value(serde_json::json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "SessionClaim",
        "metadata": {"name": name, "labels": {MADE_BY_LABEL.0: MADE_BY_LABEL.1}},
        "spec": {"profile": state.cfg.session.profile},
    }))
    .expect("a SessionClaim");
    let created = match state.as_user(&s) {
        Ok(c) => {
            Api::<SessionClaim>::namespaced(c, &state.cfg.session.namespace)
                .create(&PostParams::default(), &claim)
                .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = created {
        let message = format!("Your session could not be started: {}", super::state::why(&e));
        let code = match &e {
            kube::Error::Api(s) => s.code,
            _ => 0,
        };
        return super::session_limit::offer(state, req, (&s.user, &s.groups), (code, &message))
            .unwrap_or_else(|| state.message(StatusCode::FORBIDDEN, "No session", &message));
    }
    tracing::info!(user = %s.user, claim = %name, "logged in");
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .cookie(cookies::seal(&state.key, SESSION_COOKIE, &s, COOKIE_LIFETIME))
        .cookie(cookies::removal(LOGIN_COOKIE))
        .cookie(cookies::removal(cookies::PRE_SESSION_COOKIE))
        .cookie(cookies::removal(super::session_limit::PENDING_COOKIE))
        .finish()
}

/// Asks the API server, with the login's ID token, whom it names: the
/// dashboard must name the user alike (a SelfSubjectReview).
async fn same_identity(state: &State, s: &Session, id_token: Option<&str>) -> Result<(), String> {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let token =
        id_token.ok_or("This dashboard acts with the ID token of your login, and none came with it; log in again.")?;
    let client = state.with_token(token).map_err(|e| super::state::why(&e))?;
    let review = Api::<SelfSubjectReview>::all(client)
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(|e| {
            format!(
                "The API server did not accept your login's ID token: {}",
                super::state::why(&e)
            )
        })?;
    let info = review.status.and_then(|st| st.user_info).unwrap_or_default();
    let api_groups = info.groups.unwrap_or_default();
    match super::user_kubeconfig::identity_mismatch(
        (info.username.as_deref().unwrap_or_default(), &api_groups),
        (&s.user, &s.groups),
    ) {
        None => Ok(()),
        Some(m) => {
            tracing::warn!(user = %s.user, mismatch = %m, "login refused: the API server names the user differently");
            Err(format!(
                "Your login cannot be used here: {m}. Tell the dashboard's operators."
            ))
        }
    }
}

/// Ends a session: its open streams (live updates, terminals) at once, its
/// SessionClaim deleted as the user (which revokes its credentials), and its
/// refreshing. Where the dashboard acts with ID tokens and the session's is
/// gone, it deletes by impersonating the user instead, so no session
/// outlives its end.
pub(super) async fn end_session(state: &super::state::UiState, s: &Session) {
    state.ends.end(&s.claim);
    state.refreshes.forget(&s.claim);
    if let Ok(client) = state.as_user(s).or_else(|_| state.impersonating(s)) {
        let api: Api<SessionClaim> = Api::namespaced(client, &state.cfg.session.namespace);
        match api.delete(&s.claim, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => tracing::warn!(user = %s.user, error = %e, "ending the session failed"),
        }
    }
}

/// `POST /logout`: ends the session, then, where the provider has an
/// end-session endpoint, ends the login there too and comes back to
/// `/logged-out`.
async fn logout(state: State, req: HttpRequest, SignedForm(s, _): SignedForm<CsrfForm>) -> HttpResponse {
    end_session(&state, &s).await;
    let provider_cookie = req
        .cookie(PROVIDER_COOKIE)
        .and_then(|c| cookies::open::<ProviderCookie>(&state.key, PROVIDER_COOKIE, &c))
        .filter(|c| c.user == s.user);
    let after = format!("{}/logged-out", state.cfg.public_url.trim_end_matches('/'));
    // Where the API server accepts the dashboard's ID tokens, one is a
    // credential, and a hint would put it in a URL (the provider's access
    // log, the browser's history): the logout then names only the client.
    let hint = provider_cookie
        .as_ref()
        .and_then(|c| c.id_token.as_deref())
        .filter(|_| !state.id_tokens_are_credentials());
    let at_provider = state.provider.as_ref().and_then(|p| p.logout_url(hint, &after));
    let mut r = match at_provider {
        Some(url) => HttpResponse::SeeOther().insert_header((header::LOCATION, url)).finish(),
        None => logged_out_page(&state),
    };
    for c in [SESSION_COOKIE, PROVIDER_COOKIE, super::session_limit::PENDING_COOKIE] {
        r.add_cookie(&cookies::removal(c)).ok();
    }
    r
}

/// `GET /logged-out`: where the provider sends the browser after its logout.
async fn logged_out(state: State) -> HttpResponse {
    logged_out_page(&state)
}

fn logged_out_page(state: &State) -> HttpResponse {
    state.message(
        StatusCode::OK,
        "Logged out",
        "Your session has ended and its credentials are revoked.",
    )
}
