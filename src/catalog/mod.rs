//! The template catalog: ConfigMaps labelled `portico.dev/template` in the
//! catalog namespaces, each holding a `template.yaml` with metadata, a JSON
//! Schema for parameters, minijinja manifests and templated outputs.
//! Parsing, parameter checking and rendering are pure.

pub mod bounds;
pub mod params;
pub mod preview;
pub mod render;
pub mod watch;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client, ResourceExt};
use serde::{Deserialize, Serialize};

/// Label that marks a ConfigMap as a catalog template.
pub use crate::api::keys::TEMPLATE_LABEL;
/// The ConfigMap key holding the template.
pub const TEMPLATE_KEY: &str = "template.yaml";
/// Schema keyword marking a parameter that may not change after creation.
pub const UPDATABLE_KEYWORD: &str = "x-portico-updatable";

/// Whose rights apply the rendered objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ApplyAs {
    /// The Deployment's creator, by impersonation: a template can create only
    /// what its user could create with kubectl (the default).
    #[default]
    Creator,
    /// The operator's own service account. For admin-curated templates whose
    /// objects users may not create themselves; the template's author is
    /// responsible for what it can create.
    Operator,
}

/// A parsed template.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Template {
    /// Name shown on the catalog card.
    pub display_name: String,
    /// What it deploys.
    #[serde(default)]
    pub description: String,
    /// Icon: an https URL or a data URI.
    #[serde(default)]
    pub icon: Option<String>,
    /// Ribbon text, for example `beta`.
    #[serde(default)]
    pub tag: Option<String>,
    /// The template's own version.
    #[serde(default)]
    pub version: Option<String>,
    /// Groups (names or regular expressions) allowed to use it; `*` for everyone.
    pub allowed_groups: Vec<String>,
    /// Whose rights apply the objects.
    #[serde(default)]
    pub apply_as: ApplyAs,
    /// What renders may contain; required with `applyAs: operator`.
    #[serde(default)]
    pub bounds: Option<bounds::RenderBounds>,
    /// JSON Schema of the parameters.
    #[serde(default = "empty_object_schema")]
    pub parameters: serde_json::Value,
    /// minijinja template rendering multi-document YAML.
    pub manifests: String,
    /// Output name → minijinja expression over the live objects.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
}

fn empty_object_schema() -> serde_json::Value {
    serde_json::json!({"type": "object"})
}

/// A template that cannot be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    /// No such ConfigMap in the catalog.
    #[error("template {name:?} is not in the catalog (namespaces {namespaces:?})")]
    NotFound {
        /// The name asked for.
        name: String,
        /// Where it was looked for.
        namespaces: Vec<String>,
    },
    /// A namespace outside the catalog was named.
    #[error("namespace {0:?} is not a catalog namespace")]
    NotACatalog(String),
    /// The ConfigMap is not a valid template.
    #[error("template {name} is invalid: {reason}")]
    Invalid {
        /// `namespace/name` of the ConfigMap.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading the catalog failed.
    #[error("reading the catalog: {0}")]
    Api(String),
}

/// A template and where it came from.
#[derive(Debug, Clone)]
pub struct Entry {
    /// ConfigMap namespace.
    pub namespace: String,
    /// ConfigMap (and template) name.
    pub name: String,
    /// ConfigMap resourceVersion: part of the template revision.
    pub resource_version: String,
    /// The parsed template.
    pub template: Template,
}

impl Template {
    /// Parses `template.yaml` text and checks the parameter schema compiles.
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        let invalid = |reason: String| TemplateError::Invalid {
            name: name.to_string(),
            reason,
        };
        let t: Template = serde_yaml_ng::from_str(text).map_err(|e| invalid(e.to_string()))?;
        jsonschema::validator_for(&t.parameters).map_err(|e| invalid(format!("parameters schema: {e}")))?;
        match (&t.bounds, t.apply_as) {
            (None, ApplyAs::Operator) => {
                return Err(invalid(
                    "applyAs: operator needs bounds: list the kinds its renders may create (bounds.kinds) and \
                     any namespaces besides the Deployment's own (bounds.namespaces)"
                        .into(),
                ));
            }
            (Some(b), _) => b.check().map_err(invalid)?,
            (None, ApplyAs::Creator) => {}
        }
        if t.allowed_groups.is_empty() {
            return Err(invalid("allowedGroups is empty; list groups or \"*\"".into()));
        }
        for g in &t.allowed_groups {
            if g != "*" {
                regex::Regex::new(&format!("^(?:{g})$")).map_err(|e| invalid(format!("allowedGroups {g:?}: {e}")))?;
            }
        }
        Ok(t)
    }

    /// Whether any of `groups` may use this template (names or anchored regular expressions).
    pub fn allows(&self, groups: &[String]) -> bool {
        self.allowed_groups.iter().any(|pattern| {
            pattern == "*"
                || groups.contains(pattern)
                || regex::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|re| groups.iter().any(|g| re.is_match(g)))
        })
    }
}

