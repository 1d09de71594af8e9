//! Step 3, apply: apply each object with server-side apply and the
//! applier's rights, and prune what the render no longer holds; a suspended
//! Deployment only reads what exists. An object the Deployment has not
//! recorded is applied create-only: if anything of that name exists, the
//! apply changes nothing, and the object is taken only when it carries the
//! Deployment's mark (an earlier pass whose record was lost). What was
//! applied is recorded by the status write that follows the pass; deletion
//! also finds objects by their mark, so a crash between the two leaves
//! nothing it would miss.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt};
use kube::{
    Api, Client, ResourceExt,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams},
    discovery::Scope,
};

use super::{Context, Error, Halt, Reason, build::Prepared, dereference::Inputs, health, inventory, report};
use crate::controller::event::Happened;
use crate::{
    api::{
        Deployment,
        deployment::{DeploymentStatus, Health, Operation, OperationResult, ResourceStatus},
    },
    catalog::ApplyAs,
    controller::kube_err,
    install::FIELD_MANAGER,
};

/// What the objects look like after this step.
pub struct Applied {
    /// The inventory, with each object's health.
    pub inventory: Vec<ResourceStatus>,
    /// The live objects, keyed `Kind/name`, for the outputs.
    pub live: BTreeMap<String, serde_json::Value>,
}

/// The API resource and scope of a kind, from discovery (cached).
pub async fn resolve(ctx: &Context, gvk: &GroupVersionKind) -> Result<(ApiResource, bool), String> {
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

/// An API for dynamic objects of `ar`, in `namespace` or cluster-wide.
pub fn api_for(client: &Client, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

/// The group, version and kind of an `apiVersion` and `kind`.
pub fn gvk_of(api_version: &str, kind: &str) -> GroupVersionKind {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, kind)
}

/// Applies and prunes; `base.resources` becomes the inventory to record:
/// what was recorded and what this render holds. On a refusal it holds the
/// health of what was applied, for the stall's status write.
pub async fn apply(
    d: &Deployment,
    ctx: &Context,
    inputs: &Inputs,
    client: &Client,
    prepared: Vec<Prepared>,
    base: &mut DeploymentStatus,
) -> Result<Applied, Halt> {
    let (uid, ns, name) = (
        d.uid().unwrap_or_default(),
        d.namespace().unwrap_or_default(),
        d.name_any(),
    );
    let owner = Owner {
        uid: &uid,
        namespace: &ns,
        name: &name,
    };
    let seen = inventory::seen(&base.resources);
    let planned: Vec<ResourceStatus> = prepared.iter().map(|p| p.planned.clone()).collect();
    if let Some(next) = inventory::plan(&base.resources, &planned) {
        base.resources = next;
    }
    // In waves, in the order a kind may need another (namespaces before
    // what lives in them, a ServiceAccount before its pods, a Role before
    // its binding); within a wave at once (at most [`AT_ONCE`]). A wave is
    // applied whole (a refusal does not cut the others short, so what is
    // applied does not depend on timing); the first refusal in render
    // order is reported, and no later wave is applied.
    let mut waves: BTreeMap<usize, Vec<(usize, Prepared)>> = BTreeMap::new();
    for (i, p) in prepared.into_iter().enumerate() {
        waves.entry(wave_of(&p.types.kind)).or_default().push((i, p));
    }
    let mut done = Vec::new();
    for (_, mut wave) in waves {
        let mut results = Vec::new();
        while !wave.is_empty() {
            let part: Vec<_> = wave.drain(..wave.len().min(AT_ONCE)).collect();
            let applied = futures::future::join_all(part.into_iter().map(|(i, p)| {
                let create_only = !seen.contains(&inventory::key(&p.planned));
                async move { (i, apply_one(client, inputs, p, create_only.then_some(owner)).await) }
            }));
            results.extend(applied.await);
        }
        results.sort_by_key(|(i, _)| *i);
        let mut refused = None;
        for (i, result) in results {
            match result {
                Ok(one) => done.push((i, one)),
                Err(halt) => {
                    refused.get_or_insert(halt);
                }
            }
        }
        if let Some(halt) = refused {
            record_health(&mut base.resources, done.iter().map(|(_, (status, _, _))| status));
            return Err(halt);
        }
    }
    done.sort_by_key(|(i, _)| *i);
    record_health(&mut base.resources, done.iter().map(|(_, (status, _, _))| status));
    let mut applied = Applied {
        inventory: vec![],
        live: BTreeMap::new(),
    };
    for (_, (status, key, value)) in done {
        applied.live.insert(key, value);
        applied.inventory.push(status);
    }
    prune(d, ctx, client, &applied.inventory, base).await?;
    Ok(applied)
}

/// The Deployment whose objects are applied: its UID, namespace and name.
#[derive(Clone, Copy)]
struct Owner<'a> {
    uid: &'a str,
    namespace: &'a str,
    name: &'a str,
}

