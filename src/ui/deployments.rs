//! Deployment pages: the create form generated from a template's schema
//! (the API server's refusals shown next to the fields), the list (from the
//! watch cache: what the user may list, filtered by creator, template and
//! status) and delete.
//! Every read of a user's object and every write is made as the user.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use actix_web::{HttpResponse, http::StatusCode, web};
use kube::{Api, api::PostParams};
use minijinja::{context, value::Serde};

use super::{
    catalog_cache::Template,
    cookies::Session,
    csrf::SignedForm,
    form,
    logged_in::LoggedIn,
    page::Page,
    readable::{self, Readable},
    rows::{self, Row},
    state::{State, redirect, why},
};
use crate::{api::Deployment, catalog};

/// The catalog's forms and the Deployments list.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/catalog/{template}/new", web::get().to(new_form))
        .route("/catalog/{template}/new", web::post().to(create))
        .route("/deployments", web::get().to(list))
        .route("/deployments/{ns}/{name}/delete", web::post().to(delete));
}

/// A template of the catalog, from the watch cache.
pub(super) fn template(state: &State, name: &str) -> Option<Arc<Template>> {
    state.catalog.get(name)
}

/// The create form, or with `existing` the update form of that Deployment.
#[allow(clippy::too_many_arguments)]
pub(super) fn render_form(
    state: &State,
    s: &Session,
    entry: &catalog::Entry,
    existing: Option<&Deployment>,
    name: &str,
    (namespace, offered): (&str, &[String]),
    fields: &[form::Field],
    errors: &[String],
    status: StatusCode,
) -> HttpResponse {
    // One namespace to choose from: chosen already.
    let namespace = match offered {
        [only] if namespace.is_empty() => only.as_str(),
        _ => namespace,
    };
    let ctx = context! {
        template => Serde(&entry.template),
        template_name => entry.name.clone(),
        name, namespace, offered => Serde(offered),
        fields => Serde(fields),
        errors => Serde(errors),
        editing => existing.is_some(),
        generation => existing.and_then(|d| d.metadata.generation),
    };
    let mut r = state.page("new.html", s, ctx);
    *r.status_mut() = status;
    r
}

/// The create form.
pub async fn new_form(state: State, LoggedIn(s): LoggedIn, path: web::Path<String>) -> Page {
    let entry = template(&state, &path)
        .filter(|e| e.template.allows(&s.groups))
        .ok_or_else(|| {
            state.refuse(
                Some(&s),
                StatusCode::NOT_FOUND,
                "No such template",
                "This template is not in the catalog, or not for your groups.",
            )
        })?;
    let fields = form::fields(&entry.template.parameters, &Default::default());
    let offered = state.where_may(&s, readable::CREATE_DEPLOYMENTS).await;
    Ok(render_form(
        &state,
        &s,
        &entry,
        None,
        "",
        ("", &offered),
        &fields,
        &[],
        StatusCode::OK,
    ))
}

