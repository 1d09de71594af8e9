//! The Deployment reconciler, as a pipeline of named steps:
//!
//! ```text
//!  dereference ──► build ──► apply ──────► report
//!  creator,        render,   SSA (create-   phase from health (pure),
//!  template,       bounds,   only when not  history, outputs, inventory,
//!  parameters      kinds     recorded),     status: one write
//!                            prune
//! ```
//!
//! Each step is a module with one job; a step that cannot go on returns a
//! [`Halt`]: `Stall` (the Deployment is `Stalled` with the reason, until
//! something changes) or `Retry` (an error the error policy retries). Objects
//! are applied with the rights of whoever last changed the spec (the creator
//! at first), or, for `applyAs: operator` templates, the operator's within
//! the template's bounds. Deletion is [`cleanup`].

mod apply;
mod build;
pub mod cache;
mod cleanup;
mod delivery;
mod dereference;
pub mod health;
pub mod inventory;
mod report;
pub mod workload;

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::WatchStreamExt;
use kube::{
    Api, Client, ResourceExt,
    runtime::{
        Controller,
        controller::Action,
        finalizer::{Event as Finalizer, finalizer},
        reflector, watcher,
    },
};
use tracing::instrument;

use super::{
    Context, Error,
    applied::Records,
    backoff::WatchBackoff,
    report::{set_phase, stall},
};
use crate::controller::event::Happened;
use crate::{
    api::{
        Deployment, Kind,
        deployment::{DeploymentStatus, Health, Operation, OperationResult},
    },
    catalog::{ApplyAs, render},
    creator::Creator,
    kstatus::{Phase, Reason},
};
use cache::{Caches, Snapshot};

const KIND: Kind = Kind::Deployment;
/// How often objects without a watch are looked at while they progress.
const POLL: Duration = Duration::from_secs(10);
/// How often a Deployment is passed when nothing changes (at most; its
/// `resync` if that is shorter).
const IDLE: Duration = Duration::from_secs(300);

/// Why the pipeline stops before its report.
pub enum Halt {
    /// It cannot go on until something changes: `Stalled` with this reason and message.
    Stall(Reason, String),
    /// An error worth retrying (the error policy's backoff).
    Retry(Error),
}

impl Halt {
    fn stall(reason: Reason, message: impl Into<String>) -> Halt {
        Halt::Stall(reason, message.into())
    }
}

impl From<Error> for Halt {
    fn from(e: Error) -> Halt {
        Halt::Retry(e)
    }
}

/// The shared context plus this controller's caches and records.
struct DeploymentContext {
    ctx: Arc<Context>,
    /// The catalog and the watched workloads.
    caches: Caches,
    /// What the last full pass applied for each Deployment.
    applied: Records<Snapshot>,
    /// The template revision each Deployment's Created or Updated Event was published for.
    announced: super::event::Announced,
    /// The Deployments (by UID) passed since the operator started: only a
    /// first pass may take its objects as its status records them.
    passed: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The generations seen, for the delivery metrics.
    changes: delivery::Changes,
}

/// Runs the Deployment controller until `shutdown` resolves. A Deployment is
/// reconciled when it changes (not on the operator's own status writes),
/// when one of its workloads changes, and when a template changes.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let resync = ctx.resync();
    let client = ctx.client.clone();
    let concurrency = ctx.config.controller.concurrency;
    let (store, writer) = reflector::store();
    let trigger = watcher(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .backoff(WatchBackoff::default())
    .modify(super::lean::lean)
    .reflect(writer)
    .applied_objects()
    .predicate_filter(super::trigger::acted_on, Default::default());
    let (caches, templates, owners) = Caches::start(&client, &ctx.config.deployment.catalog_namespaces);
    let dc = Arc::new(DeploymentContext {
        ctx,
        caches,
        applied: Records::every(resync),
        announced: Default::default(),
        passed: Default::default(),
        changes: Default::default(),
    });
    let metrics = dc.ctx.metrics.clone();
    let counted = store.clone();
    let _counting = metrics.count_active(KIND, move || super::active(&counted.state()));
    Controller::for_stream(trigger, store)
        // A changed template renders every Deployment again.
        .reconcile_all_on(templates)
        .reconcile_on(owners)
        .trigger_backoff(WatchBackoff::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, dc)
        .for_each(|_| futures::future::ready(()))
        .await;
}

