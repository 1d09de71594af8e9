//! Admission of Deployments. Pure: on a spec change, who made it (their
//! rights apply that version). With API calls: the template exists in a
//! catalog namespace and allows whoever applies it, and the parameters fit
//! its schema and keep the ones it fixes.

use kube::core::{DynamicObject, admission::AdmissionRequest, admission::Operation};
use serde_json::Value;

use super::{Denial, WebhookState, mutate::set_annotation, validate::Followup};
use crate::{
    api::{DeploymentSpec, keys::UPDATED_BY},
    catalog::params::{Violation, field_path},
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
    let catalog_ns = &state.config.deployment.catalog_namespaces;
    // From the watch; what it does not hold is read from the API server.
    let cached = crate::catalog::search_namespaces(catalog_ns, namespace.as_deref())
        .ok()
        .and_then(|search| state.templates.get(&search, name));
    let found = match cached {
        Some(cm) => crate::catalog::from_config_map(&cm),
        None => crate::catalog::lookup(client, catalog_ns, name, namespace.as_deref()).await,
    };
    let entry = found.map_err(|e| match e {
        crate::catalog::TemplateError::Api(e) => Denial::unavailable(format!("cannot read the catalog: {e}")),
        other => Denial::invalid_field("spec.template", other.to_string()),
    })?;
    if (old_params.is_none() || applier.user != creator.user) && !entry.template.allows(&applier.groups) {
        return Err(Denial::forbidden(format!(
            "{} may not use template {name}: it is for members of {:?}",
            applier.user, entry.template.allowed_groups
        ))
        .on("spec.template.name"));
    }
    if let Err(violations) = crate::catalog::params::check(&entry.template.parameters, params) {
        return Err(parameters_refused(name, &violations));
    }
    if let Some(old) = old_params {
        let fixed = crate::catalog::params::changed_fixed(&entry.template.parameters, old, params);
        if !fixed.is_empty() {
            return Err(fixed_changed(name, &fixed));
        }
    }
    Ok(())
}

/// Parameters that do not fit template `name` (pure): every violation in
/// the message (`spec.parameters/<pointer> (<rule>): ...`, which the
/// dashboard places by field) and one cause each.
pub fn parameters_refused(name: &str, violations: &[Violation]) -> Denial {
    let list: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
    let denial = Denial::invalid(format!(
        "the parameters do not fit template {name}: {}",
        list.join("; ")
    ));
    violations
        .iter()
        .fold(denial, |d, v| d.with_cause(&v.field, &v.message))
}

/// Parameters template `name` fixes changed (pure; `fixed` are JSON pointers): one cause each.
pub fn fixed_changed(name: &str, fixed: &[String]) -> Denial {
    let keyword = crate::catalog::UPDATABLE_KEYWORD;
    let list: Vec<String> = fixed.iter().map(|p| format!("spec.parameters{p}")).collect();
    let denial = Denial::invalid(format!(
        "{} may not change after creation (template {name} marks it {keyword}: false); create a new Deployment instead",
        list.join(", "),
    ));
    fixed.iter().fold(denial, |d, p| {
        d.with_cause(
            field_path(p, None),
            format!(
                "may not change after creation (template {name} marks it {keyword}: false); create a new \
                 Deployment instead"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_parameter_at_fault_is_a_cause_and_the_message_keeps_listing_them() {
        let schema = json!({"type": "object", "required": ["image"], "additionalProperties": false,
            "properties": {"image": {"type": "string"}, "replicas": {"type": "integer", "maximum": 10}}});
        let violations = crate::catalog::params::check(&schema, &json!({"replicas": 50})).unwrap_err();
        let d = parameters_refused("webapp", &violations);
        assert_eq!(d.code, 422);
        assert!(
            d.message
                .starts_with("the parameters do not fit template webapp: spec.parameters/ (required)"),
            "{}",
            d.message
        );
        let causes: Vec<(&str, &str)> = d
            .causes
            .iter()
            .map(|c| (c.field.as_str(), c.message.as_str()))
            .collect();
        assert_eq!(
            causes,
            [
                ("spec.parameters.image", "\"image\" is a required property"),
                ("spec.parameters.replicas", "50 is greater than the maximum of 10"),
            ]
        );
        let d = fixed_changed("webapp", &["/image".into(), "/port".into()]);
        let fields: Vec<&str> = d.causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["spec.parameters.image", "spec.parameters.port"]);
        assert!(
            d.message
                .starts_with("spec.parameters/image, spec.parameters/port may not change after creation"),
            "{}",
            d.message
        );
    }
}