/// Sets the health of the `applied` objects in the inventory `recorded`.
fn record_health<'a>(recorded: &mut [ResourceStatus], applied: impl Iterator<Item = &'a ResourceStatus>) {
    let applied: BTreeMap<inventory::Key, &ResourceStatus> = applied.map(|r| (inventory::key(r), r)).collect();
    for r in recorded.iter_mut() {
        if let Some(a) = applied.get(&inventory::key(r)) {
            r.health = a.health;
            r.message.clone_from(&a.message);
        }
    }
}

/// Requests one pass makes at once.
const AT_ONCE: usize = 16;

/// The wave a kind is applied in, Helm's install order in four steps:
/// namespaces and definitions; what others refer to (accounts, settings,
/// storage, roles, policies); bindings; everything else.
fn wave_of(kind: &str) -> usize {
    match kind {
        "Namespace" | "CustomResourceDefinition" => 0,
        "NetworkPolicy"
        | "ResourceQuota"
        | "LimitRange"
        | "PodDisruptionBudget"
        | "ServiceAccount"
        | "Secret"
        | "ConfigMap"
        | "StorageClass"
        | "PersistentVolume"
        | "PersistentVolumeClaim"
        | "ClusterRole"
        | "Role"
        | "PriorityClass" => 1,
        "ClusterRoleBinding" | "RoleBinding" => 2,
        _ => 3,
    }
}

/// A `resourceVersion` no stored object has: an apply carrying it creates
/// the object, and is refused (409) when anything of that name exists.
const CREATE_ONLY: &str = "1";

/// The `resourceVersion` of the existing object of `p`'s name, when it may
/// be applied to: it carries the mark of `owner` (applied by an earlier
/// pass whose record was lost). Another's object, or one the applier may
/// not read, stalls the Deployment and is left as it is; one gone again
/// since `conflict` is retried.
async fn take_existing(
    client: &Client,
    p: &Prepared,
    owner: Owner<'_>,
    conflict: kube::Error,
) -> Result<Option<String>, Halt> {
    let obj_name = p.obj.name_any();
    let api = api_for(client, &p.ar, p.obj.metadata.namespace.as_deref());
    let existing = match api.get_opt(&obj_name).await {
        Err(kube::Error::Api(e)) if e.code == 403 => None,
        Ok(None) => {
            let action = format!("create {} {obj_name}: it existed, and was gone when read", p.types.kind);
            return Err(kube_err(action)(conflict).into());
        }
        other => other.map_err(kube_err(format!("read {} {obj_name}", p.types.kind)))?,
    };
    match existing {
        Some(e) if inventory::owned(&e, owner.uid, false, owner.namespace, owner.name) => {
            Ok(e.metadata.resource_version)
        }
        _ => {
            let msg = inventory::not_owned_message(&p.types.kind, p.obj.metadata.namespace.as_deref(), &obj_name);
            Err(Halt::stall(Reason::ObjectNotOwned, msg))
        }
    }
}

