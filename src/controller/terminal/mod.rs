//! The Terminal reconciler: dereference (creator, lifetime, clusters),
//! apply target then host objects, issue and renew the target token, report
//! status; on deletion remove everything in the target, then the host.

pub mod build;

use std::{sync::Arc, time::Duration};

use build::{Names, Side};
use futures::StreamExt;
use k8s_openapi::{
    api::{
        core::v1::{Namespace, Pod, Secret, ServiceAccount},
        rbac::v1::{ClusterRoleBinding, Role, RoleBinding},
    },
    jiff::{SignedDuration, Timestamp},
};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, PostParams},
    runtime::{
        Controller, WatchStreamExt,
        controller::Action,
        events::EventType,
        finalizer::{Event as Finalizer, finalizer},
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use tracing::{info, instrument};

use super::{
    Context, Error, applied::Records, apply, backoff::WatchBackoff, delete_if_exists, delete_labelled, kube_err,
};
use crate::{
    access as authz,
    api::{
        Terminal,
        common::EndReason,
        keys::{LAST_HEARTBEAT_AT, TEMPORARY_NAMESPACE},
        terminal::TerminalStatus,
    },
    clusters::ClusterClient,
    creator::Creator,
    install::FIELD_MANAGER,
    kstatus::{Phase, Reason},
    lifetime::{self, until},
    tokens as token,
};

const KIND: &str = "Terminal";
/// How often a Terminal on another host cluster is looked at while its pod is not ready (no watch there).
const REMOTE_POLL: Duration = Duration::from_secs(5);

/// Runs the Terminal controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let terminals: Api<Terminal> = Api::all(ctx.client.clone());
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let concurrency = ctx.config.controller.concurrency;
    let (store, writer) = reflector::store();
    let trigger = watcher(terminals, watcher::Config::default().any_semantic())
        .backoff(WatchBackoff::default())
        .reflect(writer)
        .applied_objects()
        .predicate_filter(super::trigger::acted_on, Default::default());
    let (pod_store, pod_writer) = reflector::store();
    let pod_events = watcher(pods, watcher::Config::default().labels(build::UID_LABEL))
        .backoff(WatchBackoff::default())
        .reflect(pod_writer)
        .touched_objects();
    let tc = Arc::new(TerminalContext {
        ctx,
        store: store.clone(),
        pods: pod_store,
        applied: Default::default(),
    });
    Controller::for_stream(trigger, store)
        .watches_stream(pod_events, |pod: Pod| {
            let owner = pod.annotations().get(build::OWNER_ANNOTATION)?.clone();
            let (ns, name) = owner.split_once('/')?;
            Some(ObjectRef::<Terminal>::new(name).within(ns))
        })
        .trigger_backoff(WatchBackoff::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, tc)
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// The shared context plus this controller's caches.
struct TerminalContext {
    ctx: Arc<Context>,
    /// Every Terminal.
    store: Store<Terminal>,
    /// Every terminal pod in this cluster.
    pods: Store<Pod>,
    /// What was last applied for each Terminal, so a pass started by its
    /// pod does not write every child again; the value is when its token is due.
    applied: Records<Timestamp>,
}

fn error_policy(t: Arc<Terminal>, err: &Error, tc: Arc<TerminalContext>) -> Action {
    super::retry_after_error(&tc.ctx, KIND, &*t, err)
}

#[instrument(skip_all, fields(kind = "Terminal", object = %format!("{}/{}", t.namespace().unwrap_or_default(), t.name_any()), user = %super::creator_name(&*t), reconcile_id = %crate::telemetry::reconcile_id()))]
async fn reconcile(t: Arc<Terminal>, tc: Arc<TerminalContext>) -> Result<Action, Error> {
    let ctx = &tc.ctx;
    let _timer = ctx.metrics.reconcile(KIND);
    tracing::debug!("reconciling");
    let active = tc
        .store
        .state()
        .iter()
        .filter(|t| t.metadata.deletion_timestamp.is_none())
        .count();
    ctx.metrics.set_active(KIND, active as i64);
    let ns = t.namespace().unwrap_or_default();
    let api: Api<Terminal> = Api::namespaced(ctx.client.clone(), &ns);
    let object = t.clone();
    let result = finalizer(&api, super::FINALIZER, t, |event| async {
        match event {
            Finalizer::Apply(t) => apply_terminal(&t, &tc).await,
            Finalizer::Cleanup(t) => {
                tc.applied.forget(&t.uid().unwrap_or_default());
                cleanup(&t, ctx).await
            }
        }
    })
    .await
    .map_err(super::from_finalizer);
    if result.is_ok() {
        super::reconciled(ctx, KIND, &*object);
    }
    result
}

fn now() -> Timestamp {
    Timestamp::now()
}

async fn set_status(ctx: &Context, t: &Terminal, status: &TerminalStatus) -> Result<(), Error> {
    super::set_status(ctx, t, t.status.as_ref(), status).await
}

fn phase_status(t: &Terminal, base: TerminalStatus, phase: &Phase) -> TerminalStatus {
    let old = t.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
    TerminalStatus {
        message: Some(phase.message().to_string()),
        conditions: crate::kstatus::conditions(phase, t.metadata.generation, now(), &old),
        observed_generation: t.metadata.generation,
        ..base
    }
}

async fn stalled(
    ctx: &Context,
    t: &Terminal,
    base: TerminalStatus,
    reason: Reason,
    message: String,
) -> Result<Action, Error> {
    ctx.event(t, EventType::Warning, &reason.to_string(), "Reconcile", message.clone())
        .await;
    let phase = Phase::Stalled { reason, message };
    set_status(ctx, t, &phase_status(t, base, &phase)).await?;
    Ok(Action::requeue(Duration::from_secs(60)))
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
        Err(e) => return stalled(ctx, t, base, Reason::MissingCreator, e.to_string()).await,
    };
    let cfg = &ctx.config.terminal;
    let spec = &t.spec;
    let life = match lifetime::effective(
        spec.idle_timeout.as_deref(),
        spec.max_lifetime.as_deref(),
        &cfg.idle_timeout,
        &cfg.max_lifetime,
    ) {
        Ok(l) => l,
        Err(e) => return stalled(ctx, t, base, Reason::InvalidLifetime, e.to_string()).await,
    };
    let created = t.metadata.creation_timestamp.as_ref().map(|c| c.0).unwrap_or_else(now);
    let heartbeat = t
        .annotations()
        .get(LAST_HEARTBEAT_AT)
        .and_then(|v| v.parse::<Timestamp>().ok());
    let expiry = lifetime::expiry(created, heartbeat, &life);
    base.expires_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(expiry.at));
    if expiry.at <= now() {
        return expire(ctx, t, base, expiry.reason).await;
    }
    let Some((host_side, target_side)) = sides(t) else {
        let msg = format!(
            "a temporary namespace is requested but the {TEMPORARY_NAMESPACE} annotation is missing; the admission webhook did not run"
        );
        return stalled(ctx, t, base, Reason::MissingTemporaryNamespace, msg).await;
    };
    let ns = t.namespace().unwrap_or_default();
    let target = match ctx.clusters.get(&ns, spec.target.cluster.as_ref()).await {
        Ok(c) => c,
        Err(e) => {
            return stalled(
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
            return stalled(
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
                return stalled(ctx, t, base, Reason::NotAuthorized, d.message).await;
            }
        }
    }

    // The pod, from the watch cache where the host is this cluster.
    let cached_pod = host.remote.is_none().then(|| {
        tc.pods
            .get(&ObjectRef::new(&names.pod).within(&host_side.namespace))
            .map(|p| (*p).clone())
    });
    let uid = t.uid().unwrap_or_default();
    let marks = super::trigger::acted_on(t);
    let (renew_at, applied_pod) = match tc.applied.holding(&uid, marks, now()) {
        Some(renew_at) if matches!(cached_pod, Some(Some(_))) => (renew_at, None),
        _ => {
            for (cluster, side) in [(&target, &target_side), (&host, &host_side)] {
                if side.temporary
                    && let Some(taken) = own_namespace(&cluster.client, t, &side.namespace).await?
                {
                    return stalled(ctx, t, base, Reason::NamespaceNotOwned, taken).await;
                }
            }
            let access_side = build::access_side(t, target.remote.is_none(), &cfg.access_namespace);
            let places = Places {
                host: &host_side,
                target: &target_side,
                access: &access_side,
            };
            let (renew_at, pod) =
                apply_children(ctx, t, &names, (&target, &host), &places, expiry.at, &creator).await?;
            tc.applied.put(&uid, marks, Some(renew_at), renew_at);
            (renew_at, pod)
        }
    };

    let pod = match (applied_pod, cached_pod) {
        (Some(pod), _) => Some(pod),
        (None, Some(pod)) => pod,
        (None, None) => Api::<Pod>::namespaced(host.client.clone(), &host_side.namespace)
            .get_opt(&names.pod)
            .await
            .map_err(kube_err("read terminal pod"))?,
    };
    let phase = pod_phase(pod.as_ref());
    let ready = matches!(phase, Phase::Ready { .. });
    if !matches!(
        t.status
            .as_ref()
            .map(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
        Some(true)
    ) && ready
    {
        ctx.event(
            t,
            EventType::Normal,
            "Ready",
            "Reconcile",
            format!("terminal pod {} is running", names.pod),
        )
        .await;
    }
    set_status(ctx, t, &phase_status(t, base, &phase)).await?;

    let mut next = until(expiry.at).min(until(renew_at));
    if !ready && host.remote.is_some() {
        next = next.min(REMOTE_POLL);
    }
    Ok(Action::requeue(next.max(Duration::from_millis(1))))
}

fn pod_phase(pod: Option<&Pod>) -> Phase {
    let Some(pod) = pod else {
        return Phase::Reconciling {
            reason: Reason::PodCreating,
            message: "creating the terminal pod".into(),
        };
    };
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    match phase.as_str() {
        "Running" if ready => Phase::Ready {
            reason: Reason::PodReady,
            message: "the terminal is ready".into(),
        },
        "Failed" | "Succeeded" => Phase::Stalled {
            reason: Reason::PodEnded,
            message: format!("the terminal pod ended ({phase}); delete this Terminal and create a new one"),
        },
        _ => Phase::Reconciling {
            reason: Reason::PodNotReady,
            message: format!("waiting for the terminal pod to become ready (phase {phase})"),
        },
    }
}

async fn expire(ctx: &Context, t: &Terminal, mut base: TerminalStatus, reason: EndReason) -> Result<Action, Error> {
    base.end_reason = Some(reason);
    set_status(ctx, t, &phase_status(t, base, &Phase::ended(reason))).await?;
    super::end(ctx, t, KIND, reason).await?;
    Ok(Action::await_change())
}

/// Creates a namespace (never adopting one): `Ok(false)` when it exists already.
async fn create_namespace(client: &Client, ns: &Namespace) -> Result<bool, Error> {
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match Api::<Namespace>::all(client.clone()).create(&pp, ns).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(kube_err(format!("create namespace {}", ns.name_any()))(e)),
    }
}

