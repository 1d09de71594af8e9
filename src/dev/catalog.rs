//! The catalog as `portico dev` and the tests load it: the templates shipped
//! in `config/catalog/` (which name public images, for real clusters), with
//! the defaults of a few parameters pointing at the node's local images
//! instead, since no registry is reachable from the local node. Setting the
//! defaults is pure ([`with_defaults`]).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use serde_json::{Value, json};

use super::DevError;
use crate::{
    catalog::{TEMPLATE_KEY, params},
    controlplane::node::images,
    install,
};

/// The catalog namespace `portico dev` and the tests use.
pub const CATALOG_NAMESPACE: &str = "portico-catalog";
/// The templates shipped in `config/catalog/`.
pub const CATALOG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/catalog");

/// A parameter default of one template, set when the catalog is loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterDefault {
    /// The template (its ConfigMap's name).
    pub template: &'static str,
    /// The parameter.
    pub parameter: &'static str,
    /// Its default.
    pub value: Value,
}

/// The defaults that make every shipped template run on the local node:
/// PostgreSQL from `portico.local/postgresql` at its version, the scheduled
/// job in the toolbox, the web app from `portico.local/webapp`.
pub fn local_images() -> Vec<ParameterDefault> {
    vec![
        ParameterDefault {
            template: "postgresql",
            parameter: "image",
            value: json!(images::POSTGRESQL_REPOSITORY),
        },
        ParameterDefault {
            template: "postgresql",
            parameter: "version",
            value: json!(images::POSTGRESQL_VERSION),
        },
        ParameterDefault {
            template: "scheduled-job",
            parameter: "image",
            value: json!(images::TOOLBOX_IMAGE),
        },
        ParameterDefault {
            template: "webapp",
            parameter: "image",
            value: json!(images::WEBAPP_IMAGE),
        },
    ]
}

/// A default that cannot be set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DefaultError {
    /// The template ConfigMap has no readable template.
    #[error("template {template}: {reason}")]
    Template {
        /// The template.
        template: String,
        /// What is wrong.
        reason: String,
    },
    /// The template has no such parameter.
    #[error(
        "template {template} has no parameter {parameter} (parameters.properties.{parameter}) to set a default for"
    )]
    NoParameter {
        /// The template.
        template: String,
        /// The parameter.
        parameter: String,
    },
    /// The value is not valid for the parameter's schema.
    #[error("the default {value} of {template}'s parameter {parameter} does not fit its schema: {reason}")]
    Invalid {
        /// The template.
        template: String,
        /// The parameter.
        parameter: String,
        /// The value.
        value: String,
        /// The violations.
        reason: String,
    },
}

/// Sets the defaults of `defaults` that belong to the template in `cm`
/// (pure). Each value must fit its parameter's schema.
pub fn with_defaults(cm: &mut ConfigMap, defaults: &[ParameterDefault]) -> Result<(), DefaultError> {
    let name = cm.metadata.name.clone().unwrap_or_default();
    let ours: Vec<&ParameterDefault> = defaults.iter().filter(|d| d.template == name).collect();
    if ours.is_empty() {
        return Ok(());
    }
    let bad = |reason: String| DefaultError::Template {
        template: name.clone(),
        reason,
    };
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(TEMPLATE_KEY))
        .ok_or_else(|| bad(format!("no {TEMPLATE_KEY}")))?;
    let mut template: Value = serde_yaml_ng::from_str(text).map_err(|e| bad(e.to_string()))?;
    for d in ours {
        let property = template
            .pointer_mut(&format!("/parameters/properties/{}", d.parameter))
            .ok_or_else(|| DefaultError::NoParameter {
                template: name.clone(),
                parameter: d.parameter.to_string(),
            })?;
        let alone = json!({"type": "object", "properties": {d.parameter: property.clone()}});
        params::check(&alone, &json!({d.parameter: d.value})).map_err(|violations| DefaultError::Invalid {
            template: name.clone(),
            parameter: d.parameter.to_string(),
            value: d.value.to_string(),
            reason: violations.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; "),
        })?;
        property["default"] = d.value.clone();
    }
    let text = serde_yaml_ng::to_string(&template).map_err(|e| bad(e.to_string()))?;
    cm.data
        .get_or_insert_with(Default::default)
        .insert(TEMPLATE_KEY.to_string(), text);
    Ok(())
}