/// Reads a template ConfigMap.
pub fn from_config_map(cm: &ConfigMap) -> Result<Entry, TemplateError> {
    let name = format!("{}/{}", cm.namespace().unwrap_or_default(), cm.name_any());
    if !cm.labels().contains_key(TEMPLATE_LABEL) {
        return Err(TemplateError::Invalid {
            name,
            reason: format!("the ConfigMap lacks the label {TEMPLATE_LABEL}"),
        });
    }
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(TEMPLATE_KEY))
        .ok_or_else(|| TemplateError::Invalid {
            name: name.clone(),
            reason: format!("no key {TEMPLATE_KEY}"),
        })?;
    Ok(Entry {
        namespace: cm.namespace().unwrap_or_default(),
        name: cm.name_any(),
        resource_version: cm.resource_version().unwrap_or_default(),
        template: Template::parse(&name, text)?,
    })
}

/// Where a template named in `namespace` (or anywhere) is looked up: that
/// namespace if it is a catalog, else every catalog namespace in order.
pub fn search_namespaces(catalog_namespaces: &[String], namespace: Option<&str>) -> Result<Vec<String>, TemplateError> {
    match namespace {
        Some(ns) if catalog_namespaces.iter().any(|c| c == ns) => Ok(vec![ns.to_string()]),
        Some(ns) => Err(TemplateError::NotACatalog(ns.to_string())),
        None => Ok(catalog_namespaces.to_vec()),
    }
}

/// Finds template `name` (in `namespace`, or the first catalog namespace holding it).
pub async fn lookup(
    client: &Client,
    catalog_namespaces: &[String],
    name: &str,
    namespace: Option<&str>,
) -> Result<Entry, TemplateError> {
    let search = search_namespaces(catalog_namespaces, namespace)?;
    for ns in &search {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        if let Some(cm) = api.get_opt(name).await.map_err(|e| TemplateError::Api(e.to_string()))?
            && cm.labels().contains_key(TEMPLATE_LABEL)
        {
            return from_config_map(&cm);
        }
    }
    Err(TemplateError::NotFound {
        name: name.to_string(),
        namespaces: search,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEBAPP: &str = include_str!("../../config/catalog/webapp.yaml");

    fn template_text(cm_yaml: &str) -> String {
        let cm: ConfigMap = serde_yaml_ng::from_str(cm_yaml).unwrap();
        cm.data.unwrap()[TEMPLATE_KEY].clone()
    }

    #[test]
    fn the_shipped_templates_parse() {
        for text in [
            WEBAPP,
            include_str!("../../config/catalog/postgresql.yaml"),
            include_str!("../../config/catalog/cronjob.yaml"),
        ] {
            let cm: ConfigMap = serde_yaml_ng::from_str(text).unwrap();
            let e = from_config_map(&cm).unwrap_or_else(|e| panic!("{e}"));
            assert!(!e.template.display_name.is_empty());
        }
    }

    #[test]
    fn groups_match_by_name_or_regular_expression() {
        let mut t = Template::parse("x", &template_text(WEBAPP)).unwrap();
        t.allowed_groups = vec!["ops".into(), "team-.*".into()];
        assert!(t.allows(&["ops".into()]));
        assert!(t.allows(&["team-a".into()]));
        assert!(!t.allows(&["xteam-a".into()]), "anchored");
        assert!(!t.allows(&["developers".into()]));
    }

    #[test]
    fn broken_templates_say_what_is_wrong() {
        let e = Template::parse("cat/x", "displayName: x\nallowedGroups: ['*']\n").unwrap_err();
        assert!(e.to_string().contains("manifests"), "{e}");
        let e = Template::parse("cat/x", "displayName: x\nallowedGroups: ['(']\nmanifests: ''\n").unwrap_err();
        assert!(e.to_string().contains("allowedGroups"), "{e}");
        let e = Template::parse(
            "cat/x",
            "displayName: x\nallowedGroups: ['*']\nmanifests: ''\nparameters: {type: 12}\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("parameters schema"), "{e}");
    }
}