/// Creates the temporary namespace `name` for `t`, or confirms that the
/// existing one carries `t`'s UID label. `Ok(Some(message))` when a namespace
/// of that name exists and was not created for `t`: Portico neither uses nor
/// adopts nor deletes it.
async fn own_namespace(client: &Client, t: &Terminal, name: &str) -> Result<Option<String>, Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let read = kube_err(format!("read namespace {name}"));
    let existing = match api.get_opt(name).await.map_err(read)? {
        Some(ns) => ns,
        None => match create_namespace(client, &build::namespace(t, name)).await? {
            true => return Ok(None),
            // Made by someone else in between: judged like any existing one.
            false => api
                .get(name)
                .await
                .map_err(kube_err(format!("read namespace {name}")))?,
        },
    };
    if build::made_for(existing.labels(), t) {
        return Ok(None);
    }
    Ok(Some(format!(
        "namespace {name} already exists and was not created for this Terminal; Portico neither uses nor \
         deletes it; delete this Terminal and create a new one"
    )))
}

/// Where one Terminal's objects live.
struct Places<'a> {
    host: &'a Side,
    target: &'a Side,
    access: &'a Side,
}

/// Applies every child of `t` in three rounds of independent writes (each
/// round's writes at once): the access service account and its bindings in
/// the target, the attach service account, Role and RoleBinding in the
/// host, and a read of the kubeconfig Secret; then a token when one is due;
/// then the Secret and the pod. Returns when to renew the token, and the
/// pod as applied.
async fn apply_children(
    ctx: &Context,
    t: &Terminal,
    n: &Names,
    (target, host): (&ClusterClient, &ClusterClient),
    places: &Places<'_>,
    expires: Timestamp,
    creator: &Creator,
) -> Result<(Timestamp, Option<Pod>), Error> {
    let secrets: Api<Secret> = Api::namespaced(host.client.clone(), &places.host.namespace);
    let read_secret = async {
        secrets
            .get_opt(&n.kubeconfig_secret)
            .await
            .map_err(kube_err("read kubeconfig Secret"))
    };
    let (_, existing, _) = tokio::try_join!(
        apply_target(t, n, target, places.target, places.access),
        read_secret,
        apply_host_access(t, n, host, places.host, creator),
    )?;
    let (renew_at, issued) = ensure_token(ctx, t, n, target, places, expires, existing).await?;
    let write_secret = async {
        match &issued {
            Some(secret) => apply(&host.client, secret).await.map(|_| ()),
            None => Ok(()),
        }
    };
    let pod = build::pod(t, n, places.host, &ctx.config.terminal);
    let (_, applied) = tokio::try_join!(write_secret, apply(&host.client, &pod))?;
    // The API server's answer is the pod as it is now (its status too).
    Ok((renew_at, applied.try_parse::<Pod>().ok()))
}

