//! The admin page: every session (listed as the admin), and revoking one
//! (deleting its SessionClaim as the admin): the API server decides whether they may.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use kube::{Api, ResourceExt, api::DeleteParams};
use minijinja::{context, value::Serde};

use super::{
    csrf::CsrfForm,
    server::{State, redirect},
};
use crate::api::SessionClaim;

/// All SessionClaims, listed as the admin, for the admin groups.
pub async fn sessions(state: State, req: HttpRequest) -> HttpResponse {
    let Some(s) = state.session(&req).await else {
        return redirect("/login");
    };
    if !state.is_admin(&s) {
        return state.message(
            StatusCode::FORBIDDEN,
            "Admins only",
            "This page is for the admin groups.",
        );
    }
    // Listed as the admin: the API server decides whether they may see every session.
    let listed = match state.as_user(&s) {
        Ok(c) => Api::<SessionClaim>::all(c).list(&Default::default()).await,
        Err(e) => Err(e),
    };
    let list = match listed {
        Ok(l) => l.items,
        Err(e) => {
            return state.message(
                StatusCode::FORBIDDEN,
                "Cannot list sessions",
                &format!("The API server refused: {}", super::server::why(&e)),
            );
        }
    };
    let claims: Vec<serde_json::Value> = list
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .map(|c| {
            let st = c.status.clone().unwrap_or_default();
            serde_json::json!({
                "namespace": c.namespace(), "name": c.name_any(), "profile": c.spec.profile,
                "user": crate::controller::creator_name(c),
                "expires": st.expires_at.map(|t| t.0.to_string()).unwrap_or_default(),
                "ready": super::live::ready_of(&st.conditions),
            })
        })
        .collect();
    state.page("sessions.html", &s, context! { claims => Serde(&claims) })
}

/// Revokes a session: deletes its SessionClaim as the admin.
pub async fn revoke(
    state: State,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let Some(s) = state.session(&req).await else {
        return redirect("/login");
    };
    if let Some(refused) = super::csrf::refusal(&state, &req, &s, form.csrf.as_deref()) {
        return refused;
    }
    let (ns, name) = path.into_inner();
    let result = match state.as_user(&s) {
        Ok(c) => Api::<SessionClaim>::namespaced(c, &ns)
            .delete(&name, &DeleteParams::default())
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => redirect("/admin/sessions"),
        Err(kube::Error::Api(e)) => state.message(
            StatusCode::FORBIDDEN,
            "Not revoked",
            &format!("The API server refused: {}", e.message),
        ),
        Err(e) => state.message(StatusCode::BAD_GATEWAY, "Not revoked", &e.to_string()),
    }
}
