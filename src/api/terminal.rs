//! `Terminal`: a shell in the browser, in a pod on a *host* that holds a
//! kubeconfig for a *target* namespace and roles.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::{
    api::resource::Quantity,
    apis::meta::v1::{Condition, Time},
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    BindingKind, ClusterRef, DNS_LABEL_MESSAGE, DNS_LABEL_RULE, EndReason, POSITIVE_DURATION_MESSAGE,
    POSITIVE_DURATION_RULE, RoleRef,
};

/// What a user asks for: where the terminal pod runs and what its kubeconfig reaches.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "portico.dev",
    version = "v1alpha1",
    kind = "Terminal",
    namespaced,
    status = "TerminalStatus",
    shortname = "term",
    category = "portico",
    selectable = ".status.creator",
    doc = "A shell in the browser: a pod on a host cluster holding a kubeconfig for a target namespace and the \
           roles bound there. It is deleted, with everything made for it, when its creator stops sending heartbeats \
           (spec.idleTimeout) or at spec.maxLifetime; status.expiresAt says when.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","description":"The Ready condition's reason: PodReady, PodCreating, PodNotReady, Ended, or why it is stalled","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Expires","type":"string","format":"date-time","description":"When it is deleted unless a heartbeat arrives first","jsonPath":".status.expiresAt"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Target","type":"string","priority":1,"jsonPath":".spec.target.namespace"}"#,
    printcolumn = r#"{"name":"Host Namespace","type":"string","priority":1,"jsonPath":".status.hostNamespace"}"#,
    printcolumn = r#"{"name":"Creator","type":"string","priority":1,"description":"Who created it (user name and groups, recorded at admission)","jsonPath":".metadata.annotations.portico\\.dev/created-by"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.message"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("spec is immutable: a Terminal cannot be changed after it is created; delete it and create a new one"))]
pub struct TerminalSpec {
    /// Where the terminal pod runs.
    pub host: TerminalHost,
    /// What the kubeconfig inside the terminal pod reaches.
    pub target: TerminalTarget,
    /// How long the Terminal lives without a heartbeat (a duration such as `5m`, `1h`).
    /// Defaulted and capped by the operator configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(POSITIVE_DURATION_RULE).message(POSITIVE_DURATION_MESSAGE))]
    pub idle_timeout: Option<String>,
    /// How long the Terminal lives at most since creation, heartbeats or not (a duration such as `8h`).
    /// Defaulted and capped by the operator configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(POSITIVE_DURATION_RULE).message(POSITIVE_DURATION_MESSAGE))]
    pub max_lifetime: Option<String>,
}

/// The cluster and namespace where the terminal pod runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.__namespace__) != (has(self.temporaryNamespace) && self.temporaryNamespace)").message("set exactly one of host.namespace or host.temporaryNamespace: true"))]
pub struct TerminalHost {
    /// The cluster the pod runs in. Absent: this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterRef>,
    /// An existing namespace for the pod. Exactly one of `namespace` and `temporaryNamespace` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    #[x_kube(validation = Rule::new(DNS_LABEL_RULE).message(DNS_LABEL_MESSAGE))]
    pub namespace: Option<String>,
    /// `true`: create a namespace for this Terminal and delete it with the Terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporary_namespace: Option<bool>,
    /// The terminal container.
    pub pod: TerminalPod,
}

