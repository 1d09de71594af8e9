//! The pods of a Deployment, found through their owners: its resources, the
//! ReplicaSets and Jobs those own, then the pods those own. Read as the user.

use std::collections::BTreeSet;

use k8s_openapi::api::{apps::v1::ReplicaSet, batch::v1::Job, core::v1::Pod};
use kube::{Api, Client, ResourceExt, api::ListParams, core::PartialObjectMeta};

use crate::api::Deployment;

/// Pod lookups at once in this process: each holds a namespace's pod metadata.
static LISTINGS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Kinds whose objects own pods, directly or through a ReplicaSet or Job.
const POD_OWNERS: [&str; 6] = ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob"];

type Owners = BTreeSet<(String, String)>;

fn owned_by(
    refs: &Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
    owners: &Owners,
) -> bool {
    refs.iter()
        .flatten()
        .any(|r| owners.contains(&(r.kind.clone(), r.name.clone())))
}

/// The owners of a Deployment's pods: its resources, plus the ReplicaSets and
/// Jobs they own (Deployment → ReplicaSet, CronJob → Job).
pub fn owners_of(
    resources: &[(String, String)],
    replica_sets: &[PartialObjectMeta<ReplicaSet>],
    jobs: &[PartialObjectMeta<Job>],
) -> Owners {
    let mut owners: Owners = resources.iter().cloned().collect();
    let mut added = vec![];
    for rs in replica_sets {
        if owned_by(&rs.metadata.owner_references, &owners) {
            added.push(("ReplicaSet".to_string(), rs.name_any()));
        }
    }
    for j in jobs {
        if owned_by(&j.metadata.owner_references, &owners) {
            added.push(("Job".to_string(), j.name_any()));
        }
    }
    owners.extend(added);
    owners
}

/// The names of the pods, among `pods`, that `owners` own, sorted.
pub fn pods_of(owners: &Owners, pods: &[PartialObjectMeta<Pod>]) -> Vec<String> {
    let mut names: Vec<String> = pods
        .iter()
        .filter(|p| owned_by(&p.metadata.owner_references, owners))
        .map(|p| p.name_any())
        .collect();
    names.sort();
    names
}

/// The metadata of every K in the namespace, or nothing when not `wanted`.
async fn list_if<K>(wanted: bool, client: &Client, ns: &str) -> Result<Vec<PartialObjectMeta<K>>, kube::Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    if !wanted {
        return Ok(vec![]);
    }
    Ok(Api::<K>::namespaced(client.clone(), ns)
        .list_metadata(&ListParams::default())
        .await?
        .items)
}

/// The Deployment's pods. Lists only what its resources need (ReplicaSets
/// for a Deployment, Jobs for a CronJob) and pod metadata — at once, but for
/// CronJobs without Jobs, which have no pods to list — then reads the pods it
/// owns: cheap in a namespace with thousands of other objects. At most four
/// lookups run at once ([`LISTINGS`]); the others wait.
pub async fn pods_of_deployment(client: &Client, ns: &str, d: &Deployment) -> Result<Vec<Pod>, kube::Error> {
    let resources: Vec<(String, String)> = d
        .status
        .iter()
        .flat_map(|s| &s.resources)
        .filter(|r| r.namespace.as_deref().is_none_or(|n| n == ns))
        .filter(|r| POD_OWNERS.contains(&r.kind.as_str()))
        .map(|r| (r.kind.clone(), r.name.clone()))
        .collect();
    let has = |kind: &str| resources.iter().any(|(k, _)| k == kind);
    if resources.is_empty() {
        return Ok(vec![]);
    }
    // Reading a namespace's pod metadata is the heavy part: a few at once.
    let _turn = LISTINGS.acquire().await.expect("never closed");
    // A workload that has pods now or soon: the three lists at once. Only
    // CronJobs: their Jobs first, and pods only if there are Jobs.
    let direct = resources.iter().any(|(k, _)| k != "CronJob");
    let (replica_sets, jobs, pods) = futures::try_join!(
        list_if::<ReplicaSet>(has("Deployment"), client, ns),
        list_if::<Job>(has("CronJob"), client, ns),
        list_if::<Pod>(direct, client, ns),
    )?;
    let pods = match direct || jobs.is_empty() {
        true => pods,
        false => list_if::<Pod>(true, client, ns).await?,
    };
    let owners = owners_of(&resources, &replica_sets, &jobs);
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let names = pods_of(&owners, &pods);
    let mut pods: Vec<Pod> = futures::future::join_all(names.iter().map(|n| api.get_opt(n)))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    pods.sort_by_key(|p| p.name_any());
    Ok(pods)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta<K: kube::Resource<DynamicType = ()>>(name: &str, owner: (&str, &str)) -> PartialObjectMeta<K> {
        serde_json::from_value(serde_json::json!({
            "apiVersion": K::api_version(&()), "kind": K::kind(&()),
            "metadata": {"name": name, "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner.0, "name": owner.1, "uid": "u"}]},
        }))
        .unwrap()
    }

    #[test]
    fn pods_are_found_through_their_owners() {
        let resources = vec![
            ("Deployment".to_string(), "shop".to_string()),
            ("StatefulSet".to_string(), "db".to_string()),
            ("CronJob".to_string(), "nightly".to_string()),
        ];
        let rs = vec![
            meta("shop-7d9", ("Deployment", "shop")),
            meta("other-1", ("Deployment", "other")),
        ];
        let jobs = vec![meta("nightly-1", ("CronJob", "nightly"))];
        let pods: Vec<PartialObjectMeta<Pod>> = vec![
            meta("shop-7d9-abc", ("ReplicaSet", "shop-7d9")),
            meta("db-0", ("StatefulSet", "db")),
            meta("nightly-1-x", ("Job", "nightly-1")),
            meta("other-1-y", ("ReplicaSet", "other-1")),
        ];
        let owners = owners_of(&resources, &rs, &jobs);
        assert_eq!(pods_of(&owners, &pods), ["db-0", "nightly-1-x", "shop-7d9-abc"]);
    }
}
