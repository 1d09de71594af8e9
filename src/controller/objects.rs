//! Writing and deleting the objects a reconciler makes: server-side apply
//! with Portico's field manager, and deletion that never hits what Portico
//! did not make.

use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject},
};
use serde::Serialize;

use super::{Error, kube_err};

/// Server-side applies `obj` with field manager `portico` in the cluster of
/// `client`; returns the object as the API server answered (status included).
pub async fn apply<K>(client: &Client, obj: &K) -> Result<DynamicObject, Error>
where
    K: Resource<DynamicType = ()> + Serialize + std::fmt::Debug,
{
    crate::install::apply(client, obj).await.map_err(kube_err(format!(
        "apply {} {}",
        K::kind(&()),
        obj.meta().name.as_deref().unwrap_or_default()
    )))
}

/// An API for kind `K` as dynamic objects, in `namespace` or cluster-wide.
fn dynamic_api<K: Resource<DynamicType = ()>>(client: &Client, namespace: Option<&str>) -> Api<DynamicObject> {
    let ar = ApiResource::erase::<K>(&());
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// Background deletion of exactly this object: its UID is a precondition,
/// so a replacement with the same name made in between is never hit.
pub fn delete_exactly<K: Resource>(live: &K) -> DeleteParams {
    DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: live.meta().uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::background()
    }
}

/// Deletes an object if it exists; `Ok(true)` when it was there.
pub async fn delete_if_exists<K>(client: &Client, namespace: Option<&str>, name: &str) -> Result<bool, Error>
where
    K: Resource<DynamicType = ()>,
{
    let api = dynamic_api::<K>(client, namespace);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(kube_err(format!("delete {} {name}", K::kind(&())))(e)),
    }
}

/// Deletes an object only when it carries the label `key` = `value`, the
/// mark of what Portico made for the object at hand, with its UID as a
/// precondition (so a replacement made in between is never hit). Returns
/// `Ok(true)` when it was deleted; an object with the name but without the
/// mark is left alone and logged.
pub async fn delete_labelled<K>(
    client: &Client,
    namespace: Option<&str>,
    name: &str,
    (key, value): (&str, &str),
) -> Result<bool, Error>
where
    K: Resource<DynamicType = ()>,
{
    let api = dynamic_api::<K>(client, namespace);
    let what = || format!("{} {name}", K::kind(&()));
    let Some(obj) = api.get_opt(name).await.map_err(kube_err(format!("read {}", what())))? else {
        return Ok(false);
    };
    if value.is_empty() || obj.labels().get(key).map(String::as_str) != Some(value) {
        tracing::warn!(object = %what(), namespace = ?namespace, label = key, "not deleted: it was not made by Portico for this object");
        return Ok(false);
    }
    match api.delete(name, &delete_exactly(&obj)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(false),
        Err(e) => Err(kube_err(format!("delete {}", what()))(e)),
    }
}
