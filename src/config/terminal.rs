//! The `terminal` section: Terminals' lifetimes and their caps, token
//! lifetime, privileged groups, default resources and the access namespace.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::core::Duration;
use serde::Deserialize;

use super::{Bounds, d};

/// Terminal defaults and caps.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TerminalConfig {
    /// Idle timeout (since the last heartbeat).
    pub idle_timeout: Bounds,
    /// Maximum lifetime (since creation).
    pub max_lifetime: Bounds,
    /// Lifetime of the target token; renewed at 80%. Never longer than the Terminal may live
    /// (but at least 10 minutes, the API server's minimum).
    pub token_lifetime: Duration,
    /// Groups whose members may ask for `privileged`, `hostPID` or `hostNetwork` pods.
    pub privileged_groups: Vec<String>,
    /// Resources of the terminal container when the Terminal does not say.
    pub default_resources: ResourcesConfig,
    /// API server URL written into kubeconfigs for this cluster; the operator's own when absent.
    pub server_url: Option<String>,
    /// How long cleanup keeps retrying a cluster it cannot reach before the finalizer lets go.
    pub cleanup_timeout: Duration,
    /// The namespace, in every target cluster, that holds Terminals' access
    /// service accounts (created by the operator when missing). Give nobody
    /// but the operator and cluster admins rights there: whoever may
    /// impersonate service accounts or create their tokens in it can act as
    /// any Terminal.
    pub access_namespace: String,
    /// ClusterRoles a Terminal hosted in a named (shared) namespace may bind,
    /// in that namespace only. Its pod and kubeconfig Secret are open to
    /// whoever may exec into pods or read Secrets there (every editor), so
    /// list only roles every such user already has; anything more needs
    /// `host.temporaryNamespace: true`.
    pub shared_host_roles: Vec<String>,
}

/// Requests and limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourcesConfig {
    /// Requests, for example `cpu: 50m`.
    pub requests: BTreeMap<String, Quantity>,
    /// Limits, for example `memory: 256Mi`.
    pub limits: BTreeMap<String, Quantity>,
}

impl Default for TerminalConfig {
    fn default() -> Self {
        TerminalConfig {
            idle_timeout: Bounds {
                default: d(30 * 60),
                max: d(8 * 3600),
            },
            max_lifetime: Bounds {
                default: d(8 * 3600),
                max: d(24 * 3600),
            },
            token_lifetime: d(3600),
            privileged_groups: vec![],
            default_resources: ResourcesConfig {
                requests: [("cpu", "50m"), ("memory", "64Mi")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect(),
                limits: [("cpu", "1"), ("memory", "512Mi")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect(),
            },
            server_url: None,
            cleanup_timeout: d(5 * 60),
            access_namespace: "portico-terminals".into(),
            shared_host_roles: vec!["view".into(), "edit".into()],
        }
    }
}