/// Applies every template ConfigMap in `dir` into `namespace` (created if
/// missing), with `defaults` set; returns how many.
pub async fn load_catalog(
    client: &Client,
    dir: &std::path::Path,
    namespace: &str,
    defaults: &[ParameterDefault],
) -> Result<usize, DevError> {
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": namespace}})).expect("namespace");
    install::apply(client, &ns).await?;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| DevError::Io(format!("read {}", dir.display()), e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    entries.sort();
    for path in &entries {
        let text = std::fs::read_to_string(path).map_err(|e| DevError::Io(format!("read {}", path.display()), e))?;
        let mut cm: ConfigMap = serde_yaml_ng::from_str(&text)
            .map_err(|e| DevError::Io(format!("parse {}", path.display()), std::io::Error::other(e)))?;
        with_defaults(&mut cm, defaults)?;
        cm.metadata.namespace = Some(namespace.to_string());
        install::apply(client, &cm).await?;
    }
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> ConfigMap {
        let text = std::fs::read_to_string(format!("{CATALOG_DIR}/{name}.yaml")).unwrap();
        serde_yaml_ng::from_str(&text).unwrap()
    }

    fn template(cm: &ConfigMap) -> crate::catalog::Template {
        serde_yaml_ng::from_str(&cm.data.as_ref().unwrap()[TEMPLATE_KEY]).unwrap()
    }

    #[test]
    fn the_shipped_templates_default_to_public_images() {
        let pg = template(&shipped("postgresql"));
        assert_eq!(
            pg.parameters["properties"]["image"]["default"],
            "docker.io/library/postgres"
        );
        let job = template(&shipped("cronjob"));
        assert_eq!(
            job.parameters["properties"]["image"]["default"],
            "docker.io/library/busybox:1.37"
        );
    }

    #[test]
    fn the_local_defaults_fit_every_shipped_template_and_change_only_defaults() {
        for file in ["postgresql", "cronjob", "webapp"] {
            let mut cm = shipped(file);
            let before = template(&cm);
            with_defaults(&mut cm, &local_images()).unwrap();
            let after = template(&cm);
            assert_eq!(before.manifests, after.manifests, "{file}");
            assert_eq!(before.outputs, after.outputs, "{file}");
            let mut schema = after.parameters.clone();
            for (_, p) in schema["properties"].as_object_mut().unwrap() {
                p.as_object_mut().unwrap().remove("default");
            }
            let mut old = before.parameters.clone();
            for (_, p) in old["properties"].as_object_mut().unwrap() {
                p.as_object_mut().unwrap().remove("default");
            }
            assert_eq!(schema, old, "{file}: only defaults change");
        }
        let mut pg = shipped("postgresql");
        with_defaults(&mut pg, &local_images()).unwrap();
        let params = params::check(&template(&pg).parameters, &json!({})).unwrap();
        assert_eq!(params["image"], images::POSTGRESQL_REPOSITORY);
        assert_eq!(params["version"], images::POSTGRESQL_VERSION);
    }

    #[test]
    fn a_default_for_a_missing_parameter_or_outside_the_schema_is_refused() {
        let mut cm = shipped("postgresql");
        let missing = ParameterDefault {
            template: "postgresql",
            parameter: "colour",
            value: json!("red"),
        };
        assert_eq!(
            with_defaults(&mut cm, &[missing]).unwrap_err().to_string(),
            "template postgresql has no parameter colour (parameters.properties.colour) to set a default for"
        );
        let wrong = ParameterDefault {
            template: "postgresql",
            parameter: "version",
            value: json!("9"),
        };
        let e = with_defaults(&mut cm, &[wrong]).unwrap_err();
        assert!(matches!(e, DefaultError::Invalid { .. }), "{e}");
        assert!(e.to_string().contains("version"), "{e}");
    }

    #[test]
    fn templates_without_defaults_are_left_as_shipped() {
        let mut cm = shipped("webapp");
        let before = cm.clone();
        with_defaults(&mut cm, &local_images()[..1]).unwrap();
        assert_eq!(cm, before);
    }
}
