//! `Deployment` (`deployments.portico.dev`): an instance of a catalog template.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{DNS_LABEL_MESSAGE, DNS_LABEL_RULE, DNS_SUBDOMAIN_MESSAGE, DNS_SUBDOMAIN_RULE};

/// Most entries kept in `status.history`; older ones are dropped first.
pub const HISTORY_LIMIT: usize = 20;

/// A template from the catalog and the parameters to render it with.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "portico.dev",
    version = "v1alpha1",
    kind = "Deployment",
    namespaced,
    status = "DeploymentStatus",
    shortname = "pdeploy",
    category = "portico",
    doc = "An instance of a template from the catalog (a database, an app, a scheduled job): the operator renders \
           the template with spec.parameters and applies the objects with the rights of whoever created or last \
           changed it, and reports their health, outputs and history in status.",
    selectable = ".spec.template.name",
    selectable = ".status.creator",
    printcolumn = r#"{"name":"Template","type":"string","jsonPath":".spec.template.name"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","description":"The Ready condition's reason: AllCurrent, Progressing, Suspended, or why it is stalled","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Creator","type":"string","priority":1,"description":"Who created it (user name and groups, recorded at admission)","jsonPath":".metadata.annotations.portico\\.dev/created-by"}"#,
    printcolumn = r#"{"name":"Applied By","type":"string","priority":1,"description":"Whose rights the objects were last applied with","jsonPath":".status.appliedBy"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.template == oldSelf.template").message("spec.template is immutable: create a new Deployment from the other template and delete this one"))]
pub struct DeploymentSpec {
    /// The catalog template to instantiate.
    pub template: TemplateRef,
    /// Values for the template's parameters, checked against the template's JSON Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub parameters: Option<serde_json::Value>,
    /// `true`: stop applying changes; what exists stays as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// A template in the catalog: a ConfigMap labelled `portico.dev/template`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
pub struct TemplateRef {
    /// Name of the template.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS_SUBDOMAIN_RULE).message(DNS_SUBDOMAIN_MESSAGE))]
    pub name: String,
    /// Catalog namespace holding the template; the first catalog namespace that has it when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    #[x_kube(validation = Rule::new(DNS_LABEL_RULE).message(DNS_LABEL_MESSAGE))]
    pub namespace: Option<String>,
}

/// What the operator rendered, applied and observed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus {
    /// Who created it: the user name admission recorded in `portico.dev/created-by`
    /// (selectable: `kubectl get deployments.portico.dev --field-selector status.creator=alice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// Which template revision and parameters the applied objects come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_revision: Option<String>,
    /// The user whose rights the objects were last applied with: the creator,
    /// or whoever last changed the spec (or `the operator`, for `applyAs: operator` templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_by: Option<String>,
    /// The objects this Deployment owns, with their health.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceStatus>,
    /// Values the template's outputs read from the live objects.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
    /// The latest operations, newest last, bounded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
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

/// One object a Deployment created.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// API version of the object, for example `apps/v1`.
    pub api_version: String,
    /// Kind of the object.
    pub kind: String,
    /// Namespace of the object; empty for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the object.
    pub name: String,
    /// The object's health.
    pub health: Health,
    /// Why the object has this health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The object's `metadata.generation` as Portico's last apply left it,
    /// for kinds that have one: while the object still shows it, a periodic
    /// resync (also the first after the operator restarts) need not apply
    /// it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_generation: Option<i64>,
    /// The object's `metadata.resourceVersion` as Portico's last apply left
    /// it, for kinds without a generation (a Service, a ConfigMap): while
    /// the object still shows it, nothing has written it since, and a
    /// resync need not apply it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_resource_version: Option<String>,
}

/// An object's health, as kstatus computes it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Health {
    /// Reconciled and ready.
    Current,
    /// Still rolling out or starting.
    InProgress,
    /// Failed and not expected to recover by itself.
    Failed,
    /// Not (yet) present.
    NotFound,
    /// Health could not be determined.
    Unknown,
}

/// One operation in a Deployment's history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct HistoryEntry {
    /// When the operation happened.
    pub time: Time,
    /// What was done.
    pub operation: Operation,
    /// How it went.
    pub result: OperationResult,
    /// Details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An operation on a Deployment's objects.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Operation {
    /// First apply of the rendered objects.
    Create,
    /// Apply after a parameter or template change.
    Update,
    /// Deletion of objects the render no longer contains.
    Prune,
    /// Deletion of every object.
    Delete,
}

/// The outcome of an operation.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum OperationResult {
    /// It worked.
    Succeeded,
    /// It failed; the message says why.
    Failed,
}
