//! The Deployment reconciler: look up the template, check the parameters,
//! render, apply every object with server-side apply as the creator (or, for
//! `applyAs: operator` templates, as the operator), prune what the render no
//! longer holds, read health and outputs from the live objects, and keep a
//! bounded history. On deletion every inventory object is deleted and the
//! finalizer waits until they are gone.

pub mod health;
pub mod inventory;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment as AppsDeployment, StatefulSet},
        batch::v1::Job,
        core::v1::PersistentVolumeClaim,
    },
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::runtime::WatchStreamExt;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams},
    discovery::Scope,
    runtime::{
        Controller,
        controller::Action,
        events::EventType,
        finalizer::{Event as Finalizer, finalizer},
        reflector::ObjectRef,
        watcher,
    },
};
use tracing::instrument;

use super::{Context, Error, kube_err};
use crate::{
    api::{
        Deployment,
        deployment::{
            DeploymentStatus, HISTORY_LIMIT, Health, HistoryEntry, Operation, OperationResult, ResourceStatus,
        },
    },
    catalog::{self, ApplyAs, params, render},
    creator::Creator,
    install::FIELD_MANAGER,
    kstatus::Phase,
};

const KIND: &str = "Deployment";
/// How often objects without a watch are looked at while they progress.
const POLL: Duration = Duration::from_secs(10);

/// Runs the Deployment controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let cfg = || watcher::Config::default().labels(render::DEPLOYMENT_LABEL);
    let concurrency = ctx.config.controller.concurrency;
    // A changed template re-renders every Deployment (each reads its template when reconciled).
    let templates = futures::stream::select_all(ctx.config.deployment.catalog_namespaces.iter().map(|ns| {
        let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), ns);
        watcher(api, watcher::Config::default().labels(catalog::TEMPLATE_LABEL))
            .default_backoff()
            .touched_objects()
            .predicate_filter(kube::runtime::predicates::resource_version, Default::default())
            .filter_map(|r| futures::future::ready(r.ok().map(|_| ())))
            .boxed()
    }));
    Controller::new(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .reconcile_all_on(templates)
    .watches(Api::<AppsDeployment>::all(client.clone()), cfg(), owner)
    .watches(Api::<StatefulSet>::all(client.clone()), cfg(), owner)
    .watches(Api::<DaemonSet>::all(client.clone()), cfg(), owner)
    .watches(Api::<Job>::all(client.clone()), cfg(), owner)
    .watches(Api::<PersistentVolumeClaim>::all(client), cfg(), owner)
    .trigger_backoff(super::backoff::WatchBackoff::default())
    .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
    .graceful_shutdown_on(shutdown)
    .run(reconcile, error_policy, ctx)
    .for_each(|_| futures::future::ready(()))
    .await;
}

/// The portico Deployment that rendered a child object.
fn owner<K: Resource>(obj: K) -> Option<ObjectRef<Deployment>> {
    let a = obj.meta().annotations.as_ref()?;
    Some(ObjectRef::new(a.get(render::NAME_ANNOTATION)?).within(a.get(render::NAMESPACE_ANNOTATION)?))
}

fn error_policy(d: Arc<Deployment>, err: &Error, ctx: Arc<Context>) -> Action {
    super::retry_after_error(&ctx, KIND, &*d, err)
}

#[instrument(skip_all, fields(kind = "Deployment", object = %format!("{}/{}", d.namespace().unwrap_or_default(), d.name_any()), user = %super::creator_name(&*d), reconcile_id = %crate::telemetry::reconcile_id()))]
async fn reconcile(d: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile(KIND);
    tracing::debug!("reconciling");
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
    let object = d.clone();
    let result = finalizer(&api, super::FINALIZER, d, |event| async {
        match event {
            Finalizer::Apply(d) => apply_deployment(&d, &ctx).await,
            Finalizer::Cleanup(d) => cleanup(&d, &ctx).await,
        }
    })
    .await
    .map_err(super::from_finalizer);
    if result.is_ok() {
        super::reconciled(&ctx, KIND, &*object);
    }
    result
}

fn record(history: &mut Vec<HistoryEntry>, operation: Operation, result: OperationResult, message: String) {
    // A failure repeated on every retry is recorded once.
    if let Some(last) = history.last()
        && last.operation == operation
        && last.result == result
        && last.message.as_deref() == Some(message.as_str())
        && result == OperationResult::Failed
    {
        return;
    }
    history.push(HistoryEntry {
        time: Time(Timestamp::now()),
        operation,
        result,
        message: Some(message),
    });
    let excess = history.len().saturating_sub(HISTORY_LIMIT);
    history.drain(..excess);
}