async fn apply_target(
    t: &Terminal,
    n: &Names,
    target: &ClusterClient,
    side: &Side,
    access: &Side,
) -> Result<(), Error> {
    let service_account = async {
        let sa = build::service_account(t, &n.access, access);
        if let Err(e) = apply(&target.client, &sa).await {
            // The first Terminal in a cluster: make the access namespace, then try again.
            if !matches!(&e, Error::Kube { source: kube::Error::Api(s), .. } if s.code == 404) {
                return Err(e);
            }
            if create_namespace(&target.client, &build::access_namespace(&access.namespace)).await? {
                info!(namespace = %access.namespace, "created the access namespace");
            }
            apply(&target.client, &sa).await?;
        }
        Ok(())
    };
    let (rbs, crbs) = build::target_bindings(t, n, side, access);
    let bindings = futures::future::try_join_all(rbs.iter().map(|rb| apply(&target.client, rb)));
    let cluster_bindings = futures::future::try_join_all(crbs.iter().map(|crb| apply(&target.client, crb)));
    tokio::try_join!(service_account, bindings, cluster_bindings)?;
    Ok(())
}

/// Issues the target token when `existing` (the kubeconfig Secret) is
/// missing or due for renewal: returns when to renew next, and the Secret to
/// write (`None`: the existing one is current).
async fn ensure_token(
    ctx: &Context,
    t: &Terminal,
    n: &Names,
    target: &ClusterClient,
    places: &Places<'_>,
    expires: Timestamp,
    existing: Option<Secret>,
) -> Result<(Timestamp, Option<Secret>), Error> {
    let (host_side, target_side) = (places.host, places.target);
    let renew = existing.as_ref().and_then(token::renew_at);
    if let Some(at) = renew
        && at > now()
    {
        return Ok((at, None));
    }
    let wanted = token::lifetime(ctx.config.terminal.token_lifetime.into(), until(expires));
    let issued = token::request(&target.client, &places.access.namespace, &n.access, wanted, None).await?;
    let (exp, issued_at) = (issued.expires, issued.issued);
    let server = target_server(ctx, target);
    let context_ns = t
        .spec
        .target
        .kubeconfig_context_namespace
        .clone()
        .unwrap_or_else(|| target_side.namespace.clone());
    let kubeconfig = token::kubeconfig(
        &server,
        target.ca_pem.as_deref(),
        &issued.token,
        &context_ns,
        "terminal",
    );
    let secret = build::kubeconfig_secret(t, n, host_side, &kubeconfig, &issued_at.to_string(), &exp.to_string());
    if renew.is_some() {
        ctx.metrics.token_renewed(KIND);
        ctx.event(
            t,
            EventType::Normal,
            "TokenRenewed",
            "Token",
            format!("renewed the target token, valid until {exp}"),
        )
        .await;
    }
    Ok((token::renewal_time(issued_at, exp), Some(secret)))
}

