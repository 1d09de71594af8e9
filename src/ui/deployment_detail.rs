//! One Deployment: the detail page (conditions, resources and their health,
//! outputs, history, the rendered template's name, Events, its pods), the
//! pod log, and updating its parameters. Read and written as the user;
//! the Events come from the dashboard's watch cache, shown to users who may
//! list Events in the namespace.

use std::{collections::BTreeMap, sync::Arc};

use actix_web::{HttpResponse, http::StatusCode, web};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client, ResourceExt,
    api::{LogParams, Patch, PatchParams},
};
use minijinja::{context, value::Serde};
use serde_json::{Map, Value};

use super::{
    catalog_cache::Template,
    cookies::Session,
    csrf::SignedForm,
    deployment_pods::pods_of_deployment,
    deployments::{render_form, template},
    form,
    logged_in::LoggedIn,
    page::{Page, PageError},
    readable,
    state::{State, redirect, why},
};
use crate::api::Deployment;

/// One Deployment: its page, its edit form and its logs.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/deployments/{ns}/{name}", web::get().to(detail))
        .route("/deployments/{ns}/{name}/edit", web::get().to(edit_form))
        .route("/deployments/{ns}/{name}/edit", web::post().to(update))
        .route("/deployments/{ns}/{name}/logs", web::get().to(logs))
        .route("/deployments/{ns}/{name}/logs/follow", web::get().to(follow))
        .route("/deployments/{ns}/{name}/pods", web::get().to(pods));
}

/// Lines of pod log shown.
const LOG_LINES: i64 = 500;

/// The Events about `d`, newest first, from the watch cache, if `s` may
/// list Events in its namespace (asked as the user, the answer kept a while).
async fn events_of(state: &State, s: &Session, d: &Deployment) -> Result<Vec<super::events::Shown>, String> {
    let ns = d.namespace().unwrap_or_default();
    let readable = state
        .readable_for(s, readable::EVENTS, [ns.clone()].into())
        .await
        .map_err(|e| why(&e))?;
    if !readable.has(&ns) {
        return Err(format!("you may not list Events in namespace {ns}."));
    }
    Ok(state.events.read().unwrap().of(&ns, &d.uid().unwrap_or_default()))
}

/// `GET /deployments/{ns}/{name}`: the Deployment read as the user (which
/// is the user's authorisation), its Events from the watch cache (where the
/// user may list Events), the template from the catalog's watch cache. Its
/// pods take several reads, so the page loads them after itself
/// ([`pods`]); without scripts it links to them.
pub async fn detail(state: State, LoggedIn(s): LoggedIn, path: web::Path<(String, String)>) -> Page {
    let (ns, name) = path.into_inner();
    let missing = format!("There is no deployment {ns}/{name}.");
    let d: Deployment = state.get_as_user(&s, &ns, &name, &missing).await?;
    // Events are extras: a refusal is shown in their place, not instead of
    // the page. Actions the user may not take are not offered.
    let (events, may_change, may_delete) = futures::join!(
        events_of(&state, &s, &d),
        state.may(&s, readable::PATCH_DEPLOYMENTS, &ns),
        state.may(&s, readable::DELETE_DEPLOYMENTS, &ns),
    );
    let rendered = match super::deployments::template(&state, &d.spec.template.name) {
        Some(entry) => crate::catalog::preview::manifests(
            &entry.template,
            &name,
            &ns,
            d.spec
                .parameters
                .as_ref()
                .map(|p| serde_json::to_value(p).unwrap_or_default())
                .as_ref()
                .unwrap_or(&Value::Null),
        ),
        None => Err("the template is no longer in the catalog".into()),
    };
    let conditions = d.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let ctx = context! {
        rendered => rendered.as_ref().ok(), rendered_error => rendered.err(),
        d => Serde(&d),
        ready => super::live::ready_of(conditions),
        state => super::live::state_of(conditions),
        events => Serde(events.as_ref().ok()), events_error => events.err(),
        may_change, may_delete,
        kubectl => Serde(super::kubectl::snippets("deployments.portico.dev", &ns, &name, false, may_delete)),
        yaml => super::kubectl::yaml_of(&d),
    };
    Ok(state.page("deployment.html", &s, ctx))
}

