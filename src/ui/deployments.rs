//! Deployment pages: the create form generated from a template's schema
//! (the API server's refusals shown next to the fields), the list, the
//! detail page and delete. Every read of a user's object and every write is
//! made as the user.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, PostParams},
};
use minijinja::{context, value::Serde};

use super::{
    form,
    server::{State, csrf_refusal, redirect, why},
    session::{self, Session},
};
use crate::{api::Deployment, catalog};

async fn template(state: &State, name: &str) -> Option<catalog::Entry> {
    for ns in &state.cfg.catalog_namespaces {
        let api: Api<ConfigMap> = Api::namespaced(state.client.clone(), ns);
        if let Ok(Some(cm)) = api.get_opt(name).await
            && let Ok(e) = catalog::from_config_map(&cm)
        {
            return Some(e);
        }
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn render_new(
    state: &State,
    s: &Session,
    entry: &catalog::Entry,
    name: &str,
    namespace: &str,
    fields: &[form::Field],
    errors: &[String],
    status: StatusCode,
) -> HttpResponse {
    let ctx = context! {
        product => state.cfg.product_name.clone(),
        session => Serde(s),
        csrf => session::csrf_token(&state.key, s),
        template => Serde(&entry.template),
        template_name => entry.name.clone(),
        name, namespace,
        fields => Serde(fields),
        errors => Serde(errors),
    };
    let mut r = state.render("new.html", ctx);
    *r.status_mut() = status;
    r
}

/// The create form.
pub async fn new_form(state: State, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let Some(s) = state.session(&req).await else {
        return redirect("/login");
    };
    let Some(entry) = template(&state, &path).await.filter(|e| e.template.allows(&s.groups)) else {
        return state.message(
            StatusCode::NOT_FOUND,
            "No such template",
            "This template is not in the catalog, or not for your groups.",
        );
    };
    let fields = form::fields(&entry.template.parameters, &Default::default());
    render_new(&state, &s, &entry, "", "", &fields, &[], StatusCode::OK)
}

/// Creates the Deployment as the user; on refusal, the form again with the reasons.
pub async fn create(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Form<BTreeMap<String, String>>,
) -> HttpResponse {
    let Some(s) = state.session(&req).await else {
        return redirect("/login");
    };
    let form_values = body.into_inner();
    if let Some(refused) = csrf_refusal(&state, &s, form_values.get("csrf").map(String::as_str)) {
        return refused;
    }
    let Some(entry) = template(&state, &path).await else {
        return state.message(
            StatusCode::NOT_FOUND,
            "No such template",
            "This template is not in the catalog.",
        );
    };
    let name = form_values.get("__name").cloned().unwrap_or_default();
    let namespace = form_values.get("__namespace").cloned().unwrap_or_default();
    let params = form::parameters(&entry.template.parameters, &form_values);
    let d: Result<Deployment, _> = serde_json::from_value(serde_json::json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"template": {"name": entry.name}, "parameters": params},
    }));
    let result = match (d, state.as_user(&s)) {
        (Ok(d), Ok(client)) => Api::<Deployment>::namespaced(client, &namespace)
            .create(&PostParams::default(), &d)
            .await
            .map_err(|e| why(&e)),
        (Err(e), _) => Err(e.to_string()),
        (_, Err(e)) => Err(why(&e)),
    };
    match result {
        Ok(_) => redirect(&format!("/deployments/{namespace}/{name}")),
        Err(message) => {
            let mut fields = form::fields(&entry.template.parameters, &params);
            let errors = form::place_errors(&message, &mut fields);
            render_new(
                &state,
                &s,
                &entry,
                &name,
                &namespace,
                &fields,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    }
}

/// The user's Deployments (admins: everyone's), from the dashboard's read access.
pub async fn list(state: State, req: HttpRequest) -> HttpResponse {
    let Some(s) = state.session(&req).await else {
        return redirect("/login");
    };
    let admin = s.groups.iter().any(|g| state.cfg.admin_groups.contains(g));
    let api: Api<Deployment> = Api::all(state.client.clone());
    let all = match api.list(&Default::default()).await {
        Ok(l) => l.items,
        Err(e) => return state.message(StatusCode::BAD_GATEWAY, "Cannot list deployments", &why(&e)),
    };
    let items: Vec<serde_json::Value> = all
        .iter()
        .filter_map(|d| {
            let creator = crate::creator::Creator::from_annotations(d.metadata.annotations.as_ref()).ok()?;
            (admin || creator.user == s.user).then(|| {
                let st = d.status.clone().unwrap_or_default();
                let ready = st
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "Ready")
                    .map(|c| c.status.clone())
                    .unwrap_or_default();
                serde_json::json!({
                    "namespace": d.namespace(), "name": d.name_any(), "template": d.spec.template.name,
                    "ready": ready, "message": st.message, "creator": creator.user,
                })
            })
        })
        .collect();
    let ctx = context! {
        product => state.cfg.product_name.clone(), session => Serde(&s), csrf => session::csrf_token(&state.key, &s),
        items => Serde(&items), admin,
    };
    state.render("deployments.html", ctx)
}

/// One Deployment, read as the user.
pub async fn detail(state: State, req: HttpRequest, path: web::Path<(String, String)>) -> HttpResponse {
    let Some(s) = state.session(&req).await else {
        return redirect("/login");
    };
    let (ns, name) = path.into_inner();
    let got = match state.as_user(&s) {
        Ok(c) => Api::<Deployment>::namespaced(c, &ns).get_opt(&name).await,
        Err(e) => Err(e),
    };
    match got {
        Ok(Some(d)) => {
            let ctx = context! {
                product => state.cfg.product_name.clone(), session => Serde(&s), csrf => session::csrf_token(&state.key, &s), d => Serde(&d),
            };
            state.render("deployment.html", ctx)
        }
        Ok(None) => state.message(
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("There is no deployment {ns}/{name}."),
        ),
        Err(e) => state.message(
            StatusCode::FORBIDDEN,
            "Refused",
            &format!("The API server refused to show it: {}", why(&e)),
        ),
    }
}

/// Deletes a Deployment as the user, after confirmation.
pub async fn delete(
    state: State,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Form<BTreeMap<String, String>>,
) -> HttpResponse {
    let Some(s) = state.session(&req).await else {
        return redirect("/login");
    };
    if let Some(refused) = csrf_refusal(&state, &s, body.get("csrf").map(String::as_str)) {
        return refused;
    }
    if body.get("confirm").is_none() {
        return state.message(
            StatusCode::BAD_REQUEST,
            "Not deleted",
            "Tick the confirmation to delete.",
        );
    }
    let (ns, name) = path.into_inner();
    let result = match state.as_user(&s) {
        Ok(c) => Api::<Deployment>::namespaced(c, &ns)
            .delete(&name, &DeleteParams::default())
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => redirect("/deployments"),
        Err(e) => state.message(
            StatusCode::FORBIDDEN,
            "Not deleted",
            &format!("The API server refused: {}", why(&e)),
        ),
    }
}
