//! Forms generated from a template's JSON Schema (pure): the fields to show,
//! the parameters a submitted form means, and the API server's violations
//! placed next to the fields they concern.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

/// One form field.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Field {
    /// Parameter name (the form field's name).
    pub name: String,
    /// `text`, `number`, `checkbox`, `select` or `lines`.
    pub input: String,
    /// Help text from the schema's description.
    pub description: String,
    /// Whether the schema requires it.
    pub required: bool,
    /// The value to show (default, or what was submitted).
    pub value: String,
    /// Choices of an enum.
    pub options: Vec<String>,
    /// Lower bound of a number, as the schema writes it.
    pub min: Option<Value>,
    /// Upper bound of a number, as the schema writes it.
    pub max: Option<Value>,
    /// Whether it may change after creation.
    pub fixed: bool,
    /// What the API server said about it.
    pub error: Option<String>,
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(show).collect::<Vec<_>>().join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The fields for `schema`, showing `values` (or the defaults).
pub fn fields(schema: &Value, values: &Map<String, Value>) -> Vec<Field> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema["properties"].as_object() else {
        return vec![];
    };
    props
        .iter()
        .map(|(name, p)| {
            let ty = p["type"].as_str().unwrap_or("string");
            let options: Vec<String> = p["enum"]
                .as_array()
                .map(|a| a.iter().map(show).collect())
                .unwrap_or_default();
            let input = if !options.is_empty() {
                "select"
            } else {
                match ty {
                    "integer" | "number" => "number",
                    "boolean" => "checkbox",
                    "array" => "lines",
                    _ => "text",
                }
            };
            Field {
                name: name.clone(),
                input: input.into(),
                description: p["description"].as_str().unwrap_or_default().into(),
                required: required.contains(&name.as_str()),
                value: values.get(name).or(p.get("default")).map(show).unwrap_or_default(),
                options,
                min: p.get("minimum").filter(|v| v.is_number()).cloned(),
                max: p.get("maximum").filter(|v| v.is_number()).cloned(),
                fixed: p.get(crate::catalog::UPDATABLE_KEYWORD) == Some(&Value::Bool(false)),
                error: None,
            }
        })
        .collect()
}

/// The parameters a submitted form means: typed per the schema; empty fields
/// are left out so the template's defaults apply; values that do not parse are
/// kept as text so the schema check names them.
pub fn parameters(schema: &Value, form: &BTreeMap<String, String>) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(props) = schema["properties"].as_object() else {
        return out;
    };
    for (name, p) in props {
        let raw = form.get(name).map(|s| s.trim()).unwrap_or_default();
        let ty = p["type"].as_str().unwrap_or("string");
        if ty == "boolean" {
            out.insert(name.clone(), Value::Bool(matches!(raw, "on" | "true")));
            continue;
        }
        if raw.is_empty() {
            continue;
        }
        let v = match ty {
            "integer" => raw.parse::<i64>().map(Value::from).unwrap_or_else(|_| raw.into()),
            "number" => raw.parse::<f64>().map(Value::from).unwrap_or_else(|_| raw.into()),
            "array" => Value::Array(
                raw.lines()
                    .map(|l| l.trim())
                    .filter(|l| !l.is_empty())
                    .map(Value::from)
                    .collect(),
            ),
            _ => Value::from(raw),
        };
        out.insert(name.clone(), v);
    }
    out
}

/// Splits an admission refusal into messages per field (by the
/// `spec.parameters/<name> (<rule>): <message>` pieces) and the rest.
pub fn place_errors(message: &str, fields: &mut [Field]) -> Vec<String> {
    let mut general = vec![];
    let body = message.split_once("denied the request: ").map_or(message, |(_, b)| b);
    let body = body
        .split_once(": spec.parameters")
        .map_or(body.to_string(), |(head, rest)| {
            general.push(head.to_string());
            format!("spec.parameters{rest}")
        });
    for part in body.split("; ").filter(|p| !p.is_empty()) {
        let placed = part.strip_prefix("spec.parameters/").and_then(|rest| {
            let (name, detail) = rest.split_once(' ')?;
            // A missing required property is reported at the object; it belongs to that field.
            let name = if name.is_empty() && detail.starts_with("(required)") {
                detail.split('"').nth(1).unwrap_or_default()
            } else {
                name.split('/').next().unwrap_or(name)
            };
            let field = fields.iter_mut().find(|f| f.name == name)?;
            field.error = Some(detail.to_string());
            Some(())
        });
        if placed.is_none() && !general.contains(&part.to_string()) {
            general.push(part.to_string());
        }
    }
    general
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object", "required": ["image"],
            "properties": {
                "image": {"type": "string", "description": "Container image"},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "debug": {"type": "boolean"},
                "command": {"type": "array", "items": {"type": "string"}},
                "port": {"type": "integer", "x-portico-updatable": false}
            }
        })
    }

    #[test]
    fn fields_follow_the_schema() {
        let f = fields(&schema(), &Map::new());
        let by = |n: &str| f.iter().find(|x| x.name == n).unwrap().clone();
        assert_eq!((by("image").input.as_str(), by("image").required), ("text", true));
        assert_eq!(
            (
                by("replicas").input.as_str(),
                by("replicas").value.as_str(),
                by("replicas").max
            ),
            ("number", "1", Some(json!(10)))
        );
        assert_eq!(by("mode").options, ["a", "b"]);
        assert_eq!(by("debug").input, "checkbox");
        assert_eq!(by("command").input, "lines");
        assert!(by("port").fixed);
    }

    #[test]
    fn submitted_forms_become_typed_parameters() {
        let form: BTreeMap<String, String> = [
            ("image", "nginx"),
            ("replicas", "3"),
            ("mode", ""),
            ("command", "sh\n-c\n"),
            ("port", "eighty"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = parameters(&schema(), &form);
        assert_eq!(
            Value::Object(p),
            json!({"image": "nginx", "replicas": 3, "command": ["sh", "-c"], "port": "eighty", "debug": false})
        );
    }

    #[test]
    fn violations_land_next_to_their_fields() {
        let mut f = fields(&schema(), &Map::new());
        let msg = "admission webhook \"validate.portico.dev\" denied the request: the parameters do not fit template webapp: spec.parameters/ (required): \"image\" is a required property; spec.parameters/replicas (maximum): 50 is greater than the maximum of 10";
        let general = place_errors(msg, &mut f);
        assert_eq!(
            f.iter().find(|x| x.name == "replicas").unwrap().error.as_deref(),
            Some("(maximum): 50 is greater than the maximum of 10")
        );
        assert!(
            f.iter()
                .find(|x| x.name == "image")
                .unwrap()
                .error
                .as_deref()
                .unwrap()
                .contains("required")
        );
        assert_eq!(general, ["the parameters do not fit template webapp"]);
    }
}
