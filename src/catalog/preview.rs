//! The rendered manifests as a user may see them: rendered twice with two
//! throwaway seeds, and every value that differs between the two (what
//! `password()` generates) replaced by a mask. The real values depend on a
//! seed users never see, so they are never shown, and nothing looks like a
//! real secret that is not one.

use serde_json::Value;

use super::{Template, params, render};

/// What replaces a generated value.
pub const MASK: &str = "(generated, hidden)";

/// `a` with every leaf that differs from `b` masked.
pub fn mask_generated(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => Value::Object(
            x.iter()
                .map(|(k, v)| (k.clone(), y.get(k).map_or(v.clone(), |w| mask_generated(v, w))))
                .collect(),
        ),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            Value::Array(x.iter().zip(y).map(|(v, w)| mask_generated(v, w)).collect())
        }
        (x, y) if x == y => x.clone(),
        _ => Value::String(MASK.into()),
    }
}

/// The manifests of `template` for a Deployment, as YAML documents, with
/// generated values masked; the error says why it does not render.
pub fn manifests(template: &Template, name: &str, namespace: &str, parameters: &Value) -> Result<String, String> {
    let values = params::check(&template.parameters, parameters)
        .map_err(|v| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("; "))?;
    let render_with = |seed: &[u8]| {
        render::manifests(
            template,
            &render::Inputs {
                name,
                namespace,
                params: &values,
                seed,
            },
        )
        .map_err(|e| e.to_string())
    };
    let (a, b) = (
        render_with(&rand::random::<[u8; 32]>())?,
        render_with(&rand::random::<[u8; 32]>())?,
    );
    let docs: Vec<String> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| {
            let (x, y) = (
                serde_json::to_value(x).unwrap_or_default(),
                serde_json::to_value(y).unwrap_or_default(),
            );
            serde_yaml_ng::to_string(&mask_generated(&x, &y)).unwrap_or_default()
        })
        .collect();
    Ok(docs.join("---\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_differs_is_masked() {
        let a =
            serde_json::json!({"kind": "Secret", "stringData": {"password": "x1", "user": "app"}, "list": [1, "p"]});
        let b =
            serde_json::json!({"kind": "Secret", "stringData": {"password": "y2", "user": "app"}, "list": [1, "q"]});
        let m = mask_generated(&a, &b);
        assert_eq!(m["stringData"]["password"], MASK);
        assert_eq!(m["stringData"]["user"], "app");
        assert_eq!(m["list"], serde_json::json!([1, MASK]));
        assert_eq!(m["kind"], "Secret");
    }

    #[test]
    fn a_template_with_a_password_shows_its_structure_not_the_password() {
        let t: Template = serde_yaml_ng::from_str(
            "displayName: T\nallowedGroups: [\"*\"]\nparameters: {type: object, properties: {size: {type: integer, default: 1}}}\nmanifests: |\n  apiVersion: v1\n  kind: Secret\n  metadata: {name: '{{ name }}-db'}\n  stringData: {password: '{{ password(\"db\") }}', size: '{{ params.size }}'}\n",
        )
        .unwrap();
        let text = manifests(&t, "shop", "team-a", &serde_json::json!({})).unwrap();
        assert!(
            text.contains("name: shop-db") && text.contains(MASK) && text.contains("size: '1'"),
            "{text}"
        );
    }
}
