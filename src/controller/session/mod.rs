//! The SessionClaim reconciler: dereference (creator, profile, lifetime),
//! apply the service account, the kubeconfig Secret and its reader Role, bind
//! the profile's grants in every matching namespace where the creator holds
//! the role, issue (bound to the Secret) and renew the token, report status;
//! on deletion remove every binding in every namespace, the Secret and the
//! service account.

pub mod build;
pub mod grants;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use build::Names;
use futures::StreamExt;
use k8s_openapi::{
    api::{
        authentication::v1::SelfSubjectReview,
        core::v1::{Namespace, Secret, ServiceAccount},
        rbac::v1::{Role, RoleBinding},
    },
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, PartialObjectMeta, PostParams},
    runtime::{
        Controller, WatchStreamExt,
        controller::Action,
        events::EventType,
        finalizer::{Event as Finalizer, finalizer},
        predicates,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use tracing::{info, instrument};

use super::{Context, Error, applied::Records, apply, backoff::WatchBackoff, delete_if_exists, kube_err};
use crate::{
    access::{self as authz, Checker},
    api::{SessionClaim, common::EndReason, keys::LAST_HEARTBEAT_AT, session_claim::SessionClaimStatus},
    config::SessionProfile,
    creator::Creator,
    kstatus::{Phase, Reason},
    lifetime::{self, until},
    tokens as token,
};

const KIND: &str = "SessionClaim";

/// The shared context plus this controller's caches.
struct SessionContext {
    ctx: Arc<Context>,
    /// Every claim.
    store: Store<SessionClaim>,
    /// Every namespace (grants follow their names and labels).
    namespaces: Store<Namespace>,
    /// Every RoleBinding a claim made (its reader binding and its grants).
    bindings: Store<RoleBinding>,
    /// The metadata of every kubeconfig Secret a claim made (deleting one
    /// revokes its token; a new one is issued).
    secrets: Store<PartialObjectMeta<Secret>>,
    /// What was last applied for each claim; the value is when its token is due.
    applied: Records<Timestamp>,
}

/// Runs the SessionClaim controller until `shutdown` resolves. A claim is
/// reconciled when it changes (not on the operator's own status writes),
/// when one of its bindings changes, and when a namespace it covers or holds
/// a grant in appears or changes its labels.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let (store, writer) = reflector::store();
    let trigger = watcher(
        Api::<SessionClaim>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .backoff(WatchBackoff::default())
    .reflect(writer)
    .applied_objects()
    .predicate_filter(super::trigger::acted_on, Default::default());
    let (ns_store, ns_writer) = reflector::store();
    let ns_changes = watcher(Api::<Namespace>::all(client.clone()), watcher::Config::default())
        .backoff(WatchBackoff::default())
        .reflect(ns_writer)
        .touched_objects()
        .predicate_filter(predicates::labels, Default::default());
    let (rb_store, rb_writer) = reflector::store();
    let binding_changes = watcher(
        Api::<RoleBinding>::all(client),
        watcher::Config::default().labels(build::UID_LABEL),
    )
    .backoff(WatchBackoff::default())
    .reflect(rb_writer)
    .touched_objects();
    let (secret_store, secret_writer) = reflector::store();
    let secret_changes = watcher(
        Api::<PartialObjectMeta<Secret>>::all(ctx.client.clone()),
        watcher::Config::default().labels(build::UID_LABEL),
    )
    .backoff(WatchBackoff::default())
    .reflect(secret_writer)
    .touched_objects();
    let concurrency = ctx.config.controller.concurrency;
    let sc = Arc::new(SessionContext {
        ctx,
        store: store.clone(),
        namespaces: ns_store,
        bindings: rb_store,
        secrets: secret_store,
        applied: Records::default(),
    });
    let (for_ns, for_rb, for_secret) = (sc.clone(), sc.clone(), sc.clone());
    Controller::for_stream(trigger, store)
        .watches_stream(ns_changes, move |ns: Namespace| claims_touching(&for_ns, &ns))
        .watches_stream(binding_changes, move |rb: RoleBinding| claim_of(&for_rb, &rb))
        .watches_stream(secret_changes, move |s: PartialObjectMeta<Secret>| {
            claim_of(&for_secret, &s)
        })
        .trigger_backoff(WatchBackoff::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, sc)
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// The claims a namespace event concerns: those whose profile covers it
/// now, and those holding a grant there (its labels may no longer match).
fn claims_touching(sc: &SessionContext, ns: &Namespace) -> Vec<ObjectRef<SessionClaim>> {
    let name = ns.name_any();
    let holders: BTreeSet<String> = sc
        .bindings
        .state()
        .iter()
        .filter(|rb| rb.namespace().as_deref() == Some(name.as_str()))
        .filter_map(|rb| rb.labels().get(build::UID_LABEL).cloned())
        .collect();
    sc.store
        .state()
        .iter()
        .filter(|c| {
            holders.contains(c.metadata.uid.as_deref().unwrap_or_default())
                || sc
                    .ctx
                    .config
                    .profile(&c.spec.profile)
                    .is_some_and(|p| p.grants.iter().any(|g| g.covers(&name, ns.labels())))
        })
        .map(|c| ObjectRef::from_obj(&**c))
        .collect()
}

/// The claim that made a binding or a Secret.
fn claim_of(sc: &SessionContext, child: &impl ResourceExt) -> Option<ObjectRef<SessionClaim>> {
    let uid = child.labels().get(build::UID_LABEL)?;
    let state = sc.store.state();
    let claim = state.iter().find(|c| c.metadata.uid.as_deref() == Some(uid.as_str()))?;
    Some(ObjectRef::from_obj(&**claim))
}

fn error_policy(c: Arc<SessionClaim>, err: &Error, sc: Arc<SessionContext>) -> Action {
    super::retry_after_error(&sc.ctx, KIND, &*c, err)
}

#[instrument(skip_all, fields(kind = "SessionClaim", object = %format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any()), user = %super::creator_name(&*c), reconcile_id = %crate::telemetry::reconcile_id()))]
async fn reconcile(c: Arc<SessionClaim>, sc: Arc<SessionContext>) -> Result<Action, Error> {
    let ctx = &sc.ctx;
    let _timer = ctx.metrics.reconcile(KIND);
    tracing::debug!("reconciling");
    let mut per_profile: BTreeMap<String, i64> = ctx
        .config
        .session_profiles
        .iter()
        .map(|p| (p.name.clone(), 0))
        .collect();
    for claim in sc
        .store
        .state()
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
    {
        *per_profile.entry(claim.spec.profile.clone()).or_default() += 1;
    }
    for (profile, n) in &per_profile {
        ctx.metrics.set_active_sessions(profile, *n);
    }
    ctx.metrics.set_active(KIND, per_profile.values().sum());
    let api: Api<SessionClaim> = Api::namespaced(ctx.client.clone(), &c.namespace().unwrap_or_default());
    let object = c.clone();
    let result = finalizer(&api, super::FINALIZER, c, |event| async {
        match event {
            Finalizer::Apply(c) => apply_claim(&c, &sc).await,
            Finalizer::Cleanup(c) => {
                sc.applied.forget(&c.uid().unwrap_or_default());
                cleanup(&c, ctx).await
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

async fn set_status(ctx: &Context, c: &SessionClaim, status: &SessionClaimStatus) -> Result<(), Error> {
    super::set_status(ctx, c, c.status.as_ref(), status).await
}

fn with_phase(c: &SessionClaim, base: SessionClaimStatus, phase: &Phase) -> SessionClaimStatus {
    let old = c.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
    SessionClaimStatus {
        message: Some(phase.message().to_string()),
        conditions: crate::kstatus::conditions(phase, c.metadata.generation, Timestamp::now(), &old),
        observed_generation: c.metadata.generation,
        ..base
    }
}

async fn stalled(
    ctx: &Context,
    c: &SessionClaim,
    base: SessionClaimStatus,
    reason: Reason,
    message: String,
) -> Result<Action, Error> {
    ctx.event(c, EventType::Warning, &reason.to_string(), "Reconcile", message.clone())
        .await;
    set_status(ctx, c, &with_phase(c, base, &Phase::Stalled { reason, message })).await?;
    Ok(Action::requeue(Duration::from_secs(60)))
}

async fn apply_claim(c: &SessionClaim, sc: &SessionContext) -> Result<Action, Error> {
    let ctx = &sc.ctx;
    let mut base = c.status.clone().unwrap_or_default();
    let creator = match Creator::from_annotations(c.metadata.annotations.as_ref()) {
        Ok(cr) => cr,
        Err(e) => return stalled(ctx, c, base, Reason::MissingCreator, e.to_string()).await,
    };
    base.user = Some(creator.user.clone());
    base.groups = creator.groups.clone();
    let Some(profile) = ctx.config.profile(&c.spec.profile) else {
        let msg = format!(
            "session profile {:?} does not exist in the operator configuration",
            c.spec.profile
        );
        return stalled(ctx, c, base, Reason::ProfileMissing, msg).await;
    };
    let life = match lifetime::effective(
        c.spec.idle_timeout.as_deref(),
        c.spec.max_lifetime.as_deref(),
        &profile.idle_timeout,
        &profile.max_lifetime,
    ) {
        Ok(l) => l,
        Err(e) => return stalled(ctx, c, base, Reason::InvalidLifetime, e.to_string()).await,
    };
    let created = c
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or_else(Timestamp::now);
    let heartbeat = c
        .annotations()
        .get(LAST_HEARTBEAT_AT)
        .and_then(|v| v.parse::<Timestamp>().ok());
    let expiry = lifetime::expiry(created, heartbeat, &life);
    base.expires_at = Some(Time(expiry.at));
    if expiry.at <= Timestamp::now() {
        return expire(ctx, c, base, expiry.reason).await;
    }

    let ns = c.namespace().unwrap_or_default();
    let n = Names::for_uid(&c.uid().unwrap_or_default());
    let client = &ctx.client;
    base.service_account_name = Some(n.service_account.clone());
    base.kubeconfig_secret_name = Some(n.secret.clone());
    let uid = c.uid().unwrap_or_default();
    let marks = super::trigger::acted_on(c);
    let children_in_place = sc
        .bindings
        .state()
        .iter()
        .any(|rb| rb.namespace().as_deref() == Some(ns.as_str()) && rb.name_any() == n.reader)
        && sc.secrets.get(&ObjectRef::new(&n.secret).within(&ns)).is_some();
    let renew_at = match sc.applied.holding(&uid, marks, Timestamp::now()) {
        Some(renew_at) if children_in_place => renew_at,
        _ => {
            apply(client, &build::service_account(c, &n)).await?;
            apply(client, &build::reader_role(c, &n)).await?;
            apply(client, &build::reader_binding(c, &n, &creator)).await?;
            match ensure_token(ctx, c, &n, &creator, expiry.at).await? {
                Ok(renew_at) => {
                    sc.applied.put(&uid, marks, Some(renew_at), renew_at);
                    renew_at
                }
                Err(message) => return stalled(ctx, c, base, Reason::TokenRejected, message).await,
            }
        }
    };
    let (granted, skipped) = sync_grants(sc, c, &n, &creator, profile).await?;
    let mut message = if granted.is_empty() {
        "the session's kubeconfig is ready; the profile grants nothing you hold".to_string()
    } else {
        format!("the session's kubeconfig is ready; granted {}", granted.join(", "))
    };
    if !skipped.is_empty() {
        message.push_str(&format!(
            "; not granted (you lack these rights): {}",
            skipped.join("; ")
        ));
    }
    let phase = Phase::Ready {
        reason: Reason::KubeconfigReady,
        message,
    };
    set_status(ctx, c, &with_phase(c, base, &phase)).await?;
    Ok(Action::requeue(
        until(expiry.at).min(until(renew_at)).max(Duration::from_millis(1)),
    ))
}

/// Reads the kubeconfig Secret (creating it empty first) and issues a token
/// bound to it when none is there or it is due; returns when it is due next,
/// or why the issued token does not work.
async fn ensure_token(
    ctx: &Context,
    c: &SessionClaim,
    n: &Names,
    creator: &Creator,
    expires_at: Timestamp,
) -> Result<Result<Timestamp, String>, Error> {
    let client = &ctx.client;
    let ns = c.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let existing = match secrets
        .get_opt(&n.secret)
        .await
        .map_err(kube_err("read the kubeconfig Secret"))?
    {
        Some(s) => s,
        None => {
            apply(client, &build::secret(c, n, None)).await?;
            secrets
                .get(&n.secret)
                .await
                .map_err(kube_err("read the kubeconfig Secret"))?
        }
    };
    let renew = token::renew_at(&existing);
    let renew_at = match renew {
        Some(at) if at > Timestamp::now() => at,
        _ => {
            let lifetime = token::lifetime(Duration::from(ctx.config.session_token_lifetime), until(expires_at));
            let bound = (n.secret.as_str(), existing.metadata.uid.as_deref().unwrap_or_default());
            let issued = token::request(client, &ns, &n.service_account, lifetime, Some(bound)).await?;
            let server = ctx
                .config
                .session_server_url
                .clone()
                .unwrap_or_else(|| ctx.clusters.local().server.clone());
            let kc = token::kubeconfig(
                &server,
                ctx.clusters.local().ca_pem.as_deref(),
                &issued.token,
                &ns,
                &creator.user,
            );
            let (i, e) = (issued.issued.to_string(), issued.expires.to_string());
            apply(client, &build::secret(c, n, Some((&kc, &i, &e)))).await?;
            if !works(ctx, &issued.token).await {
                return Ok(Err("the issued token is not accepted by the API server".to_string()));
            }
            if renew.is_some() {
                ctx.metrics.token_renewed(KIND);
                ctx.event(
                    c,
                    EventType::Normal,
                    "TokenRenewed",
                    "Token",
                    format!("valid until {}", issued.expires),
                )
                .await;
            } else {
                ctx.event(
                    c,
                    EventType::Normal,
                    "Ready",
                    "Token",
                    format!("kubeconfig in Secret {}", n.secret),
                )
                .await;
            }
            token::renewal_time(issued.issued, issued.expires)
        }
    };
    Ok(Ok(renew_at))
}

/// Whether the API server accepts `token` (a SelfSubjectReview with it).
async fn works(ctx: &Context, token: &str) -> bool {
    let local = ctx.clusters.local();
    let Ok(url) = local.server.parse() else { return false };
    let mut config = kube::Config::new(url);
    config.root_cert = local.ca_pem.as_ref().map(|pem| {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .filter_map(Result::ok)
            .map(|c| c.to_vec())
            .collect()
    });
    config.auth_info.token = Some(token.to_string().into());
    let Ok(client) = Client::try_from(config) else {
        return false;
    };
    Api::<SelfSubjectReview>::all(client)
        .create(&PostParams::default(), &Default::default())
        .await
        .is_ok()
}

/// Creates the grants' RoleBindings in every namespace they cover where the
/// creator holds the role (checked before the first grant there), writes
/// again those changed since, and prunes those the profile no longer covers;
/// namespaces and bindings come from the caches, so a pass where everything
/// is in place makes no request. Returns what is granted and what skipped.
async fn sync_grants(
    sc: &SessionContext,
    c: &SessionClaim,
    n: &Names,
    creator: &Creator,
    profile: &SessionProfile,
) -> Result<(Vec<String>, Vec<String>), Error> {
    let ctx = &sc.ctx;
    let client = &ctx.client;
    sc.namespaces
        .wait_until_ready()
        .await
        .map_err(|_| Error::Cache("namespaces"))?;
    sc.bindings
        .wait_until_ready()
        .await
        .map_err(|_| Error::Cache("session RoleBindings"))?;
    let plan = grants::plan(c, n, profile, &sc.namespaces.state(), &sc.bindings.state());
    for (ns, name) in &plan.prune {
        delete_if_exists::<RoleBinding>(client, Some(ns), name).await?;
        info!(namespace = %ns, binding = %name, "pruned a grant the profile no longer covers");
    }
    let (mut granted, mut skipped) = (plan.in_place, vec![]);
    let checker = Checker {
        client,
        cluster: "this cluster",
        cache: ctx.clusters.access_cache(),
    };
    for w in plan.write {
        if !w.exists {
            let binding = crate::api::terminal::TerminalRoleBinding {
                role_ref: crate::api::terminal::RoleRef {
                    kind: w.kind,
                    name: w.role.clone(),
                },
                binding_kind: crate::api::terminal::BindingKind::RoleBinding,
                name_suffix: "grant".into(),
            };
            if let Err(d) = authz::check_role_grant(&checker, creator, &binding, &w.namespace).await {
                info!(namespace = %w.namespace, role = %w.role, reason = %d.message, "grant skipped");
                skipped.push(format!("{} in {}", w.role, w.namespace));
                continue;
            }
        }
        apply(client, &build::grant_binding(c, n, &w.namespace, w.kind, &w.role)).await?;
        granted.push(format!("{} in {}", w.role, w.namespace));
    }
    granted.sort();
    Ok((granted, skipped))
}

async fn expire(
    ctx: &Context,
    c: &SessionClaim,
    mut base: SessionClaimStatus,
    reason: EndReason,
) -> Result<Action, Error> {
    base.end_reason = Some(reason);
    set_status(ctx, c, &with_phase(c, base, &Phase::ended(reason))).await?;
    super::end(ctx, c, KIND, reason).await?;
    Ok(Action::await_change())
}

async fn cleanup(c: &SessionClaim, ctx: &Context) -> Result<Action, Error> {
    let mut base = c.status.clone().unwrap_or_default();
    if base.end_reason.is_none() {
        base.end_reason = Some(EndReason::Deleted);
        let _ = set_status(ctx, c, &with_phase(c, base, &Phase::ended(EndReason::Deleted))).await;
        ctx.metrics.expired(KIND, "Deleted");
    }
    let client = &ctx.client;
    let ns = c.namespace().unwrap_or_default();
    let n = Names::for_uid(&c.uid().unwrap_or_default());
    let result = async {
        // The Secret first: its deletion revokes the bound token at once.
        delete_if_exists::<Secret>(client, Some(&ns), &n.secret).await?;
        delete_if_exists::<ServiceAccount>(client, Some(&ns), &n.service_account).await?;
        let selector = format!("{}={}", build::UID_LABEL, c.uid().unwrap_or_default());
        let rbs = Api::<RoleBinding>::all(client.clone())
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(kube_err("list the session's RoleBindings"))?;
        for rb in rbs {
            delete_if_exists::<RoleBinding>(client, rb.namespace().as_deref(), &rb.name_any()).await?;
        }
        delete_if_exists::<Role>(client, Some(&ns), &n.reader).await?;
        Ok::<(), Error>(())
    }
    .await;
    if let Err(e) = result {
        ctx.metrics.cleanup_failed(KIND);
        ctx.event(c, EventType::Warning, "CleanupRetrying", "Cleanup", e.to_string())
            .await;
        return Err(e);
    }
    info!("session cleaned up");
    Ok(Action::await_change())
}