async fn stalled(
    ctx: &Context,
    d: &Deployment,
    mut base: DeploymentStatus,
    reason: &str,
    operation: Operation,
    message: String,
) -> Result<Action, Error> {
    ctx.event(d, EventType::Warning, reason, "Reconcile", message.clone())
        .await;
    record(&mut base.history, operation, OperationResult::Failed, message.clone());
    let phase = Phase::Stalled {
        reason: reason.into(),
        message,
    };
    super::set_status(&ctx.client, d, d.status.as_ref(), &with_phase(d, base, &phase)).await?;
    Ok(Action::requeue(Duration::from_secs(60)))
}

fn with_phase(d: &Deployment, base: DeploymentStatus, phase: &Phase) -> DeploymentStatus {
    let old = d.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
    DeploymentStatus {
        message: Some(phase.message().to_string()),
        conditions: crate::kstatus::conditions(phase, d.metadata.generation, Timestamp::now(), &old),
        observed_generation: d.metadata.generation,
        ..base
    }
}

/// Whose rights apply the objects: whoever last changed the spec (recorded by
/// admission in `portico.dev/updated-by`), else the creator.
fn applier_of(d: &Deployment, creator: &Creator) -> Creator {
    Creator::updater(d.metadata.annotations.as_ref()).unwrap_or_else(|| creator.clone())
}

/// The client objects are applied with: the applier by impersonation, or the operator.
async fn applier(ctx: &Context, creator: &Creator, apply_as: ApplyAs) -> Result<Client, Error> {
    match apply_as {
        ApplyAs::Operator => Ok(ctx.client.clone()),
        ApplyAs::Creator => ctx.client_as(creator),
    }
}

/// The API resource and scope of a kind, from discovery (cached).
async fn resolve(ctx: &Context, gvk: &GroupVersionKind) -> Result<(ApiResource, bool), String> {
    if let Some(hit) = ctx.kinds.lock().unwrap().get(gvk) {
        return Ok(hit.clone());
    }
    let (ar, caps) = kube::discovery::pinned_kind(&ctx.client, gvk).await.map_err(|e| {
        format!(
            "{}/{} {} is not served by the cluster: {e}",
            gvk.group, gvk.version, gvk.kind
        )
    })?;
    let entry = (ar, caps.scope == Scope::Namespaced);
    ctx.kinds.lock().unwrap().insert(gvk.clone(), entry.clone());
    Ok(entry)
}

fn api_for(client: &Client, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

fn gvk_of(api_version: &str, kind: &str) -> GroupVersionKind {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, kind)
}

