//! Rendering a template (pure): manifests from parameters, and outputs from
//! the live objects. Undefined variables are errors, so a typo in a template
//! fails loudly instead of rendering an empty string.

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use minijinja::{Environment, UndefinedBehavior, Value as JValue};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Template;

/// Label on every object a Deployment renders.
pub use crate::api::keys::DEPLOYMENT_LABEL;
/// Annotation naming the owning Deployment.
pub use crate::api::keys::DEPLOYMENT_NAME_ANNOTATION as NAME_ANNOTATION;
/// Annotation naming the owning Deployment's namespace.
pub use crate::api::keys::DEPLOYMENT_NAMESPACE_ANNOTATION as NAMESPACE_ANNOTATION;

/// A template that does not render.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct RenderError(pub String);

/// What a render sees besides the parameters.
pub struct Inputs<'a> {
    /// The Deployment's name.
    pub name: &'a str,
    /// The Deployment's namespace.
    pub namespace: &'a str,
    /// Parameters with defaults filled in.
    pub params: &'a Value,
    /// A secret seed for `password(label)`: stable per Deployment, unknown to users.
    pub seed: &'a [u8],
}

/// Whether a string written into YAML as is could change the document's
/// structure: a line break (a new key or document), `: ` or ` #` (a key or
/// a comment), flow indicators (a new entry in `{…}` or `[…]`), a leading
/// indicator or quote, or surrounding whitespace. Such strings are written
/// quoted, so a parameter is always one value, wherever a template puts it.
pub fn needs_quoting(s: &str) -> bool {
    s.contains(['\n', '\r', '\t', ',', '[', ']', '{', '}'])
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.starts_with(['-', '?', ':', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`'])
        || s.trim() != s
}

fn environment<'s>(seed: Vec<u8>, yaml_values: bool) -> Environment<'s> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    if yaml_values {
        env.set_formatter(|out, state, value| {
            if let Some(s) = value.as_str()
                && !value.is_safe()
                && needs_quoting(s)
            {
                let quoted = serde_json::to_string(s).expect("a string serializes");
                return out.write_str(&quoted).map_err(minijinja::Error::from);
            }
            minijinja::escape_formatter(out, state, value)
        });
    }
    env.add_function("password", move |label: String| -> String {
        let mut h = Sha256::new();
        h.update(&seed);
        h.update(b"/");
        h.update(label.as_bytes());
        hex::encode(&h.finalize()[..16])
    });
    env
}

/// The label value for a Deployment name (label values hold at most 63 characters).
pub fn label_value(name: &str) -> String {
    if name.len() <= 63 {
        name.to_string()
    } else {
        format!("{}-{}", &name[..52], &hex::encode(Sha256::digest(name))[..10])
    }
}

/// Renders the manifests into objects, labelled and annotated as the
/// Deployment's. Objects without a namespace get the Deployment's (the caller
/// clears it for cluster-scoped kinds).
pub fn manifests(t: &Template, inp: &Inputs<'_>) -> Result<Vec<DynamicObject>, RenderError> {
    let env = environment(inp.seed.to_vec(), true);
    let ctx = minijinja::context! {
        name => inp.name,
        namespace => inp.namespace,
        params => JValue::from(minijinja::value::Serde(inp.params)),
    };
    let text = env
        .render_str(&t.manifests, ctx)
        .map_err(|e| RenderError(format!("rendering manifests: {e:#}")))?;
    let mut out = vec![];
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
        let value = serde_json::Value::deserialize(doc).map_err(|e| {
            RenderError(format!(
                "rendered manifests are not valid YAML (document {}): {e}",
                i + 1
            ))
        })?;
        if value.is_null() {
            continue;
        }
        for field in ["apiVersion", "kind"] {
            if !value.get(field).is_some_and(Value::is_string) {
                return Err(RenderError(format!("rendered document {} has no {field}", i + 1)));
            }
        }
        let mut obj: DynamicObject = serde_json::from_value(value)
            .map_err(|e| RenderError(format!("rendered document {} is not a Kubernetes object: {e}", i + 1)))?;
        if obj.metadata.name.as_deref().unwrap_or_default().is_empty() {
            return Err(RenderError(format!("rendered document {} has no metadata.name", i + 1)));
        }
        obj.metadata.namespace.get_or_insert_with(|| inp.namespace.to_string());
        obj.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(DEPLOYMENT_LABEL.into(), label_value(inp.name));
        let annotations = obj.metadata.annotations.get_or_insert_with(Default::default);
        annotations.insert(NAMESPACE_ANNOTATION.into(), inp.namespace.to_string());
        annotations.insert(NAME_ANNOTATION.into(), inp.name.to_string());
        out.push(obj);
    }
    let mut seen = std::collections::BTreeSet::new();
    for o in &out {
        let key = (
            o.types.as_ref().map(|t| t.kind.clone()),
            o.metadata.namespace.clone(),
            o.metadata.name.clone(),
        );
        if !seen.insert(key) {
            return Err(RenderError(format!(
                "the template renders {} {} twice",
                o.types.as_ref().map(|t| t.kind.as_str()).unwrap_or_default(),
                o.metadata.name.as_deref().unwrap_or_default()
            )));
        }
    }
    Ok(out)
}

use serde::Deserialize;

/// Evaluates each output over the live objects, keyed `Kind/name`.
/// An output that fails to render holds the error text.
pub fn outputs(t: &Template, inp: &Inputs<'_>, live: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    let env = environment(inp.seed.to_vec(), false);
    t.outputs
        .iter()
        .map(|(key, expr)| {
            let ctx = minijinja::context! {
                name => inp.name,
                namespace => inp.namespace,
                params => JValue::from(minijinja::value::Serde(inp.params)),
                resources => JValue::from(minijinja::value::Serde(live)),
            };
            let v = env
                .render_str(expr, ctx)
                .unwrap_or_else(|e| format!("(unavailable: {e})"));
            (key.clone(), v)
        })
        .collect()
}

/// A digest of what a render depends on: template source and parameters.
pub fn revision(template_resource_version: &str, template_name: &str, params: &Value) -> String {
    let mut h = Sha256::new();
    h.update(template_name.as_bytes());
    h.update(b"@");
    h.update(template_resource_version.as_bytes());
    h.update(serde_json::to_vec(params).unwrap_or_default());
    format!(
        "{template_name}@{template_resource_version}/{}",
        &hex::encode(h.finalize())[..12]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn webapp() -> Template {
        let cm: k8s_openapi::api::core::v1::ConfigMap =
            serde_yaml_ng::from_str(include_str!("../../config/catalog/webapp.yaml")).unwrap();
        super::super::from_config_map(&cm).unwrap().template
    }

    fn inputs<'a>(params: &'a Value) -> Inputs<'a> {
        Inputs {
            name: "hello",
            namespace: "team-a",
            params,
            seed: b"seed",
        }
    }

    #[test]
    fn the_webapp_renders_a_deployment_service_and_config_map() {
        let t = webapp();
        let params =
            super::super::params::check(&t.parameters, &json!({"image": "nginx:1.27", "replicas": 2})).unwrap();
        let objs = manifests(&t, &inputs(&params)).unwrap();
        let kinds: Vec<&str> = objs.iter().map(|o| o.types.as_ref().unwrap().kind.as_str()).collect();
        assert_eq!(kinds, ["ConfigMap", "Deployment", "Service"]);
        for o in &objs {
            assert_eq!(o.metadata.namespace.as_deref(), Some("team-a"));
            assert_eq!(o.metadata.labels.as_ref().unwrap()[DEPLOYMENT_LABEL], "hello");
        }
        assert_eq!(objs[1].data["spec"]["replicas"], 2);
        assert_eq!(
            objs[1].data["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.27"
        );
    }

    #[test]
    fn the_other_shipped_templates_render_with_their_defaults() {
        for (text, params, kinds) in [
            (
                include_str!("../../config/catalog/postgresql.yaml"),
                json!({}),
                vec!["Secret", "Service", "StatefulSet"],
            ),
            (
                include_str!("../../config/catalog/cronjob.yaml"),
                json!({"image": "busybox", "schedule": "@daily", "command": ["date"]}),
                vec!["CronJob"],
            ),
        ] {
            let cm: k8s_openapi::api::core::v1::ConfigMap = serde_yaml_ng::from_str(text).unwrap();
            let t = super::super::from_config_map(&cm).unwrap().template;
            let p = super::super::params::check(&t.parameters, &params).unwrap();
            let objs = manifests(&t, &inputs(&p)).unwrap_or_else(|e| panic!("{e}"));
            let got: Vec<&str> = objs.iter().map(|o| o.types.as_ref().unwrap().kind.as_str()).collect();
            assert_eq!(got, kinds);
        }
    }

    #[test]
    fn the_postgresql_and_scheduled_job_images_default_to_public_ones_and_can_be_set() {
        let load = |text: &str| {
            let cm: k8s_openapi::api::core::v1::ConfigMap = serde_yaml_ng::from_str(text).unwrap();
            super::super::from_config_map(&cm).unwrap().template
        };
        let image = |t: &crate::catalog::Template, params: serde_json::Value, at: usize, path: &str| {
            let p = super::super::params::check(&t.parameters, &params).unwrap();
            let objs = manifests(t, &inputs(&p)).unwrap();
            objs[at].data.pointer(path).unwrap().as_str().unwrap().to_string()
        };
        let pg = load(include_str!("../../config/catalog/postgresql.yaml"));
        let at = "/spec/template/spec/containers/0/image";
        assert_eq!(image(&pg, json!({}), 2, at), "docker.io/library/postgres:16");
        assert_eq!(
            image(
                &pg,
                json!({"image": "portico.local/postgresql", "version": "15"}),
                2,
                at
            ),
            "portico.local/postgresql:15"
        );
        assert_eq!(
            image(&pg, json!({"image": "registry.example:5000/db/postgres"}), 2, at),
            "registry.example:5000/db/postgres:16"
        );
        for bad in ["postgres:16", "docker.io/library/postgres@sha256:abc", "", "Postgres"] {
            let e = super::super::params::check(&pg.parameters, &json!({"image": bad})).unwrap_err();
            assert_eq!(e[0].pointer, "/image", "{bad}: {e:?}");
        }
        let job = load(include_str!("../../config/catalog/cronjob.yaml"));
        let at = "/spec/jobTemplate/spec/template/spec/containers/0/image";
        assert_eq!(
            image(&job, json!({"schedule": "@daily"}), 0, at),
            "docker.io/library/busybox:1.37"
        );
    }

    #[test]
    fn undefined_variables_and_bad_yaml_are_errors() {
        let mut t = webapp();
        t.manifests = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ params.nope }}}\n".into();
        let e = manifests(&t, &inputs(&json!({}))).unwrap_err();
        assert!(e.0.contains("rendering manifests"), "{e}");
        t.manifests = "apiVersion: v1\nkind: [\n".into();
        assert!(
            manifests(&t, &inputs(&json!({})))
                .unwrap_err()
                .0
                .contains("not valid YAML")
        );
        t.manifests = "kind: ConfigMap\nmetadata: {name: x}\n".into();
        assert!(
            manifests(&t, &inputs(&json!({})))
                .unwrap_err()
                .0
                .contains("no apiVersion")
        );
        t.manifests = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n".into();
        assert!(manifests(&t, &inputs(&json!({}))).unwrap_err().0.contains("twice"));
    }

    #[test]
    fn a_string_parameter_cannot_add_documents_or_fields_even_unquoted() {
        let mut t = webapp();
        // A template that forgets `| tojson`, in block and in flow style.
        t.manifests = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ name }}-config'}\n\
                       data:\n  MESSAGE: {{ params.message }}\n  FLOW: {a: {{ params.flow }}}\n"
            .into();
        let attack = "hi\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: stolen}";
        let p = json!({"message": attack, "flow": "1, b: 2"});
        let objs = manifests(&t, &inputs(&p)).unwrap();
        assert_eq!(objs.len(), 1, "no second document");
        assert_eq!(objs[0].data["data"]["MESSAGE"], attack, "one value, as given");
        assert_eq!(objs[0].data["data"]["FLOW"], json!({"a": "1, b: 2"}), "no second field");
        // Plain values stay plain, so names and images keep rendering as before.
        assert!(!needs_quoting("hello-world") && !needs_quoting("nginx:1.27") && !needs_quoting("10"));
        assert!(needs_quoting("a: b") && needs_quoting("x #c") && needs_quoting(" lead") && needs_quoting("- item"));
    }

    #[test]
    fn passwords_are_stable_per_seed_and_label() {
        let mut t = webapp();
        t.manifests = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: {{ password('a') }}, b: {{ password('b') }}}\n".into();
        let p = json!({});
        let one = manifests(&t, &inputs(&p)).unwrap();
        let two = manifests(&t, &inputs(&p)).unwrap();
        assert_eq!(one[0].data["stringData"], two[0].data["stringData"]);
        assert_ne!(one[0].data["stringData"]["a"], one[0].data["stringData"]["b"]);
        let other = manifests(
            &t,
            &Inputs {
                seed: b"other",
                ..inputs(&p)
            },
        )
        .unwrap();
        assert_ne!(one[0].data["stringData"]["a"], other[0].data["stringData"]["a"]);
    }

    #[test]
    fn outputs_read_the_live_objects() {
        let mut t = webapp();
        t.outputs = [(
            "url".to_string(),
            "http://{{ resources['Service/hello'].spec.clusterIP }}:{{ params.port }}".to_string(),
        )]
        .into();
        let live = [("Service/hello".to_string(), json!({"spec": {"clusterIP": "10.96.0.7"}}))].into();
        let out = outputs(&t, &inputs(&json!({"port": 8080})), &live);
        assert_eq!(out["url"], "http://10.96.0.7:8080");
        let out = outputs(&t, &inputs(&json!({"port": 8080})), &BTreeMap::new());
        assert!(out["url"].starts_with("(unavailable"), "{}", out["url"]);
    }
}