#[derive(serde::Deserialize)]
pub struct PodsQuery {
    /// Only the list, for the detail page to place (else a page of its own).
    #[serde(default)]
    fragment: Option<String>,
}

/// `GET /deployments/{ns}/{name}/pods`: the Deployment's pods, found
/// through its resources' owners, read as the user.
pub async fn pods(
    state: State,
    LoggedIn(s): LoggedIn,
    path: web::Path<(String, String)>,
    q: web::Query<PodsQuery>,
) -> Page {
    let (ns, name) = path.into_inner();
    let client = state.as_user(&s).map_err(|e| state.unavailable(&s, &e))?;
    let missing = format!("There is no deployment {ns}/{name}.");
    let d: Deployment = state.get_as_user(&s, &ns, &name, &missing).await?;
    let pods = pods_of_deployment(&client, &ns, &d).await.map_err(|e| why(&e)).map(|ps| {
        ps.iter()
            .map(|p| {
                let st = p.status.clone().unwrap_or_default();
                serde_json::json!({"name": p.name_any(), "phase": st.phase, "ip": st.pod_ip, "node": p.spec.as_ref().and_then(|s| s.node_name.clone())})
            })
            .collect::<Vec<_>>()
    });
    let ctx = context! {
        namespace => ns, name,
        pods => Serde(pods.as_ref().ok()), pods_error => pods.err(),
    };
    let page = match q.fragment {
        Some(_) => "pods_list.html",
        None => "deployment_pods.html",
    };
    Ok(state.page(page, &s, ctx))
}

#[derive(serde::Deserialize)]
pub struct LogQuery {
    pod: String,
    /// The container; absent: the pod's first.
    #[serde(default)]
    container: Option<String>,
    /// The log of the container's previous run (after a restart).
    #[serde(default)]
    previous: Option<String>,
}

/// The containers of a pod, init containers first, and whether each has a
/// previous run (it terminated and was restarted).
fn containers_of(pod: &Pod) -> Vec<(String, bool)> {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let restarted = |name: &str| {
        status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten())
            .any(|c| c.name == name && c.last_state.as_ref().is_some_and(|l| l.terminated.is_some()))
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| (c.name.clone(), restarted(&c.name)))
        .collect()
}

/// The log a request names, checked as the user: the pod is one of the
/// Deployment's, the container one of the pod's (absent: its first app
/// container, as `kubectl logs` picks), and a previous run exists when asked
/// for.
struct LogTarget {
    client: Client,
    container: String,
    /// Every container of the pod, for the choice.
    containers: Vec<String>,
}

impl LogTarget {
    /// The log's last lines, as the page shows them and a follow starts with
    /// (it replaces the page's lines, so both read the same tail).
    fn params(&self, previous: bool, follow: bool) -> LogParams {
        LogParams {
            tail_lines: Some(LOG_LINES),
            timestamps: true,
            container: Some(self.container.clone()),
            previous,
            follow,
            ..Default::default()
        }
    }
}

async fn log_target(
    state: &State,
    s: &Session,
    ns: &str,
    name: &str,
    q: &LogQuery,
) -> Result<LogTarget, (Vec<String>, String)> {
    let client = state.as_user(s).map_err(|e| (vec![], why(&e)))?;
    let d = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .map_err(|e| (vec![], why(&e)))?;
    let mine = pods_of_deployment(&client, ns, &d)
        .await
        .map_err(|e| (vec![], format!("Its pods cannot be read as you: {}", why(&e))))?;
    let Some(pod) = mine.iter().find(|p| p.name_any() == q.pod) else {
        return Err((vec![], format!("{} is not a pod of deployment {ns}/{name}.", q.pod)));
    };
    let all = containers_of(pod);
    let names: Vec<String> = all.iter().map(|c| c.0.clone()).collect();
    let container = match q.container.clone().filter(|c| !c.is_empty()) {
        Some(c) => c,
        None => {
            let inits = pod
                .spec
                .as_ref()
                .and_then(|s| s.init_containers.as_ref())
                .map_or(0, Vec::len);
            names.get(inits).cloned().unwrap_or_default()
        }
    };
    let fail = |m: String| Err((names.clone(), m));
    let Some((_, restarted)) = all.iter().find(|c| c.0 == container) else {
        return fail(format!(
            "{} has no container {container:?}; its containers are {}.",
            q.pod,
            names.join(", ")
        ));
    };
    if q.previous.is_some() && !restarted {
        return fail(format!(
            "Container {container} of {} has not restarted, so there is no previous log; show the current one.",
            q.pod
        ));
    }
    if pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() {
        return fail(format!(
            "{} has not been scheduled to a node, so no container has run and there is no log yet.",
            q.pod
        ));
    }
    Ok(LogTarget {
        client,
        container,
        containers: names,
    })
}