fn target_server(ctx: &Context, target: &ClusterClient) -> String {
    match (&target.remote, &ctx.config.terminal.server_url) {
        (None, Some(url)) => url.clone(),
        _ => target.server.clone(),
    }
}

/// The attach service account, Role and RoleBinding in the host, at once.
async fn apply_host_access(
    t: &Terminal,
    n: &Names,
    host: &ClusterClient,
    side: &Side,
    creator: &Creator,
) -> Result<(), Error> {
    let sa = build::service_account(t, &n.attach, side);
    let role = build::attach_role(t, n, side);
    let binding = build::attach_role_binding(t, n, side, creator);
    tokio::try_join!(
        apply(&host.client, &sa),
        apply(&host.client, &role),
        apply(&host.client, &binding),
    )?;
    Ok(())
}

async fn cleanup(t: &Terminal, ctx: &Context) -> Result<Action, Error> {
    let mut base = t.status.clone().unwrap_or_default();
    if base.end_reason.is_none() {
        base.end_reason = Some(EndReason::Deleted);
        let _ = set_status(ctx, t, &phase_status(t, base, &Phase::ended(EndReason::Deleted))).await;
    }
    let ns = t.namespace().unwrap_or_default();
    let names = Names::for_uid(&t.uid().unwrap_or_default());
    // (message, permanent): a cluster whose credentials are gone cannot be cleaned by retrying.
    let mut failures: Vec<(String, bool)> = vec![];
    if let Some((host_side, target_side)) = sides(t) {
        match ctx.clusters.get(&ns, t.spec.target.cluster.as_ref()).await {
            Ok(c) => {
                let access = &ctx.config.terminal.access_namespace;
                if let Err(e) = cleanup_target(t, &names, &c, &target_side, access).await {
                    failures.push((format!("target: {e}"), false));
                }
            }
            Err(e) => failures.push((format!("target cluster: {e}"), e.is_permanent())),
        }
        match ctx.clusters.get(&ns, t.spec.host.cluster.as_ref()).await {
            Ok(c) => {
                if let Err(e) = cleanup_host(t, &names, &c, &host_side).await {
                    failures.push((format!("host: {e}"), false));
                }
            }
            Err(e) => failures.push((format!("host cluster: {e}"), e.is_permanent())),
        }
    }
    if failures.is_empty() {
        info!("terminal cleaned up");
        return Ok(Action::await_change());
    }
    ctx.metrics.cleanup_failed(KIND);
    let deleting_since = t.metadata.deletion_timestamp.as_ref().map(|d| d.0).unwrap_or_else(now);
    let timeout: Duration = ctx.config.terminal.cleanup_timeout.into();
    let msg = failures.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>().join("; ");
    let deadline = deleting_since
        .saturating_add(SignedDuration::try_from(timeout).unwrap_or_default())
        .unwrap_or(Timestamp::MAX);
    if failures.iter().all(|(_, permanent)| *permanent) {
        let note =
            format!("cannot reach a cluster to remove what this Terminal created there; remove it by hand: {msg}");
        ctx.event(t, EventType::Warning, "CleanupIncomplete", "Cleanup", note)
            .await;
        return Ok(Action::await_change());
    }
    if until(deadline).is_zero() {
        let note = format!("gave up after {timeout:?}; left behind: {msg}");
        ctx.event(t, EventType::Warning, "CleanupIncomplete", "Cleanup", note)
            .await;
        return Ok(Action::await_change());
    }
    ctx.event(t, EventType::Warning, "CleanupRetrying", "Cleanup", msg.clone())
        .await;
    Err(Error::Cleanup(msg))
}

