//! Deletion: every recorded object, every object the template renders now,
//! and every object of those kinds carrying the Deployment's UID label, as
//! whoever last applied them; the finalizer waits until they are gone. Only
//! marked objects are deleted. (An object is recorded by the status write
//! after its apply: one applied by a pass that ended before that write is
//! found by its name or its mark.)

use std::collections::BTreeSet;

use kube::{Client, ResourceExt, runtime::controller::Action};

use super::{
    Context, DeploymentContext, Error, Halt, apply, build,
    dereference::{applier_of, for_deletion},
    inventory,
};
use crate::{
    api::{
        Deployment,
        deployment::{DeploymentStatus, Health, ResourceStatus},
    },
    catalog::{self, ApplyAs},
    creator::Creator,
};

/// Everything carrying the Deployment's UID label in the kinds of `known`
/// (objects of an earlier render whose record was lost), beside the record:
/// each kind in the Deployment's namespace and in every other namespace
/// `known` names for it (cluster-scoped kinds cluster-wide); the lists are
/// made at once.
async fn marked(ctx: &Context, client: &Client, d: &Deployment, known: &[ResourceStatus]) -> Vec<ResourceStatus> {
    let own = d.namespace().unwrap_or_default();
    let places: BTreeSet<(String, String, String)> = known
        .iter()
        .flat_map(|r| {
            let other = r.namespace.clone().filter(|n| *n != own);
            [Some(own.clone()), other]
                .into_iter()
                .flatten()
                .map(|ns| (r.api_version.clone(), r.kind.clone(), ns))
        })
        .collect();
    let selector = format!("{}={}", inventory::UID_LABEL, d.uid().unwrap_or_default());
    let lists = places.into_iter().map(|(api_version, kind, ns)| {
        let (selector, own) = (&selector, &own);
        async move {
            let (ar, namespaced) = apply::resolve(ctx, &apply::gvk_of(&api_version, &kind)).await.ok()?;
            // A cluster-scoped kind is listed once, from its entry for the own namespace.
            if !namespaced && ns != *own {
                return None;
            }
            let api = apply::api_for(client, &ar, namespaced.then_some(ns.as_str()));
            match api
                .list_metadata(&kube::api::ListParams::default().labels(selector))
                .await
            {
                Ok(list) => Some(
                    list.items
                        .into_iter()
                        .map(|o| ResourceStatus {
                            api_version: api_version.clone(),
                            kind: kind.clone(),
                            namespace: o.metadata.namespace.clone(),
                            name: o.metadata.name.clone().unwrap_or_default(),
                            health: Health::Unknown,
                            message: None,
                            applied_generation: None,
                            applied_resource_version: None,
                        })
                        .collect::<Vec<_>>(),
                ),
                Err(e) => {
                    tracing::warn!(%kind, error = %e, "cannot search for marked objects");
                    None
                }
            }
        }
    });
    futures::future::join_all(lists)
        .await
        .into_iter()
        .flatten()
        .flatten()
        .collect()
}

/// What the template renders for the Deployment now; nothing when it no
/// longer renders (its template gone, its parameters no longer valid). An
/// error reading the catalog is retried, not taken for "nothing".
async fn rendered(d: &Deployment, dc: &DeploymentContext) -> Result<Vec<ResourceStatus>, Error> {
    let ctx = &*dc.ctx;
    let inputs = match for_deletion(d, ctx, &dc.caches).await {
        Ok(inputs) => inputs,
        Err(Halt::Retry(e)) => return Err(e),
        Err(Halt::Stall(..)) => return Ok(vec![]),
    };
    let identity = build::Identity::of(d, ctx);
    match build::prepare(d, ctx, &inputs, &identity.with(&inputs.values)).await {
        Ok(prepared) => Ok(prepared.into_iter().map(|p| p.planned).collect()),
        Err(Halt::Retry(e)) => Err(e),
        Err(Halt::Stall(..)) => Ok(vec![]),
    }
}

/// The finalizer's cleanup.
pub async fn cleanup(d: &Deployment, dc: &DeploymentContext) -> Result<Action, Error> {
    let ctx = &*dc.ctx;
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
            super::applier(ctx, &applier_of(d, &creator), apply_as)?
        }
        Err(_) => return Ok(Action::await_change()), // it never applied anything
    };
    let mut targets = base.resources.clone();
    let mut known: BTreeSet<inventory::Key> = targets.iter().map(inventory::key).collect();
    for r in rendered(d, dc).await? {
        if known.insert(inventory::key(&r)) {
            targets.push(r);
        }
    }
    for r in marked(ctx, &client, d, &targets).await {
        if known.insert(inventory::key(&r)) {
            targets.push(r);
        }
    }
    // Every object at once (at most 16); each is read, checked for the mark and deleted.
    let mut deleted = Vec::new();
    for part in targets.chunks(16) {
        deleted.extend(futures::future::join_all(part.iter().map(|r| apply::delete(ctx, &client, d, r))).await);
    }
    let mut remaining = vec![];
    for (r, still_there) in targets.iter().zip(deleted) {
        if still_there? {
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
    let _ = crate::controller::set_status(ctx, d, d.status.as_ref(), &status).await;
    // Their deletions are under way; the last one's watch event, or the
    // retry, starts the next pass.
    Err(Error::Waiting(format!("{} objects still exist", remaining.len())))
}
