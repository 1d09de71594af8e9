//! The Terminal reconciler: dereference (creator, lifetime, clusters),
//! validate (remote access, namespaces it owns), apply the target and host
//! objects and the token ([`children`]), report ([`report`], pure); on
//! deletion, [`cleanup`].

pub mod build;
mod children;
mod cleanup;
mod plan;
mod present;
mod repair;
mod report;

use std::sync::Arc;

use build::{Names, Side};
use futures::StreamExt;
use k8s_openapi::{
    api::core::v1::{Pod, Secret, ServiceAccount},
    jiff::Timestamp,
};
use kube::{
    Api, ResourceExt,
    api::ObjectMeta,
    core::PartialObjectMeta,
    runtime::{
        Controller, WatchStreamExt,
        controller::Action,
        finalizer::{Event as Finalizer, finalizer},
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use tracing::instrument;

use super::{
    Context, Error,
    applied::Records,
    backoff::WatchBackoff,
    kube_err,
    report::{expire, set_phase, stall},
};
use crate::controller::event::Happened;
use crate::{
    access as authz,
    api::{Kind, Terminal, keys::TEMPORARY_NAMESPACE},
    creator::Creator,
    kstatus::Reason,
    lifetime::{self, until},
};

const KIND: Kind = Kind::Terminal;
/// How long a first pass after a start waits for the watches of the
/// children to list them before it applies everything instead.
const FIRST_LISTS: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the Terminal controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let resync = ctx.resync();
    let terminals: Api<Terminal> = Api::all(ctx.client.clone());
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let concurrency = ctx.config.controller.concurrency;
    let (store, writer) = reflector::store();
    let trigger = watcher(terminals, watcher::Config::default().any_semantic())
        .backoff(WatchBackoff::default())
        .modify(super::lean::lean)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(super::trigger::acted_on, Default::default());
    let (pod_store, pod_writer) = reflector::store();
    let pod_events = watcher(pods, watcher::Config::default().labels(build::UID_LABEL))
        .backoff(WatchBackoff::default())
        .modify(super::lean::lean_pod)
        .reflect(pod_writer)
        .touched_objects();
    let tc = Arc::new(TerminalContext {
        ctx,
        pods: pod_store,
        applied: Records::every(resync),
        repairs: Default::default(),
        present: Default::default(),
        passed: Default::default(),
        lists_late: Default::default(),
    });
    let metrics = tc.ctx.metrics.clone();
    let counted = store.clone();
    let _counting = metrics.count_active(KIND, move || super::active(&counted.state()));
    // A child deleted by someone else: forget what was applied, and apply
    // again — at once, or when the Terminal's last repair is far enough back.
    let (later_tx, later_rx) = tokio::sync::mpsc::unbounded_channel::<ObjectRef<Terminal>>();
    let later = received(later_rx);
    let repair = {
        let (tc, store) = (tc.clone(), store.clone());
        move |child: &ObjectMeta| {
            let (uid, terminal) = repair::made_for(child)?;
            let live = store.get(&terminal)?;
            let live_uid = live.uid().unwrap_or_default();
            if !(repair::repairs(uid.as_deref(), Some(&live)) && repair::named_for(child, &live)) {
                return None;
            }
            tc.applied.forget(&live_uid);
            match tc.repairs.admit(&live_uid, std::time::Instant::now()) {
                repair::Admit::Now => Some(terminal),
                repair::Admit::Waiting => None,
                repair::Admit::After(wait) => {
                    let (tc, tx) = (tc.clone(), later_tx.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(wait).await;
                        tc.repairs.started(&live_uid, std::time::Instant::now());
                        tc.applied.forget(&live_uid);
                        let _ = tx.send(terminal);
                    });
                    None
                }
            }
        }
    };
    // A kubeconfig Secret someone else changed: read it again (its token may be due).
    let reread = {
        let (tc, store) = (tc.clone(), store.clone());
        move |secret: PartialObjectMeta<Secret>| {
            let (uid, terminal) = repair::made_for(&secret.metadata)?;
            let uid = uid?;
            let changed = super::applied::token_changed(crate::tokens::renew_at(&secret), tc.applied.renew_at(&uid));
            (changed && repair::repairs(Some(&uid), store.get(&terminal).as_deref())).then(|| {
                tc.applied.forget(&uid);
                terminal
            })
        }
    };
    let children = repair::watch(&tc.ctx.client, tc.present.clone()).filter_map(move |child| {
        futures::future::ready(match child {
            repair::Child::Lost(meta) => repair(&meta),
            repair::Child::SecretChanged(secret) => reread(secret),
        })
    });
    let pods = pod_events.filter_map(|pod| {
        futures::future::ready(pod.ok().and_then(|pod: Pod| {
            let owner = pod.annotations().get(build::OWNER_ANNOTATION)?.clone();
            let (ns, name) = owner.split_once('/')?;
            Some(ObjectRef::<Terminal>::new(name).within(ns))
        }))
    });
    // The watches of pods and children run on their own: a first pass waits
    // for their lists (`children_listed`), which must not depend on the
    // controller polling them.
    let triggers = detached(futures::stream::select(children, pods));
    Controller::for_stream(trigger, store)
        .reconcile_on(futures::stream::select(triggers, later))
        .trigger_backoff(WatchBackoff::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, tc)
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// Runs `stream` in a task of its own; its items come out of the returned
/// stream. The task ends when that stream is dropped (the controller
/// stopped, e.g. on losing the lease).
fn detached<T: Send + 'static>(
    stream: impl futures::Stream<Item = T> + Send + 'static,
) -> impl futures::Stream<Item = T> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let closed = tx.clone();
        let forward = stream.for_each(move |item| {
            let _ = tx.send(item);
            futures::future::ready(())
        });
        tokio::select! {
            _ = forward => {}
            _ = closed.closed() => {}
        }
    });
    received(rx)
}

