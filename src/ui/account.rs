//! The account page: the session (profile, groups, end), the session's
//! kubeconfig (read as the user, whom the operator lets read that one
//! Secret), and Extend (a heartbeat on the SessionClaim, as the user).
//! Where the API server trusts the login provider (`apiServer`), also
//! kubectl as the user: a kubeconfig that logs in through kubectl's
//! `oidc-login` plugin, and the login's ID token for one-off
//! `kubectl --token` use.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use minijinja::{context, value::Serde};

use super::{
    cookies::Session,
    csrf::{CsrfForm, SignedForm},
    logged_in::LoggedIn,
    page::{Page, PageError},
    state::{State, keepalive, redirect, why},
    user_kubeconfig,
};
use crate::api::SessionClaim;

/// The account page, its kubeconfig and the session's extension.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account", web::get().to(page))
        .route("/account/kubeconfig", web::get().to(kubeconfig))
        .route("/account/extend", web::post().to(extend))
        .route("/account/kubeconfig-login", web::get().to(login_kubeconfig))
        .route("/account/token", web::get().to(token))
        .route("/account/api-server-ca.crt", web::get().to(api_server_ca));
}

/// What the account page offers for kubectl as the user: whether there is
/// a login kubeconfig, and whether the login's ID token works with kubectl.
fn kubectl_offers(state: &State) -> (bool, bool) {
    let kubeconfig = state
        .api_server
        .as_ref()
        .is_some_and(|a| a.cfg.kubectl_client_id.is_some());
    (kubeconfig, state.id_tokens_are_credentials())
}

/// The session page.
pub async fn page(state: State, LoggedIn(s): LoggedIn) -> Page {
    let claim = claims(&state, &s)?
        .get(&s.claim)
        .await
        .map_err(|e| state.refuse(Some(&s), StatusCode::BAD_GATEWAY, "Session unavailable", &why(&e)))?;
    let end = claim.status.as_ref().and_then(|st| st.expires_at.as_ref()).map(|t| t.0);
    let (max_end, capped) = super::format::max_end(
        &claim.metadata,
        claim.spec.idle_timeout.as_deref(),
        claim.spec.max_lifetime.as_deref(),
        end,
    );
    let expires = end.map(|t| t.to_string());
    let (login_kubeconfig, id_token) = kubectl_offers(&state);
    Ok(state.page(
        "account.html",
        &s,
        context! { claim => Serde(&claim), expires, max_end, capped, login_kubeconfig, id_token },
    ))
}

/// The session namespace's SessionClaims, as the user.
fn claims(state: &State, s: &Session) -> Result<Api<SessionClaim>, PageError> {
    let client = state.as_user(s).map_err(|e| state.unavailable(s, &e))?;
    Ok(Api::namespaced(client, &state.cfg.session.namespace))
}

/// The session's kubeconfig, as a download.
pub async fn kubeconfig(state: State, LoggedIn(s): LoggedIn) -> Page {
    let ns = &state.cfg.session.namespace;
    let result = async {
        let client = state.as_user(&s).map_err(|e| why(&e))?;
        let claim = Api::<SessionClaim>::namespaced(client.clone(), ns)
            .get(&s.claim)
            .await
            .map_err(|e| why(&e))?;
        let name = claim
            .status
            .and_then(|st| st.kubeconfig_secret_name)
            .ok_or("the session's kubeconfig is not ready yet")?;
        let secret = Api::<Secret>::namespaced(client, ns)
            .get(&name)
            .await
            .map_err(|e| why(&e))?;
        secret
            .data
            .and_then(|d| d.get("kubeconfig").map(|b| b.0.clone()))
            .ok_or_else(|| "the kubeconfig is not issued yet".to_string())
    }
    .await;
    let bytes = result.map_err(|e| state.refuse(Some(&s), StatusCode::CONFLICT, "No kubeconfig", &e))?;
    Ok(HttpResponse::Ok()
        .content_type("application/yaml")
        .insert_header(("content-disposition", "attachment; filename=\"kubeconfig\""))
        .insert_header(("cache-control", "no-store"))
        .body(bytes))
}

