//! `SessionClaim`: a user's session, with time-limited credentials from a
//! session profile.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{DNS_LABEL_MESSAGE, DNS_LABEL_RULE, EndReason, POSITIVE_DURATION_MESSAGE, POSITIVE_DURATION_RULE};

/// A request for a session under a profile the platform admins defined.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "portico.dev",
    version = "v1alpha1",
    kind = "SessionClaim",
    namespaced,
    status = "SessionClaimStatus",
    shortname = "sclaim",
    category = "portico",
    doc = "A user's session under a session profile the platform admins defined: time-limited, revocable \
           credentials (a kubeconfig in a Secret only that user may read) and the profile's grants. It ends \
           when no heartbeat arrives within spec.idleTimeout or at spec.maxLifetime; status.expiresAt says when.",
    selectable = ".spec.profile",
    selectable = ".status.user",
    printcolumn = r#"{"name":"Profile","type":"string","jsonPath":".spec.profile"}"#,
    printcolumn = r#"{"name":"User","type":"string","jsonPath":".status.user"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","description":"The Ready condition's reason: KubeconfigReady, Ended, or why it is stalled","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Expires","type":"string","format":"date-time","description":"When the session ends unless a heartbeat arrives first","jsonPath":".status.expiresAt"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.message"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.profile == oldSelf.profile").message("profile is immutable: end this session and claim a new one for another profile"))]
pub struct SessionClaimSpec {
    /// The session profile, as named in the operator configuration.
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new(DNS_LABEL_RULE).message(DNS_LABEL_MESSAGE))]
    pub profile: String,
    /// How long the session lives without a heartbeat (a duration such as `30m`).
    /// Defaulted and capped by the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(POSITIVE_DURATION_RULE).message(POSITIVE_DURATION_MESSAGE))]
    pub idle_timeout: Option<String>,
    /// How long the session lives at most since creation (a duration such as `12h`).
    /// Defaulted and capped by the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(POSITIVE_DURATION_RULE).message(POSITIVE_DURATION_MESSAGE))]
    pub max_lifetime: Option<String>,
}

/// What the operator issued for the session.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionClaimStatus {
    /// The user the session belongs to (from `portico.dev/created-by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The user's groups when the session was claimed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The service account whose short-lived tokens the session's kubeconfig carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// The Secret holding the session's kubeconfig; only the user may read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_secret_name: Option<String>,
    /// When the session ends unless a heartbeat arrives first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// Why the session ended, set while it is being deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    /// A short human summary of the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `Ready`, `Reconciling` and `Stalled`, kstatus style.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
