//! The account page: the session (profile, groups, end), the session's
//! kubeconfig (read as the user, whom the operator lets read that one
//! Secret), and Extend (a heartbeat on the SessionClaim, as the user).

use actix_web::{HttpResponse, http::StatusCode};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use minijinja::{context, value::Serde};

use super::{
    csrf::{CsrfForm, SignedForm},
    logged_in::LoggedIn,
    server::{State, keepalive, redirect, why},
};
use crate::api::SessionClaim;

/// The session page.
pub async fn page(state: State, LoggedIn(s): LoggedIn) -> HttpResponse {
    let claim = match state.as_user(&s) {
        Ok(c) => {
            Api::<SessionClaim>::namespaced(c, &state.cfg.session.namespace)
                .get(&s.claim)
                .await
        }
        Err(e) => Err(e),
    };
    match claim {
        Ok(claim) => {
            let expires = claim
                .status
                .as_ref()
                .and_then(|st| st.expires_at.as_ref())
                .map(|t| t.0.to_string());
            state.page("account.html", &s, context! { claim => Serde(&claim), expires })
        }
        Err(e) => state.message(StatusCode::BAD_GATEWAY, "Session unavailable", &why(&e)),
    }
}

/// The session's kubeconfig, as a download.
pub async fn kubeconfig(state: State, LoggedIn(s): LoggedIn) -> HttpResponse {
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
    match result {
        Ok(bytes) => HttpResponse::Ok()
            .content_type("application/yaml")
            .insert_header(("content-disposition", "attachment; filename=\"kubeconfig\""))
            .insert_header(("cache-control", "no-store"))
            .body(bytes),
        Err(e) => state.message(StatusCode::CONFLICT, "No kubeconfig", &e),
    }
}

/// Extends the session (a heartbeat), then shows the page again.
pub async fn extend(state: State, SignedForm(s, _): SignedForm<CsrfForm>) -> HttpResponse {
    let result = match state.as_user(&s) {
        Ok(c) => {
            keepalive(
                &Api::<SessionClaim>::namespaced(c, &state.cfg.session.namespace),
                &s.claim,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => redirect("/account"),
        Err(e) => state.message(StatusCode::FORBIDDEN, "Not extended", &why(&e)),
    }
}