/// Server-side applies one object as the applier, create-only when `new`
/// names its owner (an object not recorded yet); its inventory entry with
/// its health, its `Kind/name` and the live object.
async fn apply_one(
    client: &Client,
    inputs: &Inputs,
    p: Prepared,
    new: Option<Owner<'_>>,
) -> Result<(ResourceStatus, String, serde_json::Value), Halt> {
    let obj_name = p.obj.name_any();
    let api = api_for(client, &p.ar, p.obj.metadata.namespace.as_deref());
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let refused = |s: Box<kube::core::Status>| {
        let who = match inputs.entry.template.apply_as {
            ApplyAs::Creator => format!("as {}", inputs.applied_by.user),
            ApplyAs::Operator => "as the operator".to_string(),
        };
        let msg = format!(
            "applying {} {} {who} was refused: {}",
            p.types.kind, obj_name, s.message
        );
        Halt::stall(Reason::ApplyRefused, msg)
    };
    // A copy only for the create-only apply; a recorded object is applied as rendered.
    let create_only = new.map(|_| {
        let mut obj = p.obj.clone();
        obj.metadata.resource_version = Some(CREATE_ONLY.into());
        obj
    });
    let first = create_only.as_ref().unwrap_or(&p.obj);
    let live = match (api.patch(&obj_name, &pp, &Patch::Apply(first)).await, new) {
        (Ok(a), _) => a,
        (Err(kube::Error::Api(s)), Some(owner)) if s.code == 409 => {
            // Applied only to the object that was read, not to one made in between.
            let mut again = p.obj.clone();
            again.metadata.resource_version = take_existing(client, &p, owner, kube::Error::Api(s)).await?;
            match api.patch(&obj_name, &pp, &Patch::Apply(&again)).await {
                Ok(a) => a,
                Err(kube::Error::Api(s)) if s.code != 409 => return Err(refused(s)),
                Err(e) => return Err(kube_err(format!("apply {} {obj_name}", p.types.kind))(e).into()),
            }
        }
        (Err(kube::Error::Api(s)), _) => return Err(refused(s)),
        (Err(e), _) => return Err(kube_err(format!("apply {} {obj_name}", p.types.kind))(e).into()),
    };
    let mut live = live;
    // Kept for outputs and health (and, for kinds without a watch, until
    // the next full pass): not the apply's bookkeeping.
    crate::controller::lean::lean(&mut live);
    let value = serde_json::to_value(&live).unwrap_or_default();
    let (health, message) = health::health(&p.types.kind, &value);
    // A generation when the kind has one (its status may change the
    // resourceVersion without any spec change); the resourceVersion else.
    let applied_resource_version = match live.metadata.generation {
        Some(_) => None,
        None => live.metadata.resource_version.clone(),
    };
    let status = ResourceStatus {
        health,
        message: Some(message),
        applied_generation: live.metadata.generation,
        applied_resource_version,
        ..p.planned
    };
    Ok((status, format!("{}/{}", p.types.kind, obj_name), value))
}

/// Deletes what the new render no longer holds.
async fn prune(
    d: &Deployment,
    ctx: &Context,
    client: &Client,
    inventory: &[ResourceStatus],
    base: &mut DeploymentStatus,
) -> Result<(), Error> {
    let keep: BTreeSet<_> = inventory.iter().map(inventory::key).collect();
    let gone: Vec<ResourceStatus> = base
        .resources
        .iter()
        .filter(|r| !keep.contains(&inventory::key(r)))
        .cloned()
        .collect();
    for r in &gone {
        delete(ctx, client, d, r).await?;
    }
    if !gone.is_empty() {
        let names: Vec<String> = gone.iter().map(|r| format!("{} {}", r.kind, r.name)).collect();
        let msg = format!("deleted {}", names.join(", "));
        report::record(
            &mut base.history,
            Operation::Prune,
            OperationResult::Succeeded,
            msg.clone(),
        );
        ctx.event(d, Happened::Pruned, msg).await;
    }
    Ok(())
}

