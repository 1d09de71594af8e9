//! The SessionClaim reconciler: dereference (creator, profile, lifetime),
//! apply the service account, the kubeconfig Secret and its reader Role, bind
//! the profile's grants in every matching namespace where the creator holds
//! the role, issue (bound to the Secret) and renew the token, report status;
//! on deletion remove every binding in every namespace, the Secret and the
//! service account.

pub mod build;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

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
    api::{ListParams, PostParams},
    runtime::{
        Controller, WatchStreamExt,
        controller::Action,
        events::EventType,
        finalizer::{Event as Finalizer, finalizer},
        predicates,
        reflector::Store,
        watcher,
    },
};
use tracing::{info, instrument};

use super::{Context, Error, apply, delete_if_exists, kube_err};
use crate::{
    access::{self as authz, Checker},
    api::{
        SessionClaim, common::EndReason, keys::LAST_HEARTBEAT_AT, session_claim::SessionClaimStatus, terminal::RoleKind,
    },
    config::SessionProfile,
    creator::Creator,
    kstatus::{Phase, Reason},
    lifetime::{self, until},
    tokens as token,
};

const KIND: &str = "SessionClaim";

/// The shared context plus this controller's cache of claims.
struct SessionContext {
    ctx: Arc<Context>,
    store: Store<SessionClaim>,
}

/// Runs the SessionClaim controller until `shutdown` resolves. Every claim is
/// looked at again when a namespace appears or its labels change.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let claims: Api<SessionClaim> = Api::all(ctx.client.clone());
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let ns_changes = watcher(namespaces, watcher::Config::default())
        .default_backoff()
        .touched_objects()
        .predicate_filter(predicates::labels, Default::default())
        .filter_map(|r| futures::future::ready(r.ok().map(|_| ())));
    let concurrency = ctx.config.controller.concurrency;
    let controller = Controller::new(claims, watcher::Config::default().any_semantic());
    let sc = Arc::new(SessionContext {
        ctx,
        store: controller.store(),
    });
    controller
        .reconcile_all_on(ns_changes)
        .trigger_backoff(super::backoff::WatchBackoff::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, sc)
        .for_each(|_| futures::future::ready(()))
        .await;
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
            Finalizer::Apply(c) => apply_claim(&c, ctx).await,
            Finalizer::Cleanup(c) => cleanup(&c, ctx).await,
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
    super::set_status(&ctx.client, c, c.status.as_ref(), status).await
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

async fn apply_claim(c: &SessionClaim, ctx: &Context) -> Result<Action, Error> {
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
    apply(client, &build::service_account(c, &n)).await?;
    apply(client, &build::reader_role(c, &n)).await?;
    apply(client, &build::reader_binding(c, &n, &creator)).await?;
    let (granted, skipped) = sync_grants(ctx, c, &n, &creator, profile).await?;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let existing = match secrets
        .get_opt(&n.secret)
        .await
        .map_err(kube_err("read the kubeconfig Secret"))?
    {
        Some(s) => s,
        None => {
            apply(client, &build::secret(c, &n, None)).await?;
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
            let lifetime = token::lifetime(Duration::from(ctx.config.session_token_lifetime), until(expiry.at));
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
            apply(client, &build::secret(c, &n, Some((&kc, &i, &e)))).await?;
            if !works(ctx, &issued.token).await {
                let msg = "the issued token is not accepted by the API server".to_string();
                return stalled(ctx, c, base, Reason::TokenRejected, msg).await;
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
/// creator holds the role (checked before the first grant there), and prunes
/// bindings the profile no longer covers. Returns what was granted and skipped.
async fn sync_grants(
    ctx: &Context,
    c: &SessionClaim,
    n: &Names,
    creator: &Creator,
    profile: &SessionProfile,
) -> Result<(Vec<String>, Vec<String>), Error> {
    let client = &ctx.client;
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(kube_err("list namespaces"))?;
    let mut desired: BTreeMap<(String, String), (RoleKind, String)> = BTreeMap::new();
    for ns in namespaces
        .items
        .iter()
        .filter(|ns| ns.metadata.deletion_timestamp.is_none())
    {
        let name = ns.name_any();
        for g in &profile.grants {
            if g.covers(&name, ns.labels()) {
                desired.insert(
                    (name.clone(), n.grant(g.role.kind, &g.role.name)),
                    (g.role.kind, g.role.name.clone()),
                );
            }
        }
    }
    let selector = format!("{}={}", build::UID_LABEL, c.uid().unwrap_or_default());
    let existing = Api::<RoleBinding>::all(client.clone())
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_err("list the session's RoleBindings"))?;
    let existing: BTreeMap<(String, String), ()> = existing
        .items
        .iter()
        .filter(|rb| rb.name_any() != n.reader)
        .map(|rb| ((rb.namespace().unwrap_or_default(), rb.name_any()), ()))
        .collect();
    for key in existing.keys().filter(|k| !desired.contains_key(*k)) {
        delete_if_exists::<RoleBinding>(client, Some(&key.0), &key.1).await?;
        info!(namespace = %key.0, binding = %key.1, "pruned a grant the profile no longer covers");
    }
    let (mut granted, mut skipped) = (vec![], vec![]);
    let checker = Checker {
        client,
        cluster: "this cluster",
        cache: ctx.clusters.access_cache(),
    };
    for ((ns, name), (kind, role)) in &desired {
        if !existing.contains_key(&(ns.clone(), name.clone())) {
            let binding = crate::api::terminal::TerminalRoleBinding {
                role_ref: crate::api::terminal::RoleRef {
                    kind: *kind,
                    name: role.clone(),
                },
                binding_kind: crate::api::terminal::BindingKind::RoleBinding,
                name_suffix: "grant".into(),
            };
            if let Err(d) = authz::check_role_grant(&checker, creator, &binding, ns).await {
                info!(namespace = %ns, role = %role, reason = %d.message, "grant skipped");
                skipped.push(format!("{role} in {ns}"));
                continue;
            }
        }
        apply(client, &build::grant_binding(c, n, ns, *kind, role)).await?;
        granted.push(format!("{role} in {ns}"));
    }
    Ok((granted, skipped))
}

async fn expire(
    ctx: &Context,
    c: &SessionClaim,
    mut base: SessionClaimStatus,
    reason: EndReason,
) -> Result<Action, Error> {
    base.end_reason = Some(reason);
    base.message = Some(format!("ended: {}", reason.describe()));
    set_status(ctx, c, &base).await?;
    super::end(ctx, c, KIND, reason).await?;
    Ok(Action::await_change())
}

async fn cleanup(c: &SessionClaim, ctx: &Context) -> Result<Action, Error> {
    let mut base = c.status.clone().unwrap_or_default();
    if base.end_reason.is_none() {
        base.end_reason = Some(EndReason::Deleted);
        base.message = Some(format!("ended: {}", EndReason::Deleted.describe()));
        let _ = set_status(ctx, c, &base).await;
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
