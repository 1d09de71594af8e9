//! Admission of Deployments. Pure: on a spec change, who made it (their
//! rights apply that version). With API calls: the template exists in a
//! catalog namespace and allows whoever applies it, and the parameters fit
//! its schema and keep the ones it fixes.

use kube::core::{DynamicObject, admission::AdmissionRequest, admission::Operation};
use serde_json::Value;

use super::{Denial, WebhookState, mutate::set_annotation, validate::Followup};
use crate::{
    api::{DeploymentSpec, keys::UPDATED_BY},
    creator::Creator,
};

/// A Deployment's change is applied with the rights of whoever made it:
/// admission names them in `portico.dev/updated-by`.
pub fn mutate_update(ops: &mut Vec<Value>, old: &DynamicObject, obj: &DynamicObject, requester: &Creator) {
    if old.data.get("spec") != obj.data.get("spec") {
        set_annotation(ops, obj, UPDATED_BY, &requester.to_annotation());
    }
}

/// A new or changed Deployment, on its typed spec: what to check against
/// its template ([`Followup::Deployment`]), with whose rights.
pub fn validate(
    req: &AdmissionRequest<DynamicObject>,
    obj: &DynamicObject,
    creator: Creator,
) -> Result<Option<Followup>, Denial> {
    let spec: DeploymentSpec = super::typed_spec(obj)?;
    let old_params = match (&req.operation, req.old_object.as_ref()) {
        (Operation::Update, Some(old)) => {
            let old: DeploymentSpec = super::typed_spec(old)?;
            Some(old.parameters.unwrap_or(Value::Null))
        }
        _ => None,
    };
    // Whose rights the change is applied with: the creator's on create, the changer's after.
    let applier = match old_params {
        Some(_) => Creator::updater(obj.metadata.annotations.as_ref()).unwrap_or_else(|| creator.clone()),
        None => creator.clone(),
    };
    Ok(Some(Followup::Deployment {
        creator,
        applier,
        template: (spec.template.name, spec.template.namespace),
        params: spec.parameters.unwrap_or(Value::Null),
        old_params,
    }))
}

/// A Deployment's template must exist and allow the groups of whoever
/// applies it (the creator; after a change by someone else, that user), and
/// its parameters must satisfy the template's schema (and keep the
/// parameters it marks as fixed).
pub async fn check(
    state: &WebhookState,
    (creator, applier): (&Creator, &Creator),
    (name, namespace): &(String, Option<String>),
    params: &serde_json::Value,
    old_params: Option<&serde_json::Value>,
) -> Result<(), Denial> {
    let client = &state.clusters.local().client;
    let entry = crate::catalog::lookup(
        client,
        &state.config.deployment.catalog_namespaces,
        name,
        namespace.as_deref(),
    )
    .await
    .map_err(|e| match e {
        crate::catalog::TemplateError::Api(e) => Denial::unavailable(format!("cannot read the catalog: {e}")),
        other => Denial::invalid(format!("spec.template: {other}")),
    })?;
    if (old_params.is_none() || applier.user != creator.user) && !entry.template.allows(&applier.groups) {
        return Err(Denial::forbidden(format!(
            "{} may not use template {name}: it is for members of {:?}",
            applier.user, entry.template.allowed_groups
        )));
    }
    if let Err(violations) = crate::catalog::params::check(&entry.template.parameters, params) {
        let list: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
        return Err(Denial::invalid(format!(
            "the parameters do not fit template {name}: {}",
            list.join("; ")
        )));
    }
    if let Some(old) = old_params {
        let fixed = crate::catalog::params::changed_fixed(&entry.template.parameters, old, params);
        if !fixed.is_empty() {
            let list: Vec<String> = fixed.iter().map(|p| format!("spec.parameters{p}")).collect();
            return Err(Denial::invalid(format!(
                "{} may not change after creation (template {name} marks it {}: false); create a new Deployment instead",
                list.join(", "),
                crate::catalog::UPDATABLE_KEYWORD
            )));
        }
    }
    Ok(())
}
