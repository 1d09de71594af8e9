//! The operator configuration file (YAML): lifetimes and their caps, token
//! lifetime, privileged groups, webhook serving, leader election. Parsing and
//! checking are pure; every error names the key at fault.

pub mod profiles;
mod serving;
mod terminal;

pub use profiles::{Grant, SessionProfile};
pub use serving::{ControllerConfig, LeaderElectionConfig, MetricsConfig, ServiceRef, WebhookConfig};
pub use terminal::{ResourcesConfig, TerminalConfig};

use std::{path::PathBuf, time::Duration as StdDuration};

use kube::core::Duration;
use serde::Deserialize;

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A key is unknown, has the wrong type or an invalid value.
    #[error("configuration key `{key}`: {message}")]
    Invalid {
        /// Dotted path of the key, for example `terminal.idleTimeout.default`.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// Everything `portico operator` reads from `--config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorConfig {
    /// Terminal defaults and caps.
    #[serde(default)]
    pub terminal: TerminalConfig,
    /// The admission webhook server.
    #[serde(default)]
    pub webhook: WebhookConfig,
    /// Leader election between replicas.
    #[serde(default)]
    pub leader_election: LeaderElectionConfig,
    /// The plain-HTTP server with `/metrics`, `/healthz`, `/readyz`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Reconciler settings.
    #[serde(default)]
    pub controller: ControllerConfig,
    /// The session profiles users may claim with a SessionClaim.
    #[serde(default)]
    pub session_profiles: Vec<SessionProfile>,
    /// The template catalog for Deployments.
    #[serde(default)]
    pub deployment: DeploymentConfig,
    /// Lifetime of a session's token; renewed at 80%, never longer than the session may live.
    #[serde(default = "default_session_token")]
    pub session_token_lifetime: Duration,
    /// API server URL written into session kubeconfigs (what users reach from their machines);
    /// the operator's own when absent.
    #[serde(default)]
    pub session_server_url: Option<String>,
}

fn default_session_token() -> Duration {
    d(3600)
}

/// A default and a cap for one duration.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// Used when an object does not say.
    pub default: Duration,
    /// The most an object may ask for.
    pub max: Duration,
}

/// The template catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DeploymentConfig {
    /// Namespaces whose ConfigMaps labelled `portico.dev/template` are the catalog, searched in order.
    pub catalog_namespaces: Vec<String>,
    /// A Secret with a random seed for templates' `password(label)`, created once by the operator.
    pub seed_secret: NamespacedName,
}

impl Default for DeploymentConfig {
    fn default() -> Self {
        DeploymentConfig {
            catalog_namespaces: vec!["portico-catalog".into()],
            seed_secret: NamespacedName {
                namespace: "portico-system".into(),
                name: "portico-render-seed".into(),
            },
        }
    }
}

pub(crate) fn d(secs: u64) -> Duration {
    StdDuration::from_secs(secs).into()
}

/// A namespace and a name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespacedName {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig {
            terminal: Default::default(),
            webhook: Default::default(),
            leader_election: Default::default(),
            metrics: Default::default(),
            controller: Default::default(),
            session_profiles: vec![],
            deployment: Default::default(),
            session_token_lifetime: default_session_token(),
            session_server_url: None,
        }
    }
}

impl OperatorConfig {
    /// The profile named `name`.
    pub fn profile(&self, name: &str) -> Option<&SessionProfile> {
        self.session_profiles.iter().find(|p| p.name == name)
    }

