//! The admin pages, under `/admin`, all behind one check of admin rights
//! (the scope's middleware, and each handler again): every session (listed
//! as the admin) and revoking one (deleting its SessionClaim as the admin;
//! the API server decides too).

use std::collections::BTreeMap;

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
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
    csrf::SignedForm,
    logged_in::LoggedIn,
    page::{Page, PageError},
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
        self.require_admin(&s, req.path()).map_err(|e| e.error_response())?;
        Ok(s)
    }

    /// Nothing, or the 403 page when `s` is in none of the admin groups.
    fn require_admin(&self, s: &Session, path: &str) -> Result<(), PageError> {
        if self.is_admin(s) {
            return Ok(());
        }
        tracing::warn!(user = %s.user, path, "admin route refused: not an admin");
        Err(self.refuse(
            Some(s),
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
async fn sessions(state: State, req: HttpRequest, LoggedIn(s): LoggedIn) -> Page {
    state.require_admin(&s, req.path())?;
    // Question as the admin: the API server decides whether they may see every session.
    let client = state.as_user(&s).map_err(|e| state.unavailable(&s, &e))?;
    let list = Api::<SessionClaim>::all(client)
        .list(&Default::default())
        .await
        .map_err(|e| {
            state.refuse(
                Some(&s),
                StatusCode::FORBIDDEN,
                "Cannot list sessions",
                &format!("The API server refused: {}", super::state::why(&e)),
            )
        })?
        .items;
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
    Ok(state.page("sessions.html", &s, context! { claims => Serde(&claims) }))
}

/// Revokes a session: deletes its SessionClaim as the admin, after a confirmation.
async fn revoke(
    state: State,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    SignedForm(s, form): SignedForm<BTreeMap<String, String>>,
) -> Page {
    state.require_admin(&s, req.path())?;
    let (ns, name) = path.into_inner();
    if !form.contains_key("confirm") {
        return Err(state.refuse(
            Some(&s),
            StatusCode::BAD_REQUEST,
            "Not revoked",
            &format!("Tick the confirmation to revoke the session {ns}/{name}; nothing was changed."),
        ));
    }
    let client = state.as_user(&s).map_err(|e| state.unavailable(&s, &e))?;
    Api::<SessionClaim>::namespaced(client, &ns)
        .delete(&name, &DeleteParams::default())
        .await
        .map_err(|e| {
            let (status, why) = match &e {
                kube::Error::Api(e) => (StatusCode::FORBIDDEN, format!("The API server refused: {}", e.message)),
                other => (StatusCode::BAD_GATEWAY, other.to_string()),
            };
            state.refuse(Some(&s), status, "Not revoked", &why)
        })?;
    if ns == state.cfg.session.namespace {
        state.ends.end(&name);
    }
    Ok(redirect("/admin/sessions"))
}