async fn cleanup_target(t: &Terminal, n: &Names, c: &ClusterClient, side: &Side, access: &str) -> Result<(), Error> {
    let selector = format!("{}={}", build::UID_LABEL, t.uid().unwrap_or_default());
    let crbs: Api<ClusterRoleBinding> = Api::all(c.client.clone());
    for crb in crbs
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_err("list ClusterRoleBindings"))?
    {
        delete_if_exists::<ClusterRoleBinding>(&c.client, None, &crb.name_any()).await?;
    }
    let uid = t.uid().unwrap_or_default();
    let mark = (build::UID_LABEL, uid.as_str());
    // The access service account first: its deletion revokes the target token at once.
    delete_labelled::<ServiceAccount>(&c.client, Some(access), &n.access, mark).await?;
    if side.temporary {
        delete_labelled::<Namespace>(&c.client, None, &side.namespace, mark).await?;
        return Ok(());
    }
    let rbs: Api<RoleBinding> = Api::namespaced(c.client.clone(), &side.namespace);
    for rb in rbs
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_err("list RoleBindings"))?
    {
        if rb.name_any().starts_with(&n.access) {
            delete_if_exists::<RoleBinding>(&c.client, Some(&side.namespace), &rb.name_any()).await?;
        }
    }
    Ok(())
}