    /// Parses YAML text and checks it.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let cfg: OperatorConfig = match serde_path_to_error::deserialize(de) {
            Ok(cfg) => cfg,
            Err(e) => {
                let key = profiles::name_profile_in_path(&e.path().to_string(), text);
                let key = if key == "." { "(top level)".to_string() } else { key };
                return Err(invalid(key, e.into_inner().to_string()));
            }
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// Reads and checks a file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// Cross-field checks: defaults within caps, positive durations, a webhook address.
    pub fn check(&self) -> Result<(), ConfigError> {
        let t = &self.terminal;
        check_bounds("terminal.idleTimeout", &t.idle_timeout)?;
        check_bounds("terminal.maxLifetime", &t.max_lifetime)?;
        positive("terminal.tokenLifetime", &t.token_lifetime)?;
        positive("sessionTokenLifetime", &self.session_token_lifetime)?;
        positive("terminal.cleanupTimeout", &t.cleanup_timeout)?;
        positive("leaderElection.leaseDuration", &self.leader_election.lease_duration)?;
        profiles::check_all(&self.session_profiles)?;
        if self.deployment.catalog_namespaces.is_empty() {
            return Err(invalid(
                "deployment.catalogNamespaces",
                "name at least one namespace that holds templates",
            ));
        }
        if !profiles::is_dns_label(&t.access_namespace) {
            return Err(invalid(
                "terminal.accessNamespace",
                format!(
                    "{:?} is not a namespace name: use lowercase letters, digits and '-', at most 63",
                    t.access_namespace
                ),
            ));
        }
        if self.controller.concurrency == 0 {
            return Err(invalid("controller.concurrency", "must be at least 1"));
        }
        if StdDuration::from(self.controller.resync) < StdDuration::from_secs(60) {
            return Err(invalid("controller.resync", "must be at least 1m"));
        }
        let w = &self.webhook;
        if w.manage_configurations && w.url.is_none() && w.service.is_none() {
            return Err(invalid(
                "webhook",
                "with manageConfigurations: true, set webhook.url (server outside the cluster) or webhook.service",
            ));
        }
        if !self.metrics.admin_bind_address.ip().is_loopback() {
            return Err(invalid(
                "metrics.adminBindAddress",
                format!(
                    "{} is not a loopback address: /log-level changes what the operator logs, so it listens on 127.0.0.1 or ::1 only (reach it with kubectl port-forward)",
                    self.metrics.admin_bind_address
                ),
            ));
        }
        if w.manage_configurations && w.inject_ca_bundle {
            return Err(invalid(
                "webhook.injectCaBundle",
                "set either manageConfigurations (the operator makes the configurations) or injectCaBundle (someone else makes them, the operator writes their caBundle), not both",
            ));
        }
        if w.url.is_some() && w.service.is_some() {
            return Err(invalid(
                "webhook.url",
                "set either webhook.url or webhook.service, not both",
            ));
        }
        if let Some(url) = &w.url
            && !url.starts_with("https://")
        {
            return Err(invalid(
                "webhook.url",
                format!("must start with https:// (got {url:?})"),
            ));
        }
        if w.max_object_bytes < 1024 {
            return Err(invalid("webhook.maxObjectBytes", "must be at least 1024"));
        }
        Ok(())
    }
}

fn positive(key: &str, v: &Duration) -> Result<(), ConfigError> {
    if v.is_negative() || StdDuration::from(*v).is_zero() {
        return Err(invalid(
            key,
            format!("must be a positive duration such as 30m (got {v})"),
        ));
    }
    Ok(())
}

