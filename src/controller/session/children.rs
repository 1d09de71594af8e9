//! Step 3, apply: the service account, the reader Role and RoleBinding and
//! the token ([`token`](super::token)) — skipped while nothing changed and
//! the children are in the caches — and the profile's grants, planned from
//! the caches ([`grants::plan`], pure) and checked against the creator's
//! own rights before the first binding in each namespace.

use k8s_openapi::{api::rbac::v1::RoleBinding, jiff::Timestamp};
use kube::{ResourceExt, runtime::reflector::ObjectRef};
use tracing::info;

use super::{
    SessionContext,
    build::{self, Names},
    grants, token,
};
use crate::{
    access::{self as authz, Checker},
    api::{
        SessionClaim,
        common::{BindingKind, RoleRef},
    },
    config::SessionProfile,
    controller::{Error, apply, delete_if_exists, trigger},
    creator::Creator,
};

/// What the grants came to, each as "role in namespace".
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Granted {
    /// Bound (or already in place).
    pub granted: Vec<String>,
    /// Not bound: the creator does not hold the role there.
    pub skipped: Vec<String>,
}

/// Applies the session's own objects and its token unless the last pass
/// did so for this version of the claim and they are all in the caches;
/// returns when the token is due, or why the issued token does not work.
pub(super) async fn own_objects(
    sc: &SessionContext,
    c: &SessionClaim,
    n: &Names,
    creator: &Creator,
    expires_at: Timestamp,
) -> Result<Result<Timestamp, String>, Error> {
    let ctx = &sc.ctx;
    let client = &ctx.client;
    let ns = c.namespace().unwrap_or_default();
    let uid = c.uid().unwrap_or_default();
    let marks = trigger::children_marks(c);
    let in_place = sc
        .bindings
        .state()
        .iter()
        .any(|rb| rb.namespace().as_deref() == Some(ns.as_str()) && rb.name_any() == n.reader)
        && sc.secrets.get(&ObjectRef::new(&n.secret).within(&ns)).is_some();
    if let Some(renew_at) = sc.applied.holding(&uid, marks, Timestamp::now())
        && in_place
    {
        return Ok(Ok(renew_at));
    }
    apply(client, &build::service_account(c, n)).await?;
    apply(client, &build::reader_role(c, n)).await?;
    apply(client, &build::reader_binding(c, n, creator)).await?;
    let due = token::ensure_token(ctx, c, n, creator, expires_at).await?;
    if let Ok(renew_at) = due {
        sc.applied.put(&uid, marks, Some(renew_at), renew_at);
    }
    Ok(due)
}

/// Creates the grants' RoleBindings in every namespace they cover where the
/// creator holds the role (checked before the first grant there), writes
/// again those changed since, and prunes those the profile no longer covers;
/// namespaces and bindings come from the caches, so a pass where everything
/// is in place makes no request. Returns what is granted and what skipped.
pub(super) async fn grants(
    sc: &SessionContext,
    c: &SessionClaim,
    n: &Names,
    creator: &Creator,
    profile: &SessionProfile,
) -> Result<Granted, Error> {
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
            let role = RoleRef {
                kind: w.kind,
                name: w.role.clone(),
            };
            if let Err(d) =
                authz::check_role_grant(&checker, creator, &role, BindingKind::RoleBinding, &w.namespace).await
            {
                info!(namespace = %w.namespace, role = %w.role, reason = %d.message, "grant skipped");
                skipped.push(format!("{} in {}", w.role, w.namespace));
                continue;
            }
        }
        apply(client, &build::grant_binding(c, n, &w.namespace, w.kind, &w.role)).await?;
        granted.push(format!("{} in {}", w.role, w.namespace));
    }
    granted.sort();
    Ok(Granted { granted, skipped })
}