fn error_policy(d: Arc<Deployment>, err: &Error, dc: Arc<DeploymentContext>) -> Action {
    // A superseded pass that applied forgot its snapshot itself (`steps`);
    // one that took its objects from the snapshot leaves it standing.
    if !matches!(err, Error::Superseded { .. }) {
        dc.applied.forget(&d.uid().unwrap_or_default());
    }
    super::retry_after_error(&dc.ctx, KIND, &*d, err)
}

#[instrument(skip_all, fields(kind = "Deployment", object = %format!("{}/{}", d.namespace().unwrap_or_default(), d.name_any()), user = %super::creator_name(&*d), reconcile_id = %crate::telemetry::reconcile_id()))]
async fn reconcile(d: Arc<Deployment>, dc: Arc<DeploymentContext>) -> Result<Action, Error> {
    let ctx = &dc.ctx;
    let _timer = ctx.metrics.reconcile(KIND);
    tracing::debug!("reconciling");
    if super::nothing_left(ctx, &*d) {
        return Ok(Action::await_change());
    }
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
    let object = d.clone();
    let result = finalizer(&api, super::FINALIZER, d, |event| async {
        match event {
            Finalizer::Apply(d) => apply_deployment(&d, &dc).await,
            Finalizer::Cleanup(d) => {
                dc.applied.forget(&d.uid().unwrap_or_default());
                dc.announced.forget(&d.uid().unwrap_or_default());
                dc.changes.forget(&d.uid().unwrap_or_default());
                dc.passed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&d.uid().unwrap_or_default());
                cleanup::cleanup(&d, &dc).await
            }
        }
    })
    .await;
    let result = super::settle(result);
    if result.is_ok() {
        super::reconciled(ctx, KIND, &*object);
    }
    result
}

/// Runs the steps; a stall becomes the Deployment's status and an Event.
async fn apply_deployment(d: &Deployment, dc: &DeploymentContext) -> Result<Action, Error> {
    let ctx = &dc.ctx;
    let mut base = d.status.clone().unwrap_or_default();
    // For `--field-selector status.creator=…`; a missing creator stalls in dereference.
    base.creator = Creator::from_annotations(d.metadata.annotations.as_ref())
        .ok()
        .map(|c| c.user);
    let op = if base.template_revision.is_none() {
        Operation::Create
    } else {
        Operation::Update
    };
    match steps(d, dc, &mut base, op).await {
        Ok(action) => Ok(action),
        Err(Halt::Stall(reason, message)) => {
            dc.applied.forget(&d.uid().unwrap_or_default());
            keep_recorded(ctx, d, &mut base).await;
            let phase = Phase::Stalled {
                reason,
                message: message.clone(),
            };
            let action = stalled(ctx, d, base, reason, op, message).await?;
            count_delivery(dc, d, &phase, "");
            Ok(action)
        }
        // A newer version holds what a write now would replace.
        Err(Halt::Retry(e @ Error::Superseded { .. })) => Err(e),
        Err(Halt::Retry(e)) => {
            // What the pass applied before the error is recorded even so,
            // for the prunes and the deletion after it.
            let recorded = d.status.as_ref().map(|s| s.resources.as_slice()).unwrap_or_default();
            if base.resources != recorded {
                keep_recorded(ctx, d, &mut base).await;
                let _ = super::set_status(ctx, d, d.status.as_ref(), &base).await;
            }
            Err(e)
        }
    }
}

