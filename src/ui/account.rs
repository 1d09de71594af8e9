//! The account page: the session (profile, groups, end), the session's
//! kubeconfig (read as the user, whom the operator lets read that one
//! Secret), and Extend (a heartbeat on the SessionClaim, as the user).

use actix_web::{HttpResponse, http::StatusCode, web};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use minijinja::{context, value::Serde};

use super::{
    cookies::Session,
    csrf::{CsrfForm, SignedForm},
    logged_in::LoggedIn,
    page::{Page, PageError},
    state::{State, keepalive, redirect, why},
};
use crate::api::SessionClaim;

/// The account page, its kubeconfig and the session's extension.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account", web::get().to(page))
        .route("/account/kubeconfig", web::get().to(kubeconfig))
        .route("/account/extend", web::post().to(extend));
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
    Ok(state.page(
        "account.html",
        &s,
        context! { claim => Serde(&claim), expires, max_end, capped },
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
