//! The reconcilers, one a kind, and what they share: the context, the error
//! type with stable metric labels, events, and server-side apply helpers.

pub mod applied;
pub mod backoff;
pub mod deployment;
pub mod session;
pub mod terminal;
pub mod trigger;
pub mod written;

use std::sync::Arc;

use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams},
    runtime::events::{Event, EventType, Recorder, Reporter},
};
use serde::Serialize;

use crate::{clusters::Clusters, config::OperatorConfig, install::FIELD_MANAGER, metrics::Metrics};

/// Finalizer on every Terminal and SessionClaim.
pub use crate::api::keys::FINALIZER;

/// What every reconciler shares.
pub struct Context {
    /// This cluster, as the operator.
    pub client: Client,
    /// The operator's client configuration, for clients that impersonate a creator.
    pub base_config: kube::Config,
    /// A secret seed for templates' `password()`, per operator installation.
    pub seed: Vec<u8>,
    /// Discovered kinds: API resource and whether namespaced.
    pub kinds: std::sync::Mutex<std::collections::HashMap<kube::api::GroupVersionKind, (ApiResource, bool)>>,
    /// Clients impersonating creators, by user and groups.
    users: std::sync::Mutex<std::collections::HashMap<String, Client>>,
    /// This cluster and the remote ones objects name.
    pub clusters: Arc<Clusters>,
    /// Operator configuration.
    pub config: OperatorConfig,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Reconcile failures in a row, per object (`kind/namespace/name`), for the retry delay.
    failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// The status each object was last given, and from which version.
    pub written: written::Written,
}

impl Context {
    /// A context for the operator's identity `reporter`.
    pub fn new(
        base_config: kube::Config,
        seed: Vec<u8>,
        clusters: Arc<Clusters>,
        config: OperatorConfig,
        metrics: Arc<Metrics>,
        reporter: &str,
    ) -> Self {
        let client = clusters.local().client.clone();
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "portico".into(),
                instance: Some(reporter.into()),
            },
        );
        Context {
            client,
            base_config,
            seed,
            kinds: Default::default(),
            users: Default::default(),
            clusters,
            config,
            metrics,
            recorder,
            failures: Default::default(),
            written: Default::default(),
        }
    }

    /// A client acting as `creator` (Kubernetes impersonation), so the API
    /// server applies the creator's RBAC.
    pub fn client_as(&self, creator: &crate::creator::Creator) -> Result<Client, Error> {
        let key = format!("{}\u{0}{}", creator.user, creator.groups.join("\u{0}"));
        if let Some(c) = self.users.lock().unwrap().get(&key) {
            return Ok(c.clone());
        }
        let mut config = self.base_config.clone();
        config.auth_info.impersonate = Some(creator.user.clone());
        config.auth_info.impersonate_groups = Some(creator.groups.clone());
        let client =
            Client::try_from(config).map_err(kube_err(format!("build a client acting as {}", creator.user)))?;
        self.users.lock().unwrap().insert(key, client.clone());
        Ok(client)
    }

    /// The seed of one Deployment's `password()` values.
    pub fn render_seed(&self, uid: &str) -> Vec<u8> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(&self.seed);
        h.update(uid.as_bytes());
        h.finalize().to_vec()
    }

    /// Publishes an Event on `obj`; failures are logged, never fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "cannot publish event");
        }
    }
}

/// Ends an expired object: an Event, the expiry metric, and its deletion
/// (its finalizer then removes what was made for it). The caller has
/// recorded `endReason` in its status first.
pub async fn end<K>(ctx: &Context, obj: &K, kind: &str, reason: crate::api::common::EndReason) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let why = reason.describe();
    ctx.event(
        obj,
        EventType::Normal,
        &format!("{reason:?}"),
        "Expire",
        format!("deleting the {kind}: {why}"),
    )
    .await;
    ctx.metrics.expired(kind, &format!("{reason:?}"));
    tracing::info!(reason = ?reason, "expired");
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    match api.delete(&obj.name_any(), &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(kube_err(format!("delete the expired {kind}"))(e)),
    }
}

pub use crate::creator::creator_name;

