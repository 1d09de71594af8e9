//! The admin pages, under `/admin`, all behind one check of admin rights
//! (the scope's middleware, and each handler again): every session (listed
//! as the admin) and revoking one (deleting its SessionClaim as the admin;
//! the API server decides too).

use std::collections::BTreeMap;

use actix_web::{
    HttpRequest, HttpResponse,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::StatusCode,
    middleware::{Next, from_fn},
    web,
};
use kube::{Api, ResourceExt, api::DeleteParams};
use minijinja::{context, value::Serde};

use super::{
    cookies::Session,
    state::{State, UiState, redirect},
};
use crate::api::SessionClaim;

/// Every admin route, in one scope behind [`admins_only`]: a route added here is checked too.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .wrap(from_fn(admins_only))
            .route("/sessions", web::get().to(sessions))
            .route("/sessions/{ns}/{name}/revoke", web::post().to(revoke)),
    );
}

impl UiState {
    /// The session of an admin, or the page saying why not: the login page
    /// without a session, 403 for anyone outside the admin groups.
    pub(super) async fn admin(&self, req: &HttpRequest) -> Result<Session, HttpResponse> {
        let Some(s) = self.session(req).await else {
            return Err(redirect("/login"));
        };
        if self.is_admin(&s) {
            return Ok(s);
        }
        tracing::warn!(user = %s.user, path = %req.path(), "admin route refused: not an admin");
        Err(self.page_message(
            &s,
            StatusCode::FORBIDDEN,
            "Admins only",
            &format!(
                "This needs admin rights, and {} is in none of the admin groups ({}). Nothing was changed; ask an administrator if you need this.",
                s.user,
                self.cfg.admin_groups.join(", ")
            ),
        ))
    }
}

/// Lets only admins reach the scope's routes.
async fn admins_only(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<State>().cloned().expect("the dashboard's state");
    match state.admin(req.request()).await {
        Ok(_) => Ok(next.call(req).await?.map_into_boxed_body()),
        Err(refused) => Ok(req.into_response(refused)),
    }
}

/// All SessionClaims, listed as the admin, for the admin groups.
async fn sessions(state: State, req: HttpRequest) -> HttpResponse {
    let s = match state.admin(&req).await {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    // Listed as the admin: the API server decides whether they may see every session.
    let listed = match state.as_user(&s) {
        Ok(c) => Api::<SessionClaim>::all(c).list(&Default::default()).await,
        Err(e) => Err(e),
    };
    let list = match listed {
        Ok(l) => l.items,
        Err(e) => {
            return state.page_message(
                &s,
                StatusCode::FORBIDDEN,
                "Cannot list sessions",
                &format!("The API server refused: {}", super::state::why(&e)),
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
                "user": crate::creator::creator_name(c),
                "expires": st.expires_at.map(|t| t.0.to_string()).unwrap_or_default(),
                "ready": super::live::ready_of(&st.conditions),
            })
        })
        .collect();
    state.page("sessions.html", &s, context! { claims => Serde(&claims) })
}

/// Revokes a session: deletes its SessionClaim as the admin.
async fn revoke(
    state: State,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<BTreeMap<String, String>>,
) -> HttpResponse {
    let s = match state.admin(&req).await {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    if let Some(refused) = super::csrf::refusal(&state, &req, &s, form.get("csrf").map(String::as_str)) {
        return refused;
    }
    let (ns, name) = path.into_inner();
    if !form.contains_key("confirm") {
        return state.page_message(
            &s,
            StatusCode::BAD_REQUEST,
            "Not revoked",
            &format!("Tick the confirmation to revoke the session {ns}/{name}; nothing was changed."),
        );
    }
    let result = match state.as_user(&s) {
        Ok(c) => Api::<SessionClaim>::namespaced(c, &ns)
            .delete(&name, &DeleteParams::default())
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            if ns == state.cfg.session.namespace {
                state.ends.end(&name);
            }
            redirect("/admin/sessions")
        }
        Err(kube::Error::Api(e)) => state.page_message(
            &s,
            StatusCode::FORBIDDEN,
            "Not revoked",
            &format!("The API server refused: {}", e.message),
        ),
        Err(e) => state.page_message(&s, StatusCode::BAD_GATEWAY, "Not revoked", &e.to_string()),
    }
}