/// The terminal container: image, command and the few pod options a terminal needs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TerminalPod {
    /// Container image with a shell, for example `docker.io/library/alpine:3.20`.
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = Rule::new("self.trim() != ''").message("must name a container image, for example docker.io/library/alpine:3.20"))]
    pub image: String,
    /// Entrypoint array; the image's entrypoint when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub command: Option<Vec<String>>,
    /// Arguments to the entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub args: Option<Vec<String>>,
    /// Environment variables with literal values (no references to Secrets or ConfigMaps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub env: Option<Vec<EnvVar>>,
    /// Compute resources; defaulted by the operator when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Run the container privileged. Only users in a group the operator configuration allows may ask for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Share the node's process namespace. Same restriction as `privileged`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "hostPID")]
    pub host_pid: Option<bool>,
    /// Use the node's network namespace. Same restriction as `privileged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    /// Node labels the pod must be scheduled on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 32))]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Extra labels for the pod. Keys under `portico.dev/` are reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 32))]
    #[x_kube(validation = Rule::new("self.all(k, !k.startsWith('portico.dev/'))").message("label keys under portico.dev/ are reserved for Portico; choose another prefix"))]
    pub labels: Option<BTreeMap<String, String>>,
}

/// An environment variable with a literal value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct EnvVar {
    /// Variable name.
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// Literal value.
    #[serde(default)]
    #[schemars(length(max = 32768))]
    pub value: String,
}

/// Compute resource requests and limits, as on a container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
pub struct Resources {
    /// Minimum resources, for example `cpu: 100m`, `memory: 128Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<BTreeMap<String, Quantity>>,
    /// Maximum resources, for example `cpu: "1"`, `memory: 512Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<BTreeMap<String, Quantity>>,
}

/// The cluster, namespace and roles the terminal's kubeconfig reaches.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.__namespace__) != (has(self.temporaryNamespace) && self.temporaryNamespace)").message("set exactly one of target.namespace or target.temporaryNamespace: true"))]
pub struct TerminalTarget {
    /// The cluster the kubeconfig reaches. Absent: this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterRef>,
    /// The namespace the role bindings are made in. Exactly one of `namespace` and `temporaryNamespace` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    #[x_kube(validation = Rule::new(DNS_LABEL_RULE).message(DNS_LABEL_MESSAGE))]
    pub namespace: Option<String>,
    /// `true`: create a namespace in the target cluster for this Terminal and delete it with the Terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporary_namespace: Option<bool>,
    /// The default namespace of the kubeconfig's context; the target namespace when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    #[x_kube(validation = Rule::new(DNS_LABEL_RULE).message(DNS_LABEL_MESSAGE))]
    pub kubeconfig_context_namespace: Option<String>,
    /// Roles bound to the terminal's service account. The creator must hold every permission they grant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(x, self.exists_one(y, y.nameSuffix == x.nameSuffix))").message("each roleBindings entry needs its own nameSuffix; two entries use the same one"))]
    pub role_bindings: Vec<TerminalRoleBinding>,
}

/// One role bound to the terminal's service account.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.bindingKind != 'ClusterRoleBinding' || self.roleRef.kind == 'ClusterRole'").message("a ClusterRoleBinding may only bind a ClusterRole; use bindingKind: RoleBinding for a Role"))]
pub struct TerminalRoleBinding {
    /// The role to bind.
    pub role_ref: RoleRef,
    /// `RoleBinding` (in the target namespace) or `ClusterRoleBinding` (cluster-wide).
    pub binding_kind: BindingKind,
    /// Distinguishes this binding's name from the Terminal's other bindings.
    #[schemars(length(min = 1, max = 20))]
    #[x_kube(validation = Rule::new(DNS_LABEL_RULE).message(DNS_LABEL_MESSAGE))]
    pub name_suffix: String,
}

/// What the operator observed and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TerminalStatus {
    /// Who created it: the user name admission recorded in `portico.dev/created-by`
    /// (selectable: `kubectl get terminals --field-selector status.creator=alice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// Name of the terminal pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// Namespace of the terminal pod in the host cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_namespace: Option<String>,
    /// Service account whose token may attach to the terminal pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_service_account_name: Option<String>,
    /// When the Terminal will be deleted unless a heartbeat arrives first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// Why the Terminal ended (`IdleTimeout`, `MaxLifetime`, `Deleted`), set while it is being deleted.
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
    /// The digest of the children the operator last applied (every object
    /// as written, but the token Secret): a restarted operator that finds
    /// them unchanged and present writes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children_digest: Option<String>,
}