/// Creates the Deployment as the user; on refusal, the form again with the reasons.
pub async fn create(
    state: State,
    path: web::Path<String>,
    SignedForm(s, form_values): SignedForm<BTreeMap<String, String>>,
) -> Page {
    let entry = template(&state, &path).ok_or_else(|| {
        state.refuse(
            Some(&s),
            StatusCode::NOT_FOUND,
            "No such template",
            "This template is not in the catalog.",
        )
    })?;
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
            .map_err(|e| form::Refusal::of(&e)),
        (Err(e), _) => Err(form::Refusal::said(e.to_string())),
        (_, Err(e)) => Err(form::Refusal::said(why(&e))),
    };
    Ok(match result {
        Ok(_) => redirect(&format!("/deployments/{namespace}/{name}")),
        Err(refusal) => {
            let mut fields = form::fields(&entry.template.parameters, &params);
            let errors = form::place(&refusal, &mut fields);
            let offered = state.where_may(&s, readable::CREATE_DEPLOYMENTS).await;
            render_form(
                &state,
                &s,
                &entry,
                None,
                &name,
                (&namespace, &offered),
                &fields,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    })
}

/// Filters of the list page (admins).
#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
pub struct ListFilter {
    /// Only this creator.
    #[serde(default)]
    pub user: String,
    /// Only this template.
    #[serde(default)]
    pub template: String,
    /// Only this Ready status: `True`, `False`, `Unknown`.
    #[serde(default)]
    pub status: String,
    /// Only objects whose namespace or name contains this (any case).
    #[serde(default)]
    pub q: String,
    /// The page (from 1) of [`PAGE_SIZE`](super::rows::PAGE_SIZE) rows.
    #[serde(default)]
    pub page: Option<usize>,
}

impl ListFilter {
    fn keeps(&self, (namespace, name): (&str, &str), creator: &str, template: &str, ready: &str) -> bool {
        let q = self.q.trim().to_lowercase();
        (self.user.is_empty() || self.user == creator)
            && (self.template.is_empty() || self.template == template)
            && (self.status.is_empty() || self.status == ready || (self.status == "Unknown" && ready.is_empty()))
            && (q.is_empty() || namespace.to_lowercase().contains(&q) || name.to_lowercase().contains(&q))
    }
}

/// The Deployments in the namespaces where the user may list them (as the
/// API server answers), whoever created them, filtered: a page of the rows the watch keeps.
pub async fn list(state: State, LoggedIn(s): LoggedIn, filter: web::Query<ListFilter>) -> Page {
    let readable = state
        .readable(&s, readable::DEPLOYMENTS, &state.live.deployments)
        .await?;
    let filter = filter.into_inner();
    let creator = Some(filter.user.as_str()).filter(|u| !u.is_empty());
    let (page, users, templates) = {
        let index = state.live.deployments.read().unwrap();
        let matching = || {
            index
                .rows(creator)
                .filter(|r| readable.has(&r.key().0))
                .filter(|r| filter.keeps((&r.key().0, &r.key().1), r.creator(), &r.template, &r.ready))
        };
        let page = rows::page_of(matching, filter.page).map(|r| rows::html(&r, true));
        // The filters offer only what the user may see.
        let (users, templates): (BTreeSet<String>, BTreeSet<String>) = match &*readable {
            Readable::All => (
                index.creators().map(str::to_string).collect(),
                index.facets().map(str::to_string).collect(),
            ),
            Readable::In { allowed, .. } => allowed
                .iter()
                .flat_map(|ns| index.in_namespace(ns))
                .map(|r| (r.creator().to_string(), r.template.clone()))
                .unzip(),
        };
        (page, users, templates)
    };
    let ctx = context! {
        rows => page.rows, filter => Serde(&filter), users, templates,
        total => page.total, page => page.page, pages => page.pages, first => page.first,
    };
    Ok(state.page("deployments.html", &s, ctx))
}

/// Deletes a Deployment as the user, after confirmation.
pub async fn delete(
    state: State,
    path: web::Path<(String, String)>,
    SignedForm(s, body): SignedForm<BTreeMap<String, String>>,
) -> Page {
    if !body.contains_key("confirm") {
        return Err(state.refuse(
            Some(&s),
            StatusCode::BAD_REQUEST,
            "Not deleted",
            "Tick the confirmation to delete.",
        ));
    }
    let (ns, name) = path.into_inner();
    state.delete_as_user::<Deployment>(&s, &ns, &name).await?;
    Ok(redirect("/deployments"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_keep_what_they_name() {
        let f = ListFilter {
            user: "alice".into(),
            status: "Unknown".into(),
            ..Default::default()
        };
        let at = ("team-a", "shop");
        assert!(f.keeps(at, "alice", "webapp", ""));
        assert!(!f.keeps(at, "bob", "webapp", ""));
        assert!(!f.keeps(at, "alice", "webapp", "True"));
    }

    #[test]
    fn the_search_matches_namespace_or_name_in_any_case() {
        let f = ListFilter {
            q: " SHO ".into(),
            ..Default::default()
        };
        assert!(f.keeps(("team-a", "shop"), "alice", "webapp", "True"));
        assert!(f.keeps(("shops", "x"), "alice", "webapp", "True"));
        assert!(!f.keeps(("team-a", "db"), "alice", "webapp", "True"));
        assert!(ListFilter::default().keeps(("team-a", "db"), "alice", "webapp", "True"));
    }
}
