//! How the operator runs: the webhook's serving and configurations, leader
//! election, the metrics server and the reconcilers' concurrency.

use std::{net::SocketAddr, path::PathBuf};

use kube::core::Duration;
use serde::Deserialize;

use super::{NamespacedName, d};

/// How the API server reaches the webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Address the HTTPS server listens on.
    pub bind_address: SocketAddr,
    /// A directory with `tls.crt` and `tls.key` (and `ca.crt`); when absent the operator
    /// generates a CA and serving certificate and keeps them in `certSecret`.
    pub cert_dir: Option<PathBuf>,
    /// Where generated certificates are kept, shared by all replicas.
    pub cert_secret: NamespacedName,
    /// Whether the operator creates the webhook configurations and keeps their `caBundle`.
    pub manage_configurations: bool,
    /// Whether the operator writes its CA into the `caBundle` of webhook
    /// configurations someone else made (the Helm chart), and nothing else
    /// of them: it never creates them, so once they are removed (`helm
    /// uninstall`) no configuration points at a webhook that is gone.
    pub inject_ca_bundle: bool,
    /// Name of the MutatingWebhookConfiguration and ValidatingWebhookConfiguration.
    pub configuration_name: String,
    /// The webhook's URL base (`https://127.0.0.1:9443`), for servers outside the cluster.
    pub url: Option<String>,
    /// The webhook's Service, for servers in the cluster.
    pub service: Option<ServiceRef>,
    /// DNS names and IPs in the generated serving certificate (the Service's names are added).
    pub hosts: Vec<String>,
    /// Objects larger than this (bytes of JSON) are refused.
    pub max_object_bytes: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            bind_address: "0.0.0.0:9443".parse().expect("address"),
            cert_dir: None,
            cert_secret: NamespacedName {
                namespace: "portico-system".into(),
                name: "portico-webhook-tls".into(),
            },
            manage_configurations: true,
            inject_ca_bundle: false,
            configuration_name: "portico".into(),
            url: None,
            service: None,
            hosts: vec![],
            max_object_bytes: 64 * 1024,
        }
    }
}

/// A Service and port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRef {
    /// Namespace of the Service.
    pub namespace: String,
    /// Name of the Service.
    pub name: String,
    /// Port of the Service.
    #[serde(default = "default_service_port")]
    pub port: i32,
}

fn default_service_port() -> i32 {
    443
}

/// Leader election.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LeaderElectionConfig {
    /// Off: this replica always reconciles (one replica only).
    pub enabled: bool,
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// How long a leader holds the Lease without renewing it.
    pub lease_duration: Duration,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        LeaderElectionConfig {
            enabled: true,
            namespace: "portico-system".into(),
            lease_name: "portico-operator".into(),
            lease_duration: d(15),
        }
    }
}

/// The metrics and health server.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address the plain-HTTP server of `/metrics`, `/healthz` and `/readyz` listens on.
    pub bind_address: SocketAddr,
    /// Address of `/log-level` (GET the filter, PUT a new one): a loopback
    /// address, reached with `kubectl port-forward`. It changes what the
    /// operator logs, so it is not served where anyone who reaches the pod
    /// could call it.
    pub admin_bind_address: SocketAddr,
    /// Serve `/metrics` only to callers with a bearer token the API server
    /// authenticates and allows `get` on the non-resource URL `/metrics`
    /// (the usage series name users). Off only where nothing but the
    /// scraper can reach the address (a loopback one, say).
    pub authorize: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            bind_address: "0.0.0.0:8080".parse().expect("address"),
            admin_bind_address: "127.0.0.1:8081".parse().expect("address"),
            authorize: true,
        }
    }
}

/// Reconciler settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ControllerConfig {
    /// Objects of one kind reconciled at once.
    pub concurrency: u16,
    /// How long what a pass applied holds: the first pass after it applies
    /// the children again, repairing changes nobody reported (at least 1m).
    pub resync: kube::core::Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            concurrency: 16,
            resync: crate::controller::applied::RESYNC.into(),
        }
    }
}
