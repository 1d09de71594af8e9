//! Forms generated from a template's JSON Schema (pure): the fields to show,
//! the parameters a submitted form means, and the API server's refusal
//! placed next to the fields its causes name.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

/// One form field.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Field {
    /// Parameter name (the form field's name).
    pub name: String,
    /// Its label: the schema's `title`, else the name in words.
    pub title: String,
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

/// The schema's keyword naming the order of its fields (as JSON Schema has none).
pub const ORDER_KEYWORD: &str = "x-portico-order";

/// The properties in the order `x-portico-order` names, then the others by name.
fn in_order<'a>(schema: &'a Value, props: &'a Map<String, Value>) -> Vec<(&'a String, &'a Value)> {
    let named: Vec<&str> = schema[ORDER_KEYWORD]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out: Vec<(&String, &Value)> = named.iter().filter_map(|n| props.get_key_value(*n)).collect();
    out.extend(props.iter().filter(|(k, _)| !named.contains(&k.as_str())));
    out
}

/// A parameter name in words: `imagePullPolicy` and `image_pull_policy` are "Image pull policy".
fn in_words(name: &str) -> String {
    let mut words = String::new();
    for (i, c) in name.chars().enumerate() {
        match c {
            '_' | '-' => words.push(' '),
            c if c.is_uppercase() && i > 0 => {
                words.push(' ');
                words.extend(c.to_lowercase());
            }
            c if i == 0 => words.extend(c.to_uppercase()),
            c => words.push(c),
        }
    }
    words
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
    in_order(schema, props)
        .into_iter()
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
                title: p["title"].as_str().map_or_else(|| in_words(name), str::to_string),
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

/// What the API server said when it refused a form's object: its message
/// and, when it named fields (an admission webhook's or the schema's
/// `details.causes`), one `(field path, message)` per cause.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Refusal {
    /// The whole message, as kubectl prints it when there are no causes.
    pub message: String,
    /// One message per field, e.g. `("spec.parameters.replicas", "50 is greater than the maximum of 10")`.
    pub causes: Vec<(String, String)>,
}

impl Refusal {
    /// A refusal that names no field.
    pub fn said(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            causes: vec![],
        }
    }

    /// The API server's answer (its Status with details), or the client's error.
    pub fn of(e: &kube::Error) -> Self {
        match e {
            kube::Error::Api(s) => Self {
                message: s.message.clone(),
                causes: s
                    .details
                    .iter()
                    .flat_map(|d| &d.causes)
                    .map(|c| (c.field.clone(), c.message.clone()))
                    .collect(),
            },
            other => Self::said(other.to_string()),
        }
    }
}

/// Places each cause next to the parameter its field path names
/// (`spec.parameters.<name>`, or a path inside it) and returns what goes
/// at the top of the form: the refusal's message when no cause found its
/// field, else a headline and the causes about fields the form does not show.
pub fn place(refusal: &Refusal, fields: &mut [Field]) -> Vec<String> {
    let mut rest = vec![];
    let mut placed = 0;
    for (path, message) in &refusal.causes {
        let field = path
            .strip_prefix("spec.parameters.")
            .map(|p| p.split(['.', '[']).next().unwrap_or(p))
            .and_then(|name| fields.iter_mut().find(|f| f.name == name));
        match field {
            Some(f) => {
                f.error = Some(match f.error.take() {
                    Some(earlier) => format!("{earlier}; {message}"),
                    None => message.clone(),
                });
                placed += 1;
            }
            None if path.is_empty() => rest.push(message.clone()),
            None => rest.push(format!("{path}: {message}")),
        }
    }
    if placed == 0 {
        return vec![refusal.message.clone()];
    }
    let mut general = vec!["Not saved: change the values marked below.".to_string()];
    general.extend(rest);
    general
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_in_the_schemas_order_with_titles_or_their_names_in_words() {
        let schema = serde_json::json!({
            "x-portico-order": ["image", "message", "nowhere"],
            "properties": {
                "replicas": {"type": "integer"}, "port": {"type": "integer", "title": "Container port"},
                "message": {"type": "string"}, "image": {"type": "string"},
                "imagePullPolicy": {"type": "string"}, "max_connections": {"type": "integer"}}});
        let f = fields(&schema, &Map::new());
        let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "image",
                "message",
                "imagePullPolicy",
                "max_connections",
                "port",
                "replicas"
            ]
        );
        let titles: Vec<&str> = f.iter().map(|f| f.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Image",
                "Message",
                "Image pull policy",
                "Max connections",
                "Container port",
                "Replicas"
            ]
        );
    }
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
    fn causes_land_next_to_their_fields_and_the_rest_goes_on_top() {
        let mut f = fields(&schema(), &Map::new());
        let refusal = Refusal {
            message: "admission webhook \"validate.portico.dev\" denied the request: the parameters do not fit \
                      template webapp: ..."
                .into(),
            causes: vec![
                (
                    "spec.parameters.image".into(),
                    "\"image\" is a required property".into(),
                ),
                (
                    "spec.parameters.replicas".into(),
                    "50 is greater than the maximum of 10".into(),
                ),
                (
                    "spec.parameters.command[1]".into(),
                    "1 is not of type \"string\"".into(),
                ),
                (
                    "spec.parameters.command[2]".into(),
                    "2 is not of type \"string\"".into(),
                ),
                ("spec.parameters.unknown".into(), "not in the schema".into()),
                ("metadata.name".into(), "must be a DNS label".into()),
            ],
        };
        let general = place(&refusal, &mut f);
        let error = |n: &str| f.iter().find(|x| x.name == n).unwrap().error.clone();
        assert_eq!(
            error("replicas").as_deref(),
            Some("50 is greater than the maximum of 10")
        );
        assert_eq!(error("image").as_deref(), Some("\"image\" is a required property"));
        assert_eq!(
            error("command").as_deref(),
            Some("1 is not of type \"string\"; 2 is not of type \"string\"")
        );
        assert_eq!(error("mode"), None);
        assert_eq!(
            general,
            [
                "Not saved: change the values marked below.",
                "spec.parameters.unknown: not in the schema",
                "metadata.name: must be a DNS label"
            ]
        );
    }

    #[test]
    fn a_refusal_without_causes_is_shown_whole() {
        let mut f = fields(&schema(), &Map::new());
        let refusal = Refusal::said("deployments.portico.dev is forbidden: User \"bob\" cannot create resource");
        assert_eq!(place(&refusal, &mut f), [refusal.message.as_str()]);
        assert!(f.iter().all(|x| x.error.is_none()));
        let only_elsewhere = Refusal {
            message: "Deployment.portico.dev \"X\" is invalid: metadata.name: Invalid value".into(),
            causes: vec![("metadata.name".into(), "Invalid value".into())],
        };
        assert_eq!(place(&only_elsewhere, &mut f), [only_elsewhere.message.as_str()]);
    }

    #[test]
    fn an_api_status_with_details_becomes_causes() {
        let status: kube::core::Status = serde_json::from_value(json!({
            "status": "Failure", "code": 422, "reason": "Invalid",
            "message": "admission webhook denied the request: the parameters do not fit",
            "details": {"name": "shop", "group": "portico.dev", "kind": "Deployment", "causes": [
                {"reason": "FieldValueInvalid", "message": "too many", "field": "spec.parameters.replicas"}
            ]}
        }))
        .unwrap();
        let refusal = Refusal::of(&kube::Error::Api(Box::new(status)));
        assert_eq!(
            refusal.causes,
            [("spec.parameters.replicas".to_string(), "too many".to_string())]
        );
        assert!(refusal.message.contains("denied the request"));
    }
}
