//! The reconcilers, one a kind, and what they share: the context and the
//! error type with stable metric labels here; writing and deleting objects
//! ([`objects`]), the status and end of an object ([`report`]), and what
//! follows a failed or successful pass ([`retry`]).

pub mod applied;
pub mod backoff;
pub mod deployment;
pub mod event;
pub mod lean;
mod objects;
pub mod released;
pub mod report;
mod retry;
pub mod session;
pub mod terminal;
pub mod trigger;
pub mod usage;
pub mod written;

pub use objects::{apply, delete_exactly, delete_if_exists, delete_labelled};
pub use report::{set_status, write_status};
pub use retry::{nothing_left, reconciled, retry_after_error, retry_delay, settle};

use std::sync::Arc;

use kube::{
    Client, Resource,
    api::ApiResource,
    runtime::events::{Event, Recorder, Reporter},
};

use crate::{clusters::Clusters, config::OperatorConfig, metrics::Metrics};

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
    /// The objects whose finalizer this operator removed.
    pub released: released::Released,
}

impl Context {
    /// How long what a pass applied holds before the next applies it again (`controller.resync`).
    pub fn resync(&self) -> std::time::Duration {
        self.config.controller.resync.into()
    }

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
            released: Default::default(),
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
    pub async fn event<K: Resource<DynamicType = ()>>(&self, obj: &K, what: event::Happened, note: String) {
        let ev = Event {
            type_: what.type_(),
            reason: what.reason(),
            note: Some(note),
            action: what.action().into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason = %ev.reason, "cannot publish event");
        }
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
    /// What the pass waits for is under way (a child's deletion the API
    /// server accepted): the pass runs again, without it being a failure.
    #[error("waiting: {0}")]
    Waiting(String),
    /// The object changed after the pass read it, before its status was
    /// written: the pass runs again from the latest version.
    #[error("{kind} {name} changed while it was reconciled; reconciling its latest version")]
    Superseded {
        /// The object's kind.
        kind: String,
        /// Its name.
        name: String,
    },
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
            Error::Superseded { .. } => "superseded",
            Error::Waiting(_) => "waiting",
        }
    }
}

/// How many of `objects` exist and are not being deleted, for
/// `portico_active_objects` (pure).
pub fn active<K: Resource>(objects: &[Arc<K>]) -> i64 {
    objects.iter().filter(|o| o.meta().deletion_timestamp.is_none()).count() as i64
}

/// Wraps a kube error with what was being done.
pub fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Kube { action, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_being_deleted_are_not_active() {
        let d = |deleting: bool| -> Arc<crate::api::Deployment> {
            let mut d: crate::api::Deployment = serde_json::from_value(serde_json::json!({
                "apiVersion": "portico.dev/v1alpha1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"template": {"name": "webapp"}},
            }))
            .unwrap();
            if deleting {
                d.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ));
            }
            Arc::new(d)
        };
        assert_eq!(active::<crate::api::Deployment>(&[]), 0);
        assert_eq!(active(&[d(false), d(true), d(false)]), 2);
    }

    #[test]
    fn catalog_and_discovery_failures_have_their_own_labels() {
        assert_eq!(Error::Catalog("x".into()).metric_label(), "catalog");
        assert_eq!(Error::Discovery("x".into()).metric_label(), "discovery");
    }
}
