//! The SessionClaim reconciler, as a pipeline of named steps:
//!
//! ```text
//!  dereference ──► build ──► apply ──────────────► report
//!  creator,        objects   service account,      phase, message,
//!  profile,        (pure)    reader Role/Binding,  next pass (pure)
//!  lifetime (pure)           token, grants
//! ```
//!
//! A claim that cannot be resolved stalls; one past its end is ended
//! (`status.endReason`, then deleted). The token is bound to the kubeconfig
//! Secret, so deleting the Secret revokes it. On deletion, [`cleanup`].

pub mod build;
mod children;
mod cleanup;
mod dereference;
pub mod grants;
mod report;
mod token;

use std::{collections::BTreeSet, sync::Arc};

use build::Names;
use futures::StreamExt;
use k8s_openapi::{
    api::{
        core::v1::{Namespace, Secret},
        rbac::v1::RoleBinding,
    },
    jiff::Timestamp,
};
use kube::{
    Api, ResourceExt,
    api::PartialObjectMeta,
    runtime::{
        Controller, WatchStreamExt,
        controller::Action,
        finalizer::{Event as Finalizer, finalizer},
        predicates,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use tracing::instrument;

use super::{
    Context, Error,
    applied::Records,
    backoff::WatchBackoff,
    report::{expire, set_phase, stall},
};
use crate::{
    api::{Kind, SessionClaim},
    kstatus::Reason,
    lifetime::until,
};

const KIND: Kind = Kind::SessionClaim;

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
    let resync = ctx.resync();
    let client = ctx.client.clone();
    let (store, writer) = reflector::store();
    let trigger = watcher(
        Api::<SessionClaim>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .backoff(WatchBackoff::default())
    .modify(super::lean::lean)
    .reflect(writer)
    .applied_objects()
    .predicate_filter(super::trigger::acted_on, Default::default());
    let (ns_store, ns_writer) = reflector::store();
    let ns_changes = watcher(Api::<Namespace>::all(client.clone()), watcher::Config::default())
        .backoff(WatchBackoff::default())
        .modify(super::lean::lean)
        .reflect(ns_writer)
        .touched_objects()
        .predicate_filter(predicates::labels, Default::default());
    let (rb_store, rb_writer) = reflector::store();
    let binding_changes = watcher(
        Api::<RoleBinding>::all(client),
        watcher::Config::default().labels(build::UID_LABEL),
    )
    .backoff(WatchBackoff::default())
    .modify(super::lean::lean)
    .reflect(rb_writer)
    .touched_objects();
    let (secret_store, secret_writer) = reflector::store();
    let secret_changes = watcher(
        Api::<PartialObjectMeta<Secret>>::all(ctx.client.clone()),
        watcher::Config::default().labels(build::UID_LABEL),
    )
    .backoff(WatchBackoff::default())
    .modify(super::lean::lean)
    .reflect(secret_writer)
    .touched_objects();
    let concurrency = ctx.config.controller.concurrency;
    let sc = Arc::new(SessionContext {
        ctx,
        store: store.clone(),
        namespaces: ns_store,
        bindings: rb_store,
        secrets: secret_store,
        applied: Records::every(resync),
    });
    let (for_ns, for_rb, for_secret) = (sc.clone(), sc.clone(), sc.clone());
    Controller::for_stream(trigger, store)
        .watches_stream(ns_changes, move |ns: Namespace| claims_touching(&for_ns, &ns))
        .watches_stream(binding_changes, move |rb: RoleBinding| claim_of(&for_rb, &rb))
        .watches_stream(secret_changes, move |s: PartialObjectMeta<Secret>| {
            // A Secret whose token is not the one recorded (someone else
            // wrote it): the pass reads it again, and renews a token due.
            let uid = s.labels().get(build::UID_LABEL)?;
            let recorded = for_secret.applied.renew_at(uid);
            if super::applied::token_changed(crate::tokens::renew_at(&s), recorded) {
                for_secret.applied.forget(uid);
            }
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
    if super::nothing_left(ctx, &*c) {
        return Ok(Action::await_change());
    }
    let per_profile = report::active_per_profile(&ctx.config.session_profiles, sc.store.state().iter().map(|c| &**c));
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
                cleanup::cleanup(&c, ctx).await
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

/// dereference → (end) → apply → report.
async fn apply_claim(c: &SessionClaim, sc: &SessionContext) -> Result<Action, Error> {
    let ctx = &sc.ctx;
    let mut base = c.status.clone().unwrap_or_default();
    let inputs = match dereference::dereference(c, &ctx.config, Timestamp::now(), &mut base) {
        Ok(inputs) => inputs,
        Err((reason, message)) => return stall(ctx, c, base, reason, message).await,
    };
    let expiry = inputs.expiry;
    if expiry.at <= Timestamp::now() {
        return expire(ctx, c, base, expiry.reason, expiry.at).await;
    }
    let n = Names::for_uid(&c.uid().unwrap_or_default());
    base.service_account_name = Some(n.service_account.clone());
    base.kubeconfig_secret_name = Some(n.secret.clone());
    let renew_at = match children::own_objects(sc, c, &n, &inputs.creator, expiry.at).await? {
        Ok(renew_at) => renew_at,
        Err(message) => return stall(ctx, c, base, Reason::TokenRejected, message).await,
    };
    let granted = children::grants(sc, c, &n, &inputs.creator, inputs.profile).await?;
    let phase = report::ready(&granted);
    set_phase(ctx, c, base, &phase).await?;
    super::usage::opened(ctx, c, &phase);
    Ok(Action::requeue(report::next_pass(until(expiry.at), until(renew_at))))
}