async fn apply_deployment(d: &Deployment, ctx: &Context) -> Result<Action, Error> {
    let mut base = d.status.clone().unwrap_or_default();
    let creator = match Creator::from_annotations(d.metadata.annotations.as_ref()) {
        Ok(c) => c,
        Err(e) => return stalled(ctx, d, base, "MissingCreator", Operation::Create, e.to_string()).await,
    };
    let first = base.template_revision.is_none();
    let op = if first { Operation::Create } else { Operation::Update };
    let catalog_ns = &ctx.config.deployment.catalog_namespaces;
    let spec = &d.spec;
    let entry = match catalog::lookup(
        &ctx.client,
        catalog_ns,
        &spec.template.name,
        spec.template.namespace.as_deref(),
    )
    .await
    {
        Ok(e) => e,
        Err(catalog::TemplateError::Api(e)) => return Err(Error::Catalog(e)),
        Err(e) => {
            if let catalog::TemplateError::Invalid { .. } = &e {
                let cm = config_map_ref(
                    spec.template.namespace.as_deref().unwrap_or(&catalog_ns[0]),
                    &spec.template.name,
                );
                ctx.event(&cm, EventType::Warning, "InvalidTemplate", "Parse", e.to_string())
                    .await;
            }
            return stalled(ctx, d, base, "TemplateUnavailable", op, e.to_string()).await;
        }
    };
    let raw = spec.parameters.clone().unwrap_or(serde_json::Value::Null);
    let values = match params::check(&entry.template.parameters, &raw) {
        Ok(v) => v,
        Err(v) => {
            let list: Vec<String> = v.iter().map(|x| x.to_string()).collect();
            return stalled(ctx, d, base, "InvalidParameters", op, list.join("; ")).await;
        }
    };
    let ns = d.namespace().unwrap_or_default();
    let name = d.name_any();
    let inputs = render::Inputs {
        name: &name,
        namespace: &ns,
        params: &values,
        seed: &ctx.render_seed(&d.uid().unwrap_or_default()),
    };
    let revision = render::revision(
        &entry.resource_version,
        &format!("{}/{}", entry.namespace, entry.name),
        &values,
    );
    let applied_by = applier_of(d, &creator);
    base.applied_by = Some(match entry.template.apply_as {
        ApplyAs::Creator => applied_by.user.clone(),
        ApplyAs::Operator => "the operator".to_string(),
    });
    let client = applier(ctx, &applied_by, entry.template.apply_as).await?;

    let mut live: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut inventory: Vec<ResourceStatus> = vec![];
    let suspended = spec.suspend == Some(true);
    if !suspended {
        let objects = match render::manifests(&entry.template, &inputs) {
            Ok(o) => o,
            Err(e) => {
                let cm = k8s_openapi::api::core::v1::ConfigMap {
                    metadata: kube::api::ObjectMeta {
                        name: Some(entry.name.clone()),
                        namespace: Some(entry.namespace.clone()),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                ctx.event(
                    &cm,
                    EventType::Warning,
                    "RenderFailed",
                    "Render",
                    format!("for {ns}/{name}: {e}"),
                )
                .await;
                return stalled(ctx, d, base, "RenderFailed", op, e.to_string()).await;
            }
        };
        if let Some(bounds) = &entry.template.bounds
            && let Err(e) = bounds.admit(&objects, &ns)
        {
            let msg = format!("{e}; nothing was applied");
            return stalled(ctx, d, base, "OutOfBounds", op, msg).await;
        }
        let uid = d.uid().unwrap_or_default();
        let mut prepared = vec![];
        for mut obj in objects {
            let types = obj.types.clone().unwrap_or_default();
            let gvk = gvk_of(&types.api_version, &types.kind);
            let (ar, namespaced) = match resolve(ctx, &gvk).await {
                Ok(r) => r,
                Err(e) => return stalled(ctx, d, base, "UnknownKind", op, e).await,
            };
            if !namespaced {
                obj.metadata.namespace = None;
            }
            inventory::mark(&mut obj, &uid);
            let planned = ResourceStatus {
                api_version: types.api_version.clone(),
                kind: types.kind.clone(),
                namespace: obj.metadata.namespace.clone(),
                name: obj.name_any(),
                health: Health::NotFound,
                message: None,
            };
            prepared.push((obj, ar, types, planned));
        }
        // Record what is about to be applied, so nothing applied is ever unrecorded.
        let seen = inventory::seen(&base.resources);
        let planned: Vec<ResourceStatus> = prepared.iter().map(|p| p.3.clone()).collect();
        if let Some(next) = inventory::plan(&base.resources, &planned) {
            base.resources = next;
            let applying = Phase::Reconciling {
                reason: "Applying".into(),
                message: format!("applying {} objects from template {}", planned.len(), entry.name),
            };
            let recorded = with_phase(d, base.clone(), &applying);
            super::set_status(&ctx.client, d, d.status.as_ref(), &recorded).await?;
        }
        for (obj, ar, types, planned) in prepared {
            let obj_ns = obj.metadata.namespace.clone();
            let obj_name = obj.name_any();
            let api = api_for(&client, &ar, obj_ns.as_deref());
            if !seen.contains(&inventory::key(&planned)) {
                // Unreadable (403): the apply, made with the same rights, decides.
                let existing = match api.get_opt(&obj_name).await {
                    Err(kube::Error::Api(e)) if e.code == 403 => None,
                    other => other.map_err(kube_err(format!("read {} {obj_name} before creating it", types.kind)))?,
                };
                if existing.is_some_and(|e| !inventory::owned(&e, &uid, false, &ns, &name)) {
                    let msg = inventory::not_owned_message(&types.kind, obj_ns.as_deref(), &obj_name);
                    return stalled(ctx, d, base, "ObjectNotOwned", op, msg).await;
                }
            }
            let pp = PatchParams::apply(FIELD_MANAGER).force();
            let applied = match api.patch(&obj_name, &pp, &Patch::Apply(&obj)).await {
                Ok(a) => a,
                Err(kube::Error::Api(s)) => {
                    let who = match entry.template.apply_as {
                        ApplyAs::Creator => format!("as {}", applied_by.user),
                        ApplyAs::Operator => "as the operator".to_string(),
                    };
                    let msg = format!("applying {} {} {who} was refused: {}", types.kind, obj_name, s.message);
                    return stalled(ctx, d, base, "ApplyRefused", op, msg).await;
                }
                Err(e) => return Err(kube_err(format!("apply {} {obj_name}", types.kind))(e)),
            };
            let value = serde_json::to_value(&applied).unwrap_or_default();
            let (h, message) = health::health(&types.kind, &value);
            live.insert(format!("{}/{}", types.kind, obj_name), value);
            inventory.push(ResourceStatus {
                api_version: types.api_version.clone(),
                kind: types.kind.clone(),
                namespace: obj_ns,
                name: obj_name,
                health: h,
                message: Some(message),
            });
        }
        // Prune what the new render no longer holds.
        let keep: BTreeSet<_> = inventory.iter().map(inventory::key).collect();
        let gone: Vec<ResourceStatus> = base
            .resources
            .iter()
            .filter(|r| !keep.contains(&inventory::key(r)))
            .cloned()
            .collect();
        for r in &gone {
            delete(ctx, &client, d, r).await?;
        }
        if !gone.is_empty() {
            let names: Vec<String> = gone.iter().map(|r| format!("{} {}", r.kind, r.name)).collect();
            record(
                &mut base.history,
                Operation::Prune,
                OperationResult::Succeeded,
                format!("deleted {}", names.join(", ")),
            );
            ctx.event(
                d,
                EventType::Normal,
                "Pruned",
                "Prune",
                format!("deleted {}", names.join(", ")),
            )
            .await;
        }
    } else {
        for r in &base.resources {
            let (ar, _) = resolve(ctx, &gvk_of(&r.api_version, &r.kind))
                .await
                .map_err(Error::Discovery)?;
            let obj = api_for(&client, &ar, r.namespace.as_deref())
                .get_opt(&r.name)
                .await
                .map_err(kube_err("read object"))?;
            let value = obj.map(|o| serde_json::to_value(o).unwrap_or_default());
            let (h, message) = value
                .as_ref()
                .map_or((Health::NotFound, "not found".into()), |v| health::health(&r.kind, v));
            if let Some(v) = value {
                live.insert(format!("{}/{}", r.kind, r.name), v);
            }
            inventory.push(ResourceStatus {
                health: h,
                message: Some(message),
                ..r.clone()
            });
        }
    }

    if !suspended && base.template_revision.as_deref() != Some(revision.as_str()) {
        let what = if first { "created" } else { "updated" };
        let msg = format!(
            "{what} {} objects from template {} (revision {revision})",
            inventory.len(),
            entry.name
        );
        record(&mut base.history, op, OperationResult::Succeeded, msg.clone());
        ctx.event(
            d,
            EventType::Normal,
            if first { "Created" } else { "Updated" },
            "Apply",
            msg,
        )
        .await;
        base.template_revision = Some(revision);
    }
    base.outputs = render::outputs(&entry.template, &inputs, &live);
    base.resources = inventory;
    let failed: Vec<&ResourceStatus> = base.resources.iter().filter(|r| r.health == Health::Failed).collect();
    let waiting: Vec<&ResourceStatus> = base.resources.iter().filter(|r| r.health != Health::Current).collect();
    let describe = |r: &ResourceStatus| format!("{} {}: {}", r.kind, r.name, r.message.clone().unwrap_or_default());
    let phase = if let Some(f) = failed.first() {
        Phase::Stalled {
            reason: "ResourceFailed".into(),
            message: describe(f),
        }
    } else if suspended {
        Phase::Reconciling {
            reason: "Suspended".into(),
            message: "suspended: changes are not applied".into(),
        }
    } else if let Some(w) = waiting.first() {
        Phase::Reconciling {
            reason: "Progressing".into(),
            message: format!("waiting for {}", describe(w)),
        }
    } else {
        Phase::Ready {
            reason: "AllCurrent".into(),
            message: format!("all {} objects are ready", base.resources.len()),
        }
    };
    let progressing = matches!(phase, Phase::Reconciling { .. });
    super::set_status(&ctx.client, d, d.status.as_ref(), &with_phase(d, base, &phase)).await?;
    Ok(Action::requeue(if progressing {
        POLL
    } else {
        Duration::from_secs(300)
    }))
}

/// A reference to a template's ConfigMap, for Events about it.
fn config_map_ref(namespace: &str, name: &str) -> k8s_openapi::api::core::v1::ConfigMap {
    k8s_openapi::api::core::v1::ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Deletes one object the Deployment made; `Ok(true)` while it still exists.
/// An object without the Deployment's mark is left alone.
async fn delete(ctx: &Context, client: &Client, d: &Deployment, r: &ResourceStatus) -> Result<bool, Error> {
    let Ok((ar, _)) = resolve(ctx, &gvk_of(&r.api_version, &r.kind)).await else {
        return Ok(false);
    };
    let api = api_for(client, &ar, r.namespace.as_deref());
    let live = match api.get_opt(&r.name).await {
        // What the applier may not even read, it did not make (its apply was refused).
        Err(kube::Error::Api(e)) if e.code == 403 => {
            tracing::warn!(kind = %r.kind, name = %r.name, "not deleted: the applier may not read it");
            return Ok(false);
        }
        other => other.map_err(kube_err(format!("read {} {}", r.kind, r.name)))?,
    };
    let Some(live) = live else {
        return Ok(false);
    };
    let (uid, ns, name) = (
        d.uid().unwrap_or_default(),
        d.namespace().unwrap_or_default(),
        d.name_any(),
    );
    let recorded = d
        .status
        .as_ref()
        .is_some_and(|s| inventory::seen(&s.resources).contains(&inventory::key(r)));
    if !inventory::owned(&live, &uid, recorded, &ns, &name) {
        tracing::warn!(kind = %r.kind, name = %r.name, "not deleted: it does not carry this Deployment's mark");
        return Ok(false);
    }
    match api.delete(&r.name, &super::delete_exactly(&live)).await {
        Ok(either) => Ok(either.is_left()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(false),
        Err(e) => Err(kube_err(format!("delete {} {}", r.kind, r.name))(e)),
    }
}

/// Everything carrying the Deployment's UID label in the kinds it recorded
/// (objects of an earlier render whose record was lost), beside the record.
async fn marked(ctx: &Context, client: &Client, d: &Deployment) -> Vec<ResourceStatus> {
    let base = d.status.clone().unwrap_or_default();
    let kinds: BTreeSet<(String, String)> = base
        .resources
        .iter()
        .map(|r| (r.api_version.clone(), r.kind.clone()))
        .collect();
    let selector = format!("{}={}", inventory::UID_LABEL, d.uid().unwrap_or_default());
    let ns = d.namespace().unwrap_or_default();
    let mut found = vec![];
    for (api_version, kind) in kinds {
        let Ok((ar, namespaced)) = resolve(ctx, &gvk_of(&api_version, &kind)).await else {
            continue;
        };
        let api = api_for(client, &ar, namespaced.then_some(ns.as_str()));
        match api
            .list_metadata(&kube::api::ListParams::default().labels(&selector))
            .await
        {
            Ok(list) => found.extend(list.items.into_iter().map(|o| ResourceStatus {
                api_version: api_version.clone(),
                kind: kind.clone(),
                namespace: o.metadata.namespace.clone(),
                name: o.metadata.name.clone().unwrap_or_default(),
                health: Health::Unknown,
                message: None,
            })),
            Err(e) => tracing::warn!(%kind, error = %e, "cannot search for marked objects"),
        }
    }
    found
}

async fn cleanup(d: &Deployment, ctx: &Context) -> Result<Action, Error> {
    let base = d.status.clone().unwrap_or_default();
    let client = match Creator::from_annotations(d.metadata.annotations.as_ref()) {
        Ok(creator) => {
            let apply_as = catalog::lookup(
                &ctx.client,
                &ctx.config.deployment.catalog_namespaces,
                &d.spec.template.name,
                d.spec.template.namespace.as_deref(),
            )
            .await
            .map(|e| e.template.apply_as)
            .unwrap_or(ApplyAs::Creator);
            applier(ctx, &applier_of(d, &creator), apply_as).await?
        }
        Err(_) => return Ok(Action::await_change()), // it never applied anything
    };
    let mut targets = base.resources.clone();
    let known: BTreeSet<inventory::Key> = targets.iter().map(inventory::key).collect();
    targets.extend(
        marked(ctx, &client, d)
            .await
            .into_iter()
            .filter(|r| !known.contains(&inventory::key(r))),
    );
    let mut remaining = vec![];
    for r in &targets {
        if delete(ctx, &client, d, r).await? {
            remaining.push(format!("{} {}", r.kind, r.name));
        }
    }
    if remaining.is_empty() {
        return Ok(Action::await_change());
    }
    let msg = format!("waiting for {} to be deleted", remaining.join(", "));
    let status = DeploymentStatus {
        message: Some(msg),
        ..base
    };
    let _ = super::set_status(&ctx.client, d, d.status.as_ref(), &status).await;
    Err(Error::Cleanup(format!("{} objects still exist", remaining.len())))
}