/// A suspended Deployment: only the health of what exists and is `d`'s;
/// an object of a recorded name that is not `d`'s counts as not found.
pub async fn observe(
    ctx: &Context,
    client: &Client,
    d: &Deployment,
    recorded: &[ResourceStatus],
) -> Result<Applied, Halt> {
    let (uid, ns, name) = (
        d.uid().unwrap_or_default(),
        d.namespace().unwrap_or_default(),
        d.name_any(),
    );
    let seen = inventory::seen(recorded);
    let owner = Owner {
        uid: &uid,
        namespace: &ns,
        name: &name,
    };
    // One read per object, up to eight at once, in order.
    let reads: Vec<_> = recorded
        .iter()
        .map(|r| read_owned(ctx, client, r, owner, &seen))
        .collect();
    let read: Vec<Option<serde_json::Value>> = futures::stream::iter(reads).buffered(8).try_collect().await?;
    let mut applied = Applied {
        inventory: vec![],
        live: BTreeMap::new(),
    };
    for (r, value) in recorded.iter().zip(read) {
        let (h, message) = value
            .as_ref()
            .map_or((Health::NotFound, "not found".into()), |v| health::health(&r.kind, v));
        if let Some(v) = value {
            applied.live.insert(format!("{}/{}", r.kind, r.name), v);
        }
        applied.inventory.push(ResourceStatus {
            health: h,
            message: Some(message),
            ..r.clone()
        });
    }
    Ok(applied)
}

/// One recorded object as it is now, if it is `owner`'s (lean, as JSON);
/// `seen` are the objects its inventory records as applied.
async fn read_owned(
    ctx: &Context,
    client: &Client,
    r: &ResourceStatus,
    owner: Owner<'_>,
    seen: &BTreeSet<inventory::Key>,
) -> Result<Option<serde_json::Value>, Error> {
    let (ar, _) = resolve(ctx, &gvk_of(&r.api_version, &r.kind))
        .await
        .map_err(Error::Discovery)?;
    let obj = api_for(client, &ar, r.namespace.as_deref())
        .get_opt(&r.name)
        .await
        .map_err(kube_err("read object"))?
        .filter(|o| {
            let recorded = seen.contains(&inventory::key(r));
            inventory::owned(o, owner.uid, recorded, owner.namespace, owner.name)
        });
    Ok(obj.map(|mut o| {
        crate::controller::lean::lean(&mut o);
        serde_json::to_value(o).unwrap_or_default()
    }))
}

/// Deletes one object the Deployment made; `Ok(true)` while it still exists.
/// An object without the Deployment's mark is left alone.
pub async fn delete(ctx: &Context, client: &Client, d: &Deployment, r: &ResourceStatus) -> Result<bool, Error> {
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
    match api.delete(&r.name, &crate::controller::delete_exactly(&live)).await {
        Ok(either) => Ok(either.is_left()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(false),
        Err(e) => Err(kube_err(format!("delete {} {}", r.kind, r.name))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::{record_health, wave_of};
    use crate::api::deployment::{Health, ResourceStatus};

    fn entry(name: &str, health: Health, message: &str) -> ResourceStatus {
        ResourceStatus {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("team-a".into()),
            name: name.into(),
            health,
            message: Some(message.into()),
            applied_generation: None,
            applied_resource_version: None,
        }
    }

    #[test]
    fn a_refused_pass_records_what_it_applied_as_applied_and_the_rest_as_planned() {
        let mut recorded = vec![
            entry("kept", Health::Current, "as before"),
            entry("first", Health::NotFound, ""),
            entry("refused", Health::NotFound, ""),
        ];
        let applied = [entry("first", Health::Current, "applied")];
        record_health(&mut recorded, applied.iter());
        let got: Vec<(&str, Health)> = recorded.iter().map(|r| (r.name.as_str(), r.health)).collect();
        assert_eq!(
            got,
            [
                ("kept", Health::Current),
                ("first", Health::Current),
                ("refused", Health::NotFound)
            ]
        );
        assert_eq!(recorded[1].message.as_deref(), Some("applied"));
    }

    #[test]
    fn what_others_need_is_applied_in_an_earlier_wave() {
        let order = |a: &str, b: &str| wave_of(a) < wave_of(b);
        assert!(order("Namespace", "ConfigMap"));
        assert!(order("CustomResourceDefinition", "Role"));
        assert!(order("ServiceAccount", "Deployment"));
        assert!(order("ServiceAccount", "Pod"));
        assert!(order("Role", "RoleBinding"));
        assert!(order("ClusterRole", "ClusterRoleBinding"));
        assert!(order("RoleBinding", "Deployment"));
        assert!(order("PersistentVolumeClaim", "StatefulSet"));
        assert_eq!(wave_of("Service"), wave_of("Deployment"));
        assert_eq!(wave_of("SomeCustomKind"), wave_of("Deployment"));
    }
}
