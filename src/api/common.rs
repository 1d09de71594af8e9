//! Schema pieces shared by the three kinds: references to kubeconfig Secrets,
//! the CEL rules for durations and DNS names, the roles and bindings that
//! Terminals and session profiles grant, and why an object ended.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// CEL: a Go duration string (`30m`, `8h`, `1h30m`) greater than zero.
/// The `matches` guard keeps `duration()` from failing on garbage, so the
/// rule's own message is what the user sees.
pub const POSITIVE_DURATION_RULE: &str =
    "self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')";
/// Message for [`POSITIVE_DURATION_RULE`].
pub const POSITIVE_DURATION_MESSAGE: &str =
    "must be a positive duration made of a number and a unit (h, m, s, ms), such as 30m, 8h or 1h30m";

/// CEL: an RFC 1123 DNS label (a namespace name, a name suffix, a profile).
pub const DNS_LABEL_RULE: &str = "!format.dns1123Label().validate(self).hasValue()";
/// Message for [`DNS_LABEL_RULE`].
pub const DNS_LABEL_MESSAGE: &str =
    "must be a DNS label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit";

/// CEL: an RFC 1123 DNS subdomain (a Secret or ConfigMap name).
pub const DNS_SUBDOMAIN_RULE: &str = "!format.dns1123Subdomain().validate(self).hasValue()";
/// Message for [`DNS_SUBDOMAIN_RULE`].
pub const DNS_SUBDOMAIN_MESSAGE: &str = "must be a DNS subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters";

/// A key in a Secret in the object's own namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace as the object that refers to it.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = kube::core::Rule::new(DNS_SUBDOMAIN_RULE).message(DNS_SUBDOMAIN_MESSAGE))]
    pub name: String,
    /// Key within the Secret whose value is a kubeconfig. Defaults to `kubeconfig`.
    #[serde(default = "default_kubeconfig_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_kubeconfig_key() -> String {
    "kubeconfig".to_string()
}

/// Another cluster, reached with a kubeconfig stored in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRef {
    /// The Secret key holding a kubeconfig for the cluster. The creator must be allowed to `get` this Secret.
    pub kubeconfig_secret_ref: SecretKeyRef,
}

/// Why a Terminal or SessionClaim ended.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum EndReason {
    /// No heartbeat arrived within the idle timeout.
    IdleTimeout,
    /// The maximum lifetime since creation was reached.
    MaxLifetime,
    /// Someone deleted the object.
    Deleted,
}

impl EndReason {
    /// Why it ended, in words.
    pub fn describe(self) -> &'static str {
        match self {
            EndReason::IdleTimeout => "no heartbeat arrived within the idle timeout",
            EndReason::MaxLifetime => "the maximum lifetime was reached",
            EndReason::Deleted => "it was deleted",
        }
    }
}

/// A Role or ClusterRole by name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct RoleRef {
    /// `Role` (in the target namespace) or `ClusterRole`.
    pub kind: RoleKind,
    /// Name of the role.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The kind of role a binding refers to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RoleKind {
    /// A namespaced Role in the target namespace.
    Role,
    /// A cluster-wide ClusterRole.
    ClusterRole,
}

/// The kind of binding made for a role.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum BindingKind {
    /// A RoleBinding in the target namespace.
    RoleBinding,
    /// A cluster-wide ClusterRoleBinding.
    ClusterRoleBinding,
}