/// `GET /deployments/{ns}/{name}/logs?pod=P[&container=C][&previous=1]`:
/// the last lines of a container's log in one of its pods, or of its
/// previous run.
pub async fn logs(
    state: State,
    LoggedIn(s): LoggedIn,
    path: web::Path<(String, String)>,
    q: web::Query<LogQuery>,
) -> HttpResponse {
    let (ns, name) = path.into_inner();
    let previous = q.previous.is_some();
    let (log, error, container, containers) = match log_target(&state, &s, &ns, &name, &q).await {
        Ok(t) => {
            let lp = t.params(previous, false);
            match Api::<Pod>::namespaced(t.client, &ns).logs(&q.pod, &lp).await {
                Ok(l) => (Some(l), None, t.container, t.containers),
                Err(e) => (
                    None,
                    Some(format!("The API server has no log for it: {}", why(&e))),
                    t.container,
                    t.containers,
                ),
            }
        }
        Err((containers, e)) => (None, Some(e), q.container.clone().unwrap_or_default(), containers),
    };
    let follow = !previous && log.is_some();
    let ctx =
        context! { namespace => ns, name, pod => q.pod.clone(), container, containers, previous, log, error, follow };
    state.page("logs.html", &s, ctx)
}

/// `GET /deployments/{ns}/{name}/logs/follow?pod=P&container=C`: the
/// container's log as it is written, as Server-Sent Events (`line`, one
/// JSON string each: the last lines first, then every new one), read as the
/// user, until the log ends, the browser leaves or the session ends; a
/// refusal is one `stopped` event saying why.
pub async fn follow(
    state: State,
    LoggedIn(s): LoggedIn,
    path: web::Path<(String, String)>,
    q: web::Query<LogQuery>,
) -> HttpResponse {
    use futures::{AsyncBufReadExt, StreamExt};
    let (ns, name) = path.into_inner();
    fn stopped(message: String) -> actix_web::web::Bytes {
        let data = serde_json::json!({ "message": message });
        actix_web::web::Bytes::from(format!("event: stopped\ndata: {data}\n\n"))
    }
    let sse = |body| {
        HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header(("cache-control", "no-store"))
            .streaming(body)
    };
    let lines = match log_target(&state, &s, &ns, &name, &q).await {
        Ok(t) => {
            let lp = t.params(false, true);
            Api::<Pod>::namespaced(t.client, &ns)
                .log_stream(&q.pod, &lp)
                .await
                .map_err(|e| format!("The API server has no log for it: {}", why(&e)))
        }
        Err((_, e)) => Err(e),
    };
    let lines = match lines {
        Ok(l) => l.lines(),
        Err(e) => {
            return sse(futures::stream::once(async move { Ok::<_, actix_web::Error>(stopped(e)) }).boxed_local());
        }
    };
    let ends = state.ends.clone();
    let session = s.clone();
    let ended = async move { ends.ended(&session).await };
    let events = lines
        .map(move |l| match l {
            Ok(line) => {
                let data = serde_json::Value::from(line);
                Ok::<_, actix_web::Error>(actix_web::web::Bytes::from(format!("event: line\ndata: {data}\n\n")))
            }
            Err(e) => Ok(stopped(format!("The log stream broke off: {e}"))),
        })
        .take_until(ended)
        .chain(futures::stream::once(async {
            Ok(stopped(
                "The log ended (the container stopped, or your session ended).".into(),
            ))
        }));
    sse(events.boxed_local())
}

/// `GET /deployments/{ns}/{name}/edit`: the parameters form with the current values.
pub async fn edit_form(state: State, LoggedIn(s): LoggedIn, path: web::Path<(String, String)>) -> Page {
    let (ns, name) = path.into_inner();
    let (d, entry) = editable(&state, &s, &ns, &name).await?;
    let current = current_parameters(&d);
    let fields = form::fields(&entry.template.parameters, &current);
    Ok(render_form(
        &state,
        &s,
        &entry,
        Some(&d),
        &name,
        (&ns, &[]),
        &fields,
        &[],
        StatusCode::OK,
    ))
}

