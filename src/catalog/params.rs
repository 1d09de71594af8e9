//! Parameters against a template's JSON Schema (pure): defaults filled in,
//! every violation reported with its JSON pointer and the rule it breaks, and
//! the parameters a template marks as not updatable.

use serde_json::{Map, Value};

use super::UPDATABLE_KEYWORD;

/// One way the parameters break the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the parameters, for example `/replicas`.
    pub pointer: String,
    /// The field at fault as Kubernetes writes paths, for example
    /// `spec.parameters.replicas`; a missing required property's own path.
    pub field: String,
    /// The schema keyword broken, for example `maximum`.
    pub rule: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() { "/" } else { &self.pointer };
        write!(f, "spec.parameters{at} ({}): {}", self.rule, self.message)
    }
}

/// Fills in `default`s of the schema's properties where the parameters have none (recursively).
pub fn with_defaults(schema: &Value, params: &Value) -> Value {
    let mut out = if params.is_null() {
        Value::Object(Map::new())
    } else {
        params.clone()
    };
    fill(schema, &mut out);
    out
}

fn fill(schema: &Value, value: &mut Value) {
    let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object_mut(),
    ) else {
        return;
    };
    for (key, sub) in props {
        if !obj.contains_key(key)
            && let Some(d) = sub.get("default")
        {
            obj.insert(key.clone(), d.clone());
        }
        if let Some(v) = obj.get_mut(key) {
            fill(sub, v);
        }
    }
}

/// Checks parameters (with defaults filled in) against the schema; returns
/// them, or every violation.
pub fn check(schema: &Value, params: &Value) -> Result<Value, Vec<Violation>> {
    let full = with_defaults(schema, params);
    let validator = match jsonschema::validator_for(schema) {
        Ok(v) => v,
        Err(e) => {
            return Err(vec![Violation {
                pointer: String::new(),
                field: field_path("", None),
                rule: "schema".into(),
                message: e.to_string(),
            }]);
        }
    };
    let mut violations: Vec<Violation> = validator
        .iter_errors(&full)
        .map(|e| {
            let pointer = e.instance_path().to_string();
            let missing = match e.kind() {
                jsonschema::error::ValidationErrorKind::Required { property } => property.as_str(),
                _ => None,
            };
            Violation {
                field: field_path(&pointer, missing),
                pointer,
                rule: e.kind().keyword().to_string(),
                message: e.to_string(),
            }
        })
        .collect();
    if violations.is_empty() {
        return Ok(full);
    }
    violations.sort_by(|a, b| a.pointer.cmp(&b.pointer).then(a.rule.cmp(&b.rule)));
    Err(violations)
}

/// The Kubernetes field path of a JSON pointer into the parameters (and of
/// the missing property `missing` there): `/a/0/b` is
/// `spec.parameters.a[0].b`; a key that is not a plain name is bracketed.
pub fn field_path(pointer: &str, missing: Option<&str>) -> String {
    let mut out = "spec.parameters".to_string();
    let segments = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"));
    for seg in segments.chain(missing.map(str::to_string)) {
        let name = seg.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if name {
            out.push('.');
            out.push_str(&seg);
        } else {
            out.push_str(&format!("[{seg}]"));
        }
    }
    out
}

/// Top-level parameters marked `x-portico-updatable: false` whose value changed.
pub fn changed_fixed(schema: &Value, old: &Value, new: &Value) -> Vec<String> {
    let (old, new) = (with_defaults(schema, old), with_defaults(schema, new));
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return vec![];
    };
    props
        .iter()
        .filter(|(_, s)| s.get(UPDATABLE_KEYWORD) == Some(&Value::Bool(false)))
        .filter(|(k, _)| old.get(k.as_str()) != new.get(k.as_str()))
        .map(|(k, _)| format!("/{k}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["image"],
            "additionalProperties": false,
            "properties": {
                "image": {"type": "string", "minLength": 1, "x-portico-updatable": false},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "port": {"type": "integer", "default": 80},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
            }
        })
    }

    #[test]
    fn defaults_are_filled_in() {
        let p = check(&schema(), &json!({"image": "nginx"})).unwrap();
        assert_eq!(p, json!({"image": "nginx", "replicas": 1, "port": 80, "mode": "a"}));
        assert_eq!(with_defaults(&schema(), &Value::Null)["replicas"], 1);
    }

    #[test]
    fn every_violation_is_reported_with_pointer_and_rule() {
        let v = check(&schema(), &json!({"replicas": 50, "mode": "c", "colour": "red"})).unwrap_err();
        let got: Vec<(String, String)> = v.iter().map(|x| (x.pointer.clone(), x.rule.clone())).collect();
        assert!(got.contains(&("".into(), "required".into())), "{got:?}");
        assert!(got.contains(&("/replicas".into(), "maximum".into())), "{got:?}");
        assert!(got.contains(&("/mode".into(), "enum".into())), "{got:?}");
        assert!(got.contains(&("".into(), "additionalProperties".into())), "{got:?}");
        let text = v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("; ");
        assert!(text.contains("spec.parameters/replicas (maximum)"), "{text}");
    }

    #[test]
    fn violations_name_their_field_as_kubernetes_writes_paths() {
        let v = check(&schema(), &json!({"replicas": 50, "colour": "red"})).unwrap_err();
        let fields: Vec<&str> = v.iter().map(|x| x.field.as_str()).collect();
        // The missing `image` at its own path; the unknown `colour` at the object; `replicas` at itself.
        assert_eq!(
            fields,
            ["spec.parameters", "spec.parameters.image", "spec.parameters.replicas"],
            "{v:?}"
        );
        assert_eq!(field_path("/items/0/name", None), "spec.parameters.items[0].name");
        assert_eq!(field_path("/a~1b/c.d", None), "spec.parameters[a/b][c.d]");
        assert_eq!(field_path("", None), "spec.parameters");
    }

    #[test]
    fn fixed_parameters_may_not_change() {
        let s = schema();
        assert_eq!(
            changed_fixed(&s, &json!({"image": "a"}), &json!({"image": "b"})),
            ["/image"]
        );
        assert!(changed_fixed(&s, &json!({"image": "a"}), &json!({"image": "a", "replicas": 3})).is_empty());
    }
}