/// The messages of `rx`, as a stream.
fn received<T: Send + 'static>(
    rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}

/// The shared context plus this controller's caches.
struct TerminalContext {
    ctx: Arc<Context>,
    /// Every terminal pod in this cluster.
    pods: Store<Pod>,
    /// What was last applied for each Terminal, so a pass started by its
    /// pod does not write every child again; the value is when its token is due.
    applied: Records<Timestamp>,
    /// When each Terminal was last repaired after losing a child.
    repairs: repair::Limiter,
    /// The children in this cluster, from the watches of their metadata.
    present: Arc<present::Present>,
    /// The Terminals (by UID) passed since the operator started: only a
    /// first pass may trust what the status records.
    passed: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The watches did not list within [`FIRST_LISTS`] once: first passes
    /// no longer wait for them.
    lists_late: std::sync::atomic::AtomicBool,
}

fn error_policy(t: Arc<Terminal>, err: &Error, tc: Arc<TerminalContext>) -> Action {
    super::retry_after_error(&tc.ctx, KIND, &*t, err)
}

#[instrument(skip_all, fields(kind = "Terminal", object = %format!("{}/{}", t.namespace().unwrap_or_default(), t.name_any()), user = %super::creator_name(&*t), reconcile_id = %crate::telemetry::reconcile_id()))]
async fn reconcile(t: Arc<Terminal>, tc: Arc<TerminalContext>) -> Result<Action, Error> {
    let ctx = &tc.ctx;
    let _timer = ctx.metrics.reconcile(KIND);
    tracing::debug!("reconciling");
    if super::nothing_left(ctx, &*t) {
        return Ok(Action::await_change());
    }
    let ns = t.namespace().unwrap_or_default();
    let api: Api<Terminal> = Api::namespaced(ctx.client.clone(), &ns);
    let object = t.clone();
    let result = finalizer(&api, super::FINALIZER, t, |event| async {
        match event {
            Finalizer::Apply(t) => apply_terminal(&t, &tc).await,
            Finalizer::Cleanup(t) => {
                let uid = t.uid().unwrap_or_default();
                tc.applied.forget(&uid);
                tc.passed.lock().unwrap_or_else(|e| e.into_inner()).remove(&uid);
                cleanup::cleanup(&t, ctx).await
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

fn now() -> Timestamp {
    Timestamp::now()
}

/// Where the host and target live, from the spec and the webhook's temporary-namespace name.
fn sides(t: &Terminal) -> Option<(Side, Side)> {
    let ns = t.namespace().unwrap_or_default();
    let temp = t.annotations().get(TEMPORARY_NAMESPACE).cloned();
    let side = |given: &Option<String>, local: bool| {
        let (namespace, temporary) = match given {
            Some(n) => (n.clone(), false),
            None => (temp.clone()?, true),
        };
        let same_as_terminal = local && namespace == ns;
        Some(Side {
            namespace,
            temporary,
            same_as_terminal,
        })
    };
    Some((
        side(&t.spec.host.namespace, t.spec.host.cluster.is_none())?,
        side(&t.spec.target.namespace, t.spec.target.cluster.is_none())?,
    ))
}

async fn apply_terminal(t: &Terminal, tc: &TerminalContext) -> Result<Action, Error> {
    let ctx = &tc.ctx;
    let mut base = t.status.clone().unwrap_or_default();
    let creator = match Creator::from_annotations(t.metadata.annotations.as_ref()) {
        Ok(c) => c,
        Err(e) => return stall(ctx, t, base, Reason::MissingCreator, e.to_string()).await,
    };
    base.creator = Some(creator.user.clone());
    let cfg = &ctx.config.terminal;
    let spec = &t.spec;
    let life = match lifetime::effective(
        spec.idle_timeout.as_deref(),
        spec.max_lifetime.as_deref(),
        &cfg.idle_timeout,
        &cfg.max_lifetime,
    ) {
        Ok(l) => l,
        Err(e) => return stall(ctx, t, base, Reason::InvalidLifetime, e.to_string()).await,
    };
    let expiry = lifetime::of_object(&t.metadata, &life, now());
    base.expires_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(expiry.at));
    if expiry.at <= now() {
        return expire(ctx, t, base, expiry.reason, expiry.at).await;
    }
    let Some((host_side, target_side)) = sides(t) else {
        let msg = format!(
            "a temporary namespace is requested but the {TEMPORARY_NAMESPACE} annotation is missing; the admission webhook did not run"
        );
        return stall(ctx, t, base, Reason::MissingTemporaryNamespace, msg).await;
    };
    let ns = t.namespace().unwrap_or_default();
    let target = match ctx.clusters.get(&ns, spec.target.cluster.as_ref()).await {
        Ok(c) => c,
        Err(e) => {
            return stall(
                ctx,
                t,
                base,
                Reason::TargetClusterUnreachable,
                format!("target cluster: {e}"),
            )
            .await;
        }
    };
    let host = match ctx.clusters.get(&ns, spec.host.cluster.as_ref()).await {
        Ok(c) => c,
        Err(e) => {
            return stall(
                ctx,
                t,
                base,
                Reason::HostClusterUnreachable,
                format!("host cluster: {e}"),
            )
            .await;
        }
    };
    let names = Names::for_uid(&t.uid().unwrap_or_default());
    base.host_namespace = Some(host_side.namespace.clone());
    base.pod_name = Some(names.pod.clone());
    base.attach_service_account_name = Some(names.attach.clone());

    // Remote clusters could not always be checked at admission: check before the first grant there.
    if target.remote.is_some() {
        let sas: Api<ServiceAccount> = Api::namespaced(target.client.clone(), &cfg.access_namespace);
        let granted = sas
            .get_opt(&names.access)
            .await
            .map_err(kube_err("read target service account"))?
            .is_some();
        if !granted {
            let temp = target_side.temporary.then_some(target_side.namespace.as_str());
            let name = authz::cluster_name(&target.remote);
            let checker = authz::Checker {
                client: &target.client,
                cluster: &name,
                cache: ctx.clusters.access_cache(),
            };
            if let Err(d) = authz::authorize_target(&checker, &creator, t, temp).await {
                return stall(ctx, t, base, Reason::NotAuthorized, d.message).await;
            }
        }
    }

    let uid = t.uid().unwrap_or_default();
    let marks = super::trigger::children_marks(t);
    let access_side = build::access_side(t, target.remote.is_none(), &cfg.access_namespace);
    let places = children::Places {
        host: &host_side,
        target: &target_side,
        access: &access_side,
        present: None,
    };
    let plan = plan::Plan::of(t, &names, &places, &creator, cfg);
    let mut holding = tc.applied.holding(&uid, marks, now());
    // The first pass since the operator started, for a Terminal that has
    // applied before: what its status records may still hold, once the
    // watches of its children have listed them. (A later pass without a
    // record — a child lost, a token changed — applies everything.)
    let first = tc.passed.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.clone());
    let local = target.remote.is_none() && host.remote.is_none();
    let recorded = t.status.as_ref().is_some_and(|s| s.children_digest.is_some());
    if holding.is_none() && first && local && recorded && children_listed(tc).await {
        holding = unchanged_since_recorded(t, &plan, &names, &places, &tc.present);
        if let Some(at) = holding {
            tracing::debug!("children as recorded in the status: nothing to apply");
            tc.applied.put(&uid, marks, Some(at), at);
        }
    }
    // The pod, from the watch cache where the host is this cluster (read
    // after a first pass waited for that cache to list).
    let cached_pod = host.remote.is_none().then(|| {
        tc.pods
            .get(&ObjectRef::new(&names.pod).within(&host_side.namespace))
            .map(|p| (*p).clone())
    });
    let (renew_at, applied_pod) = match holding {
        Some(renew_at) if matches!(cached_pod, Some(Some(_))) => (renew_at, None),
        _ => {
            tracing::debug!(
                why = why_apply(holding.is_some(), first, &cached_pod),
                "applying the children"
            );
            for (cluster, side) in [(&target, &target_side), (&host, &host_side)] {
                if side.temporary
                    && let Some(taken) = children::own_namespace(&cluster.client, t, &side.namespace).await?
                {
                    return stall(ctx, t, base, Reason::NamespaceNotOwned, taken).await;
                }
            }
            // What the watch of this cluster's children knows, once it has listed them.
            let listed = tc.present.wait_listed(repair::KINDS, std::time::Duration::ZERO).await;
            let places = children::Places {
                present: (host.remote.is_none() && listed).then_some(&*tc.present),
                ..places
            };
            let (renew_at, pod) =
                children::apply_children(ctx, t, &names, (&target, &host), &places, &plan, expiry.at).await?;
            tc.applied.put(&uid, marks, Some(renew_at), renew_at);
            (renew_at, pod)
        }
    };
    // What holds was applied for this plan; recorded on every pass, so a
    // pass that started from an older copy of the Terminal keeps it too.
    base.children_digest = Some(plan.digest());

    let pod = match (applied_pod, cached_pod) {
        (Some(pod), _) => Some(pod),
        (None, Some(pod)) => pod,
        (None, None) => Api::<Pod>::namespaced(host.client.clone(), &host_side.namespace)
            .get_opt(&names.pod)
            .await
            .map_err(kube_err("read terminal pod"))?,
    };
    let phase = report::pod_phase(pod.as_ref());
    if report::becomes_ready(t, &phase) {
        let note = format!("terminal pod {} is running", names.pod);
        ctx.event(t, Happened::Ready, note).await;
    }
    let ready = matches!(phase, crate::kstatus::Phase::Ready { .. });
    set_phase(ctx, t, base, &phase).await?;
    super::usage::opened(ctx, t, &phase);
    Ok(Action::requeue(report::next_pass(
        until(expiry.at),
        until(renew_at),
        ready,
        host.remote.is_some(),
    )))
}

/// Why a pass applies every child (pure; for the log): no record holds,
/// or one holds but the pod is not in the cache (or the host is remote).
fn why_apply(holding: bool, first: bool, cached_pod: &Option<Option<Pod>>) -> &'static str {
    match (holding, cached_pod) {
        (false, _) if first => "first pass since the start: children not known to be as recorded",
        (false, _) => "no record holds",
        (true, None) => "the host is another cluster",
        (true, _) => "the pod is not in the cache",
    }
}

/// Waits until the watches of the children and pods have listed them once
/// (at most [`FIRST_LISTS`]); whether they have.
async fn children_listed(tc: &TerminalContext) -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    let limit = match tc.lists_late.load(Relaxed) {
        true => std::time::Duration::ZERO,
        false => FIRST_LISTS,
    };
    let pods = tokio::time::timeout(limit, tc.pods.wait_until_ready());
    let (children, pods) = tokio::join!(tc.present.wait_listed(repair::KINDS, limit), pods);
    let listed = children && pods.is_ok_and(|r| r.is_ok());
    if !listed && !tc.lists_late.swap(true, Relaxed) {
        tracing::warn!("the watches of the Terminals' children did not list them in time; passes apply everything");
    }
    listed
}

/// When the token is due, if the children recorded in `t`'s status are all
/// still there as planned ([`plan::unchanged`]).
fn unchanged_since_recorded(
    t: &Terminal,
    plan: &plan::Plan,
    names: &Names,
    places: &children::Places<'_>,
    present: &present::Present,
) -> Option<Timestamp> {
    let recorded = t.status.as_ref().and_then(|s| s.children_digest.as_deref());
    let children = plan.children(names, places);
    let secret = present::Key::of::<Secret>(Some(&places.host.namespace), &names.kubeconfig_secret);
    let access = present::Key::of::<ServiceAccount>(Some(&places.access.namespace), &names.access);
    let uid = t.uid().unwrap_or_default();
    plan::unchanged(recorded, plan, &children, (&secret, &access), present, &uid, now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_that_applies_says_why() {
        let pod = Some(Some(Pod::default()));
        assert_eq!(
            why_apply(false, true, &pod),
            "first pass since the start: children not known to be as recorded"
        );
        assert_eq!(why_apply(false, false, &pod), "no record holds");
        assert_eq!(why_apply(true, false, &Some(None)), "the pod is not in the cache");
        assert_eq!(why_apply(true, false, &None), "the host is another cluster");
    }
}