/// A reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("{action}: {source}")]
    Kube {
        /// What was being done.
        action: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
    /// A referenced cluster cannot be reached.
    #[error(transparent)]
    Cluster(#[from] crate::clusters::ClusterError),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// A TokenRequest failed or came back empty.
    #[error(transparent)]
    Token(#[from] crate::tokens::TokenError),
    /// Cleanup could not remove everything yet.
    #[error("cleanup incomplete: {0}")]
    Cleanup(String),
    /// The template catalog could not be read.
    #[error("catalog: {0}")]
    Catalog(String),
    /// A kind could not be found through discovery.
    #[error("discovery: {0}")]
    Discovery(String),
    /// A watch cache this pass reads closed before it filled (the operator
    /// is stopping).
    #[error("the cache of {0} closed before it filled")]
    Cache(&'static str),
}

impl Error {
    /// A stable label for the error metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::Cluster(_) => "cluster",
            Error::Finalizer(_) => "finalizer",
            Error::Token(_) => "token",
            Error::Cleanup(_) => "cleanup",
            Error::Catalog(_) => "catalog",
            Error::Discovery(_) => "discovery",
            Error::Cache(_) => "cache",
        }
    }
}

/// Wraps a kube error with what was being done.
pub fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Kube { action, source }
}

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

/// The delay before the `failures`-th retry of one object (pure): 1 s,
/// doubling, at most five minutes.
pub fn retry_delay(failures: u32) -> std::time::Duration {
    let secs = 1u64.checked_shl(failures.saturating_sub(1)).unwrap_or(u64::MAX);
    std::time::Duration::from_secs(secs.min(300))
}

fn failure_key<K: Resource>(kind: &str, obj: &K) -> String {
    let m = obj.meta();
    format!(
        "{kind}/{}/{}",
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default()
    )
}

/// What every controller does when a reconcile fails: count it by reason,
/// log it with the object, publish it as a Warning Event on the object (so
/// `kubectl describe` shows it), and try again after a per-object delay that
/// grows with each failure in a row (see [`retry_delay`]).
pub fn retry_after_error<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    kind: &str,
    obj: &K,
    err: &Error,
) -> kube::runtime::controller::Action {
    ctx.metrics.error(kind, err.metric_label());
    let key = failure_key(kind, obj);
    let failures = {
        let mut f = ctx.failures.lock().unwrap();
        let n = f.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = retry_delay(failures);
    tracing::warn!(kind, object = %key, error = %err, failures, retry_in = ?delay, "reconcile failed");
    let recorder = ctx.recorder.clone();
    let reference = obj.object_ref(&());
    let event = Event {
        type_: EventType::Warning,
        reason: "ReconcileFailed".into(),
        note: Some(format!("{err} (retrying in {}s)", delay.as_secs())),
        action: "Reconcile".into(),
        secondary: None,
    };
    tokio::spawn(async move {
        if let Err(e) = recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, "cannot publish event");
        }
    });
    kube::runtime::controller::Action::requeue(delay)
}

/// A reconcile of `obj` succeeded: its next failure starts the delays over,
/// and once it was being deleted (its cleanup is done) its last status is
/// forgotten.
pub fn reconciled<K: Resource>(ctx: &Context, kind: &str, obj: &K) {
    let key = failure_key(kind, obj);
    {
        let mut f = ctx.failures.lock().unwrap();
        if !f.is_empty() {
            f.remove(&key);
        }
    }
    if obj.meta().deletion_timestamp.is_some() {
        ctx.written.forget(obj.meta().uid.as_deref().unwrap_or_default());
    }
}

/// The reconcile error inside a finalizer error.
pub fn from_finalizer(e: kube::runtime::finalizer::Error<Error>) -> Error {
    match e {
        kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    }
}

/// Writes `status` unless it equals the object's current one, or a pass
/// from this same version of the object wrote it already (so an unchanged
/// state costs no write and produces no watch event).
pub async fn set_status<K, S>(ctx: &Context, obj: &K, current: Option<&S>, status: &S) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    S: PartialEq + Serialize,
{
    if current == Some(status) {
        return Ok(());
    }
    let value = serde_json::to_value(status).expect("status serializes");
    let (uid, rv) = (
        obj.meta().uid.as_deref().unwrap_or_default(),
        obj.meta().resource_version.as_deref().unwrap_or_default(),
    );
    let digest = written::digest(&value);
    if ctx.written.already(uid, rv, digest) {
        return Ok(());
    }
    apply_status(&ctx.client, obj, value).await?;
    ctx.written.wrote(uid, rv, digest);
    Ok(())
}

/// Patches `status` with server-side apply.
pub async fn apply_status<K>(client: &Client, obj: &K, status: serde_json::Value) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(patch),
    )
    .await
    .map(|_| ())
    .map_err(kube_err(format!(
        "update status of {} {}",
        K::kind(&()),
        obj.name_any()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_of_one_object_back_off_from_one_second_to_five_minutes() {
        let delays: Vec<u64> = (1..=10).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(retry_delay(200).as_secs(), 300, "no overflow");
        assert_eq!(Error::Catalog("x".into()).metric_label(), "catalog");
        assert_eq!(Error::Discovery("x".into()).metric_label(), "discovery");
    }
}