/// Adds to `base`'s inventory what the Deployment's latest status records
/// beside it. `d` may be older than its last status write (a pass started
/// before that write's watch event arrived); a stall or an error must not
/// drop from the record what that write recorded, or deletion would miss
/// it. One read, on these paths only; a failed read is logged.
async fn keep_recorded(ctx: &Context, d: &Deployment, base: &mut DeploymentStatus) {
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
    match api.get(&d.name_any()).await {
        Ok(latest) => {
            let latest = latest.status.map(|s| s.resources).unwrap_or_default();
            inventory::keep(&mut base.resources, latest);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the latest status; recording this pass's inventory only"),
    }
}

/// dereference → build → apply → report.
async fn steps(
    d: &Deployment,
    dc: &DeploymentContext,
    base: &mut DeploymentStatus,
    op: Operation,
) -> Result<Action, Halt> {
    let ctx = &*dc.ctx;
    let inputs = dereference::dereference(d, ctx, &dc.caches).await?;
    base.applied_by = Some(inputs.applier_name());
    let identity = build::Identity::of(d, ctx);
    let render_inputs = identity.with(&inputs.values);
    let suspended = d.spec.suspend == Some(true);
    let uid = d.uid().unwrap_or_default();
    let marks = super::trigger::children_marks(d);
    // Nothing changed since the last full pass: health from the caches.
    // Past `resync`, the objects are applied again unless the caches show
    // every one of them at the generation (or resourceVersion) the apply
    // left.
    let unchanged = dc
        .applied
        .recorded(&uid, marks)
        .filter(|(snap, _)| !suspended && snap.revision == inputs.revision)
        .and_then(|(snap, due)| {
            let applied = cache::from_cache(&snap, &uid, |r| dc.caches.lookup(r))?;
            if due {
                if !snap.undrifted(|r| dc.caches.current(r)) {
                    return None;
                }
                tracing::debug!("resync: every object as applied, none applied again");
                dc.applied.renew(&uid);
            }
            Some(applied)
        });
    let first = dc.passed.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.clone());
    // The first pass since the operator started: what the status records,
    // if it is still so, instead of applying every object again.
    let unchanged = match unchanged {
        None if first && !suspended => restored(d, dc, &inputs, &uid).await?,
        kept => kept,
    };
    // Whether this pass applied (and recorded a new snapshot).
    let applying = unchanged.is_none();
    let mut applied = match unchanged {
        Some(applied) => applied,
        None => {
            let client = applier(ctx, &inputs.applied_by, inputs.entry.template.apply_as)?;
            if suspended {
                apply::observe(ctx, &client, d, &base.resources).await?
            } else {
                let prepared = build::build(d, ctx, &inputs, &render_inputs).await?;
                let applied = apply::apply(d, ctx, &inputs, &client, prepared, base).await?;
                let snap = Snapshot::of(&inputs.revision, &applied);
                dc.applied.put(&uid, marks, None, snap);
                applied
            }
        }
    };

    // Report.
    if !suspended && base.template_revision.as_deref() != Some(inputs.revision.as_str()) {
        let first = op == Operation::Create;
        let what = if first { "created" } else { "updated" };
        let msg = format!(
            "{what} {} objects from template {} (revision {})",
            applied.inventory.len(),
            inputs.entry.name,
            inputs.revision
        );
        report::record(&mut base.history, op, OperationResult::Succeeded, msg.clone());
        let what = if first { Happened::Created } else { Happened::Updated };
        if dc.announced.first(&uid, &inputs.revision) {
            ctx.event(d, what, msg).await;
        }
        base.template_revision = Some(inputs.revision.clone());
    }
    // Not Ready for a while: are its workloads' pods stuck?
    if !suspended && workload::time_to_look(workload::clock(base), Timestamp::now()) {
        let client = applier(ctx, &inputs.applied_by, inputs.entry.template.apply_as)?;
        workload::check(&client, &mut applied.inventory, &applied.live).await;
    }
    base.outputs = render::outputs(&inputs.entry.template, &render_inputs, &applied.live);
    base.resources = applied.inventory;
    let phase = report::phase(&base.resources, suspended);
    let progressing = matches!(phase, Phase::Reconciling { .. });
    if let Err(e) = set_phase(ctx, d, base.clone(), &phase).await {
        // What this pass did (a prune, an update) is in no status yet: the
        // next pass must not take it as recorded, and does it again.
        if applying {
            dc.applied.forget(&uid);
        }
        return Err(e.into());
    }
    let cause = base
        .resources
        .iter()
        .find(|r| r.health == Health::Failed)
        .map_or("", |r| workload::cause(r.message.as_deref().unwrap_or_default()));
    count_delivery(dc, d, &phase, cause);
    Ok(Action::requeue(if progressing { POLL } else { IDLE.min(ctx.resync()) }))
}

/// How long a first pass waits for the workload caches to be listed.
const CACHES_LISTED: Duration = Duration::from_secs(10);