async fn cleanup_host(t: &Terminal, n: &Names, c: &ClusterClient, side: &Side) -> Result<(), Error> {
    let uid = t.uid().unwrap_or_default();
    let mark = (build::UID_LABEL, uid.as_str());
    if side.temporary {
        delete_labelled::<Namespace>(&c.client, None, &side.namespace, mark).await?;
        return Ok(());
    }
    let ns = Some(side.namespace.as_str());
    delete_labelled::<Pod>(&c.client, ns, &n.pod, mark).await?;
    delete_labelled::<Secret>(&c.client, ns, &n.kubeconfig_secret, mark).await?;
    delete_labelled::<RoleBinding>(&c.client, ns, &n.attach, mark).await?;
    delete_labelled::<Role>(&c.client, ns, &n.attach, mark).await?;
    delete_labelled::<ServiceAccount>(&c.client, ns, &n.attach, mark).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_phases_map_to_kstatus() {
        assert!(matches!(pod_phase(None), Phase::Reconciling { .. }));
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        assert!(matches!(pod_phase(Some(&pod)), Phase::Ready { .. }));
        let failed: Pod = serde_json::from_value(serde_json::json!({"status": {"phase": "Failed"}})).unwrap();
        assert!(matches!(pod_phase(Some(&failed)), Phase::Stalled { .. }));
    }
}