/// Extends the session (a heartbeat), then shows the page again.
pub async fn extend(state: State, SignedForm(s, _): SignedForm<CsrfForm>) -> Page {
    keepalive(&claims(&state, &s)?, &s.claim)
        .await
        .map_err(|e| state.refuse(Some(&s), StatusCode::FORBIDDEN, "Not extended", &why(&e)))?;
    Ok(redirect("/account"))
}

/// A kubeconfig that authenticates the user as themselves: kubectl's
/// `oidc-login` plugin logs in at the issuer with the public client. It
/// holds no credential, so it is the same for every user but its names.
pub async fn login_kubeconfig(state: State, LoggedIn(s): LoggedIn) -> Page {
    let offered = state.api_server.as_ref().and_then(|api| {
        let client_id = api.cfg.kubectl_client_id.as_deref()?;
        let oidc = state.cfg.oidc.as_ref()?;
        Some(user_kubeconfig::kubeconfig(&user_kubeconfig::ForUser {
            server: &api.cfg.server,
            server_ca: api.server_ca.as_deref(),
            issuer: &oidc.issuer,
            issuer_ca: api.issuer_ca.as_deref(),
            client_id,
            scopes: api.cfg.kubectl_scopes.as_ref().unwrap_or(&oidc.scopes),
            user: &s.user,
        }))
    });
    let text = offered.ok_or_else(|| {
        state.refuse(
            Some(&s),
            StatusCode::NOT_FOUND,
            "Not offered",
            "This dashboard offers no login kubeconfig: the API server's trust in the login provider is not configured (apiServer.kubectlClientId).",
        )
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/yaml")
        .insert_header(("content-disposition", "attachment; filename=\"kubeconfig\""))
        .body(text))
}

/// The login's ID token as a one-off `kubectl --token` command, where the
/// API server accepts the dashboard's tokens.
pub async fn token(state: State, req: HttpRequest, LoggedIn(s): LoggedIn) -> Page {
    let refuse = |code, text: &str| state.refuse(Some(&s), code, "No token", text);
    let (_, accepted) = kubectl_offers(&state);
    let api = state.api_server.as_ref().filter(|_| accepted).ok_or_else(|| {
        refuse(
            StatusCode::NOT_FOUND,
            "The API server does not accept this dashboard's ID tokens here (apiServer.audiences lacks oidc.clientId).",
        )
    })?;
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let token = super::provider_session::cookie_of(&state, &req, &s)
        .and_then(|c| c.id_token)
        .into_iter()
        .chain(state.id_token(&s.claim))
        .filter(|t| user_kubeconfig::valid_for(t, now, 10))
        .max_by_key(|t| user_kubeconfig::expiry(t))
        .ok_or_else(|| {
            refuse(
                StatusCode::CONFLICT,
                "The ID token of your login has expired (or was too long to keep). Log out and in again for a fresh one.",
            )
        })?;
    let ca_file = api.server_ca.as_ref().map(|_| "api-server-ca.crt");
    let command = user_kubeconfig::token_command(&api.cfg.server, ca_file, &token);
    let expires = user_kubeconfig::expiry(&token)
        .and_then(|e| k8s_openapi::jiff::Timestamp::from_second(e).ok())
        .map(|t| t.to_string());
    let mut r = state.page("account_token.html", &s, context! { command, expires, ca_file });
    r.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

/// The API server's CA, for the one-off command.
pub async fn api_server_ca(state: State, LoggedIn(s): LoggedIn) -> Page {
    let pem = state
        .api_server
        .as_ref()
        .and_then(|a| a.server_ca.clone())
        .ok_or_else(|| {
            state.refuse(
                Some(&s),
                StatusCode::NOT_FOUND,
                "No CA",
                "No CA is configured for the API server (apiServer.caFile): the system's roots verify it.",
            )
        })?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header(("content-disposition", "attachment; filename=\"api-server-ca.crt\""))
        .body(pem))
}