/// The Deployment read as the user and its template, or the page saying why not.
async fn editable(state: &State, s: &Session, ns: &str, name: &str) -> Result<(Deployment, Arc<Template>), PageError> {
    let api = Api::<Deployment>::namespaced(state.as_user(s).map_err(|e| state.unavailable(s, &e))?, ns);
    let d = api
        .get(name)
        .await
        .map_err(|e| state.refuse(Some(s), StatusCode::FORBIDDEN, "Refused", &why(&e)))?;
    let entry = template(state, &d.spec.template.name).ok_or_else(|| {
        state.refuse(
            Some(s),
            StatusCode::NOT_FOUND,
            "No such template",
            "The template of this deployment is no longer in the catalog.",
        )
    })?;
    Ok((d, entry))
}

fn current_parameters(d: &Deployment) -> Map<String, Value> {
    serde_json::to_value(&d.spec.parameters)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

/// `POST /deployments/{ns}/{name}/edit`: replaces the parameters as the user,
/// only if nobody changed its spec since the form was shown (its generation).
pub async fn update(
    state: State,
    path: web::Path<(String, String)>,
    SignedForm(s, form_values): SignedForm<BTreeMap<String, String>>,
) -> Page {
    let (ns, name) = path.into_inner();
    let (d, entry) = editable(&state, &s, &ns, &name).await?;
    let api = Api::<Deployment>::namespaced(state.as_user(&s).map_err(|e| state.unavailable(&s, &e))?, &ns);
    let schema = &entry.template.parameters;
    let mut params = form::parameters(schema, &form_values);
    // Fields that cannot change are shown disabled (not submitted): keep their values.
    let current = current_parameters(&d);
    for f in form::fields(schema, &current).iter().filter(|f| f.fixed) {
        match current.get(&f.name) {
            Some(v) => params.insert(f.name.clone(), v.clone()),
            None => params.remove(&f.name),
        };
    }
    // The spec's generation the form was made from: status writes do not change it, edits do.
    let generation: Option<i64> = form_values.get("__generation").and_then(|g| g.parse().ok());
    const CHANGED: &str = "The deployment changed while you were editing it; reload the form to see the new values.";
    let refill = |refusal: form::Refusal, status: StatusCode| {
        let mut fields = form::fields(schema, &params);
        let errors = form::place(&refusal, &mut fields);
        render_form(
            &state,
            &s,
            &entry,
            Some(&d),
            &name,
            (&ns, &[]),
            &fields,
            &errors,
            status,
        )
    };
    if generation.is_none() || d.metadata.generation != generation {
        return Ok(refill(form::Refusal::said(CHANGED), StatusCode::CONFLICT));
    }
    let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "test", "path": "/metadata/generation", "value": generation},
        {"op": if d.spec.parameters.is_some() { "replace" } else { "add" }, "path": "/spec/parameters", "value": params},
    ]))
    .expect("a JSON patch");
    Ok(
        match api
            .patch(&name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
        {
            Ok(_) => redirect(&format!("/deployments/{ns}/{name}")),
            // The test of the generation failed: changed between the read above and the patch.
            Err(kube::Error::Api(st)) if st.code == 422 && !st.message.contains("denied the request") => {
                refill(form::Refusal::said(CHANGED), StatusCode::UNPROCESSABLE_ENTITY)
            }
            Err(e) => refill(form::Refusal::of(&e), StatusCode::UNPROCESSABLE_ENTITY),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pods_containers_come_init_first_each_with_whether_it_restarted() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "setup"}], "containers": [{"name": "web"}, {"name": "sidecar"}]},
            "status": {"containerStatuses": [
                {"name": "web", "image": "i", "imageID": "", "ready": true, "restartCount": 2,
                 "lastState": {"terminated": {"exitCode": 1}}},
                {"name": "sidecar", "image": "i", "imageID": "", "ready": true, "restartCount": 0, "lastState": {}}
            ]}
        }))
        .unwrap();
        assert_eq!(
            containers_of(&pod),
            [("setup".into(), false), ("web".into(), true), ("sidecar".into(), false)]
        );
    }
}