pub(crate) fn check_bounds(key: &str, b: &Bounds) -> Result<(), ConfigError> {
    positive(&format!("{key}.default"), &b.default)?;
    positive(&format!("{key}.max"), &b.max)?;
    if StdDuration::from(b.default) > StdDuration::from(b.max) {
        return Err(invalid(
            format!("{key}.default"),
            format!(
                "default {} is above the maximum {}; lower the default or raise the maximum",
                b.default, b.max
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(yaml: &str) -> String {
        OperatorConfig::from_yaml(yaml).unwrap_err().to_string()
    }

    const WEBHOOK: &str = "webhook: {url: 'https://127.0.0.1:9443'}\n";

    #[test]
    fn defaults_apply_to_an_almost_empty_file() {
        let c = OperatorConfig::from_yaml(WEBHOOK).unwrap();
        assert_eq!(
            StdDuration::from(c.terminal.idle_timeout.default),
            StdDuration::from_secs(1800)
        );
        assert!(c.leader_election.enabled);
        assert_eq!(c.controller.concurrency, 16);
        assert_eq!(StdDuration::from(c.controller.resync), StdDuration::from_secs(600));
    }

    #[test]
    fn durations_in_go_format_are_read() {
        let c = OperatorConfig::from_yaml(&format!(
            "{WEBHOOK}terminal:\n  idleTimeout: {{default: 5m, max: 1h30m}}\n  privilegedGroups: [ops]\n"
        ))
        .unwrap();
        assert_eq!(
            StdDuration::from(c.terminal.idle_timeout.max),
            StdDuration::from_secs(5400)
        );
        assert_eq!(c.terminal.privileged_groups, ["ops"]);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = err(&format!("{WEBHOOK}terminal:\n  idleTimeot: {{default: 5m, max: 1h}}\n"));
        assert!(e.contains("terminal") && e.contains("idleTimeot"), "{e}");
    }

    #[test]
    fn bad_values_are_named_with_their_path() {
        let e = err(&format!("{WEBHOOK}terminal:\n  tokenLifetime: soon\n"));
        assert!(e.contains("terminal.tokenLifetime"), "{e}");
        let e = err(&format!("{WEBHOOK}controller: {{concurrency: 0}}\n"));
        assert!(e.contains("controller.concurrency"), "{e}");
        let e = err(&format!("{WEBHOOK}controller: {{resync: 10s}}\n"));
        assert!(e.contains("controller.resync") && e.contains("at least 1m"), "{e}");
    }

    #[test]
    fn a_default_above_its_maximum_is_refused() {
        let e = err(&format!(
            "{WEBHOOK}terminal:\n  maxLifetime: {{default: 10h, max: 2h}}\n"
        ));
        assert!(
            e.contains("terminal.maxLifetime.default") && e.contains("above the maximum"),
            "{e}"
        );
    }

    #[test]
    fn webhook_address_is_required_when_managing_configurations() {
        assert!(err("{}").contains("`webhook`"));
        assert!(err("webhook: {url: 'http://x'}").contains("https://"));
        OperatorConfig::from_yaml("webhook: {manageConfigurations: false}").unwrap();
    }

    #[test]
    fn the_chart_mode_writes_only_the_ca_and_excludes_managing() {
        let cfg = OperatorConfig::from_yaml("webhook: {manageConfigurations: false, injectCaBundle: true}").unwrap();
        assert!(cfg.webhook.inject_ca_bundle && !cfg.webhook.manage_configurations);
        let e = err("webhook: {url: 'https://127.0.0.1:9443', injectCaBundle: true}");
        assert!(e.contains("webhook.injectCaBundle") && e.contains("not both"), "{e}");
    }

    #[test]
    fn the_log_level_endpoint_listens_on_loopback_only() {
        let cfg = OperatorConfig::from_yaml(WEBHOOK).unwrap();
        assert!(cfg.metrics.admin_bind_address.ip().is_loopback());
        let e = err(&format!("{WEBHOOK}metrics: {{adminBindAddress: '0.0.0.0:8081'}}\n"));
        assert!(
            e.contains("metrics.adminBindAddress") && e.contains("port-forward"),
            "{e}"
        );
        OperatorConfig::from_yaml(&format!("{WEBHOOK}metrics: {{adminBindAddress: '[::1]:9000'}}\n")).unwrap();
    }
}

#[cfg(test)]
mod profile_tests {
    use super::*;

    const BASE: &str = "webhook: {url: 'https://127.0.0.1:9443'}\n";

    fn load(profiles: &str) -> Result<OperatorConfig, ConfigError> {
        OperatorConfig::from_yaml(&format!("{BASE}sessionProfiles:\n{profiles}"))
    }

    #[test]
    fn a_profile_with_selector_and_list_grants_loads() {
        let c = load(
            "- name: developer\n  allowedGroups: [developers]\n  grants:\n    - namespaces: {selector: {matchLabels: {team: a}}}\n      role: {kind: ClusterRole, name: edit}\n    - namespaces: {names: [shared]}\n      role: {kind: ClusterRole, name: view}\n  maxActivePerUser: 2\n",
        )
        .unwrap();
        let p = c.profile("developer").unwrap();
        assert!(p.allows(&["developers".into()]) && !p.allows(&["ops".into()]));
        let labels = [("team".to_string(), "a".to_string())].into();
        assert!(p.grants[0].covers("team-a", &labels));
        assert!(!p.grants[0].covers("team-b", &Default::default()));
        assert!(p.grants[1].covers("shared", &Default::default()));
    }

    #[test]
    fn errors_name_the_profile_and_key() {
        let e = load("- name: developer\n  allowedGroups: ['*']\n  grants:\n    - namespaces: {names: [a]}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sessionProfiles[developer].grants[0]") && e.contains("role"),
            "{e}"
        );
        let e = load("- name: dev\n  allowedGroups: ['*']\n  colour: blue\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sessionProfiles[dev]") && e.contains("colour"), "{e}");
        let e = load("- name: dev\n  allowedGroups: ['*']\n  idleTimeout: {default: 2h, max: 1h}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sessionProfiles[dev].idleTimeout.default") && e.contains("above the maximum"),
            "{e}"
        );
        let e = load("- name: dev\n  allowedGroups: ['*']\n  grants:\n    - namespaces: {}\n      role: {kind: ClusterRole, name: view}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sessionProfiles[dev].grants[0].namespaces"), "{e}");
        let e = load("- name: dev\n  allowedGroups: ['*']\n- name: dev\n  allowedGroups: ['*']\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unique"), "{e}");
    }
}

#[cfg(test)]
mod example_file {
    #[test]
    fn the_documented_example_configuration_loads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/operator.yaml");
        let c = super::OperatorConfig::load(&path).unwrap();
        assert_eq!(c.webhook.service.as_ref().unwrap().name, "portico-webhook");
    }
}
