//! Installs Portico's CRDs and aggregated ClusterRoles into a cluster with
//! server-side apply, and waits until the CRDs are Established.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client, CustomResourceExt, ResourceExt,
    api::{ApiResource, DynamicObject, Patch, PatchParams},
    runtime::{conditions, wait::await_condition},
};

use crate::api::{Deployment, SessionClaim, Terminal, rbac};

/// Field manager for everything Portico writes.
pub const FIELD_MANAGER: &str = "portico";

/// Installing failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The API server refused an object.
    #[error("apply {kind} {name}: {source}")]
    Apply {
        /// Kind of the object.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The refusal.
        #[source]
        source: kube::Error,
    },
    /// The built-in roles did not pick up Portico's rules (is the clusterrole-aggregation controller running?).
    #[error(
        "ClusterRole {0} did not aggregate Portico's rules within 60s; is kube-controller-manager's clusterrole-aggregation controller running?"
    )]
    NotAggregated(String),
    /// A CRD did not become Established (or its schema was not published) in time.
    #[error("{0} did not become available within 60s")]
    NotEstablished(String),
}

/// Applies the three CRDs and the aggregated ClusterRoles, then waits until
/// the CRDs are Established.
pub async fn install(client: &Client) -> Result<(), InstallError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let all = [Terminal::crd(), Deployment::crd(), SessionClaim::crd()];
    for crd in &all {
        apply(client, crd).await.map_err(|source| InstallError::Apply {
            kind: "CustomResourceDefinition",
            name: crd.name_any(),
            source,
        })?;
    }
    for role in rbac::aggregated_cluster_roles() {
        apply(client, &role).await.map_err(|source| InstallError::Apply {
            kind: "ClusterRole",
            name: role.name_any(),
            source,
        })?;
    }
    for crd in &all {
        let name = crd.name_any();
        let established = await_condition(crds.clone(), &name, conditions::is_crd_established());
        match tokio::time::timeout(Duration::from_secs(60), established).await {
            Ok(Ok(_)) => {}
            _ => return Err(InstallError::NotEstablished(format!("CustomResourceDefinition {name}"))),
        }
    }
    wait_openapi(client).await
}

/// Waits until the API server publishes the kinds' OpenAPI schemas, which
/// `kubectl explain` and server-side apply read (bounded: 60s).
async fn wait_openapi(client: &Client) -> Result<(), InstallError> {
    let path = format!("/openapi/v3/apis/{}/{}", crate::api::GROUP, crate::api::VERSION);
    let published = async {
        loop {
            let req = http::Request::get(path.as_str()).body(Vec::new()).expect("request");
            if let Ok(text) = client.request_text(req).await
                && ["Terminal", "Deployment", "SessionClaim"]
                    .iter()
                    .all(|k| text.contains(&format!("\"kind\":\"{k}\"")))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), published)
        .await
        .map_err(|_| InstallError::NotEstablished(format!("OpenAPI schema at {path}")))
}

/// Waits until kube-controller-manager has aggregated Portico's rules into
/// the built-in `view`, `edit` and `admin` ClusterRoles (bounded: 60s).
pub async fn wait_aggregated(client: &Client) -> Result<(), InstallError> {
    use k8s_openapi::api::rbac::v1::ClusterRole;
    let roles: Api<ClusterRole> = Api::all(client.clone());
    for name in ["view", "edit", "admin"] {
        let has_portico = |r: Option<&ClusterRole>| {
            r.and_then(|r| r.rules.as_ref()).is_some_and(|rules| {
                rules
                    .iter()
                    .any(|x| x.api_groups.iter().flatten().any(|g| g == crate::api::GROUP))
            })
        };
        match tokio::time::timeout(
            Duration::from_secs(60),
            await_condition(roles.clone(), name, has_portico),
        )
        .await
        {
            Ok(Ok(_)) => {}
            _ => return Err(InstallError::NotAggregated(name.to_string())),
        }
    }
    Ok(())
}

/// Server-side applies `obj` (namespaced or not, by its metadata) as `portico`.
pub async fn apply<K>(client: &Client, obj: &K) -> Result<DynamicObject, kube::Error>
where
    K: kube::Resource<DynamicType = ()> + serde::Serialize + std::fmt::Debug,
{
    let ar = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = match obj.meta().namespace.as_deref() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let name = obj.meta().name.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(obj))
        .await
}