/// A first pass since the operator started, for a Deployment whose status
/// records a successful apply of this revision at this generation by this
/// applier: its objects from the caches (one read each for kinds no cache
/// holds), recorded as if just applied. `None` when anything is
/// not as recorded (an object missing or not this Deployment's, a stall,
/// a change): then everything is applied.
async fn restored(
    d: &Deployment,
    dc: &DeploymentContext,
    inputs: &dereference::Inputs,
    uid: &str,
) -> Result<Option<apply::Applied>, Halt> {
    let Some(st) = d.status.as_ref() else {
        return Ok(None);
    };
    let stalled = st.conditions.iter().any(|c| c.type_ == "Stalled" && c.status == "True");
    let recorded = st.template_revision.as_deref() == Some(inputs.revision.as_str())
        && st.observed_generation.is_some()
        && st.observed_generation == d.metadata.generation
        && st.applied_by.as_deref() == Some(inputs.applier_name().as_str())
        && !st.resources.is_empty()
        && !stalled;
    if !recorded || !dc.caches.listed(CACHES_LISTED).await {
        return Ok(None);
    }
    let ctx = &*dc.ctx;
    let client = applier(ctx, &inputs.applied_by, inputs.entry.template.apply_as)?;
    // Objects whose health no watch reports: from their caches (Services,
    // ConfigMaps), else read.
    let mut unwatched = std::collections::BTreeMap::new();
    let mut to_read = vec![];
    for r in st
        .resources
        .iter()
        .filter(|r| !Caches::watches(&r.api_version, &r.kind))
    {
        match dc.caches.lookup(r) {
            cache::Cached::Live(v) => {
                unwatched.insert(format!("{}/{}", r.kind, r.name), v);
            }
            cache::Cached::Absent => return Ok(None),
            cache::Cached::Unwatched => to_read.push(r.clone()),
        }
    }
    if !to_read.is_empty() {
        unwatched.extend(apply::observe(ctx, &client, d, &to_read).await?.live);
    }
    let snap = Snapshot {
        revision: inputs.revision.clone(),
        inventory: st.resources.clone(),
        // As recorded by the apply (of an earlier process): the first
        // resync applies again only what shows another generation (or
        // resourceVersion).
        applied_at: cache::applied_at(&st.resources),
        // Only objects that carry this Deployment's mark.
        unwatched: unwatched
            .into_iter()
            .filter(|(_, v)| inventory::marked_for(v, uid))
            .collect(),
    };
    let Some(applied) = cache::from_cache(&snap, uid, |r| dc.caches.lookup(r)) else {
        return Ok(None);
    };
    tracing::info!(
        objects = applied.inventory.len(),
        "first pass since the start: objects as recorded in the status, none applied"
    );
    dc.applied.put(uid, super::trigger::children_marks(d), None, snap);
    Ok(Some(applied))
}

/// Counts what a pass reported (once its status is written) in the
/// delivery metrics; `cause` is a failed workload's ([`workload::cause`]).
fn count_delivery(dc: &DeploymentContext, d: &Deployment, phase: &Phase, cause: &str) {
    let before = d.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let observed = d.status.as_ref().and_then(|s| s.observed_generation);
    let older = observed.is_some_and(|o| Some(o) != d.metadata.generation);
    let t = delivery::transition(before, older, phase);
    let (ns, template) = (d.namespace().unwrap_or_default(), &d.spec.template.name);
    let metrics = &dc.ctx.metrics.delivery;
    let created = d.creation_timestamp().map_or_else(Timestamp::now, |c| c.0);
    let uid = d.uid().unwrap_or_default();
    let counts = dc
        .changes
        .pass(&uid, d.metadata.generation.unwrap_or(1), created, t, Timestamp::now());
    // Zero series for the pair once per generation, not on every pass.
    if counts.new_generation {
        metrics.seen(&ns, template);
    }
    if let Some(lead) = counts.ready {
        metrics.ready(&ns, template, lead);
        super::usage::operation(&dc.ctx, d, "ready");
    }
    if counts.change_stalled {
        metrics.change_stalled(&ns, template);
        super::usage::operation(&dc.ctx, d, "stalled");
    }
    if let Some(reason) = counts.stalled {
        metrics.stalled(&ns, template, &reason.to_string(), cause);
    }
    if let Some(after) = counts.restored {
        metrics.restored(&ns, template, after);
    }
}

/// A stall is also an operation that failed, in the history.
async fn stalled(
    ctx: &Context,
    d: &Deployment,
    mut base: DeploymentStatus,
    reason: Reason,
    operation: Operation,
    message: String,
) -> Result<Action, Error> {
    report::record(&mut base.history, operation, OperationResult::Failed, message.clone());
    stall(ctx, d, base, reason, message).await
}

/// The client objects are applied with: the applier by impersonation, or the operator.
fn applier(ctx: &Context, applied_by: &Creator, apply_as: ApplyAs) -> Result<Client, Error> {
    match apply_as {
        ApplyAs::Operator => Ok(ctx.client.clone()),
        ApplyAs::Creator => ctx.client_as(applied_by),
    }
}
