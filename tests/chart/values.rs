//! The values schema: typos, wrong types and unknown choices are refused
//! naming the key; every key is typed and described; the documented
//! operator configuration passes it and loads.

use crate::*;

#[test]
fn the_values_schema_refuses_typos_wrong_types_and_unknown_choices_naming_the_key() {
    // (a value, what the refusal names, what it says)
    let cases = [
        ("dashbaord.enabled=true", "'dashbaord'", "not allowed"),
        ("operator.replicas=two", "/operator/replicas", "want integer"),
        ("webhook.tls=certmanager", "/webhook/tls", "'certManager'"),
        ("operator.logFormat=yaml", "/operator/logFormat", "'json'"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy", "'IfNotPresent'"),
        ("dashboard.ingress.enable=true", "'enable'", "not allowed"),
        (
            "operator.config.terminal.idelTimeout.default=1h",
            "'idelTimeout'",
            "not allowed",
        ),
        (
            "operator.config.sessionTokenLifetime=1 hour",
            "/operator/config/sessionTokenLifetime",
            "pattern",
        ),
        (
            "flowControl.objects.nominalConcurencyShares=40",
            "'nominalConcurencyShares'",
            "not allowed",
        ),
        (
            "flowControl.objects.lendablePercent=150",
            "/flowControl/objects/lendablePercent",
            "maximum",
        ),
        // Set by the chart itself: a value there would be silently replaced.
        (
            "operator.config.metrics.bindAddress=0.0.0.0:9090",
            "'metrics'",
            "not allowed",
        ),
    ];
    for (set, key, says) in cases {
        for args in [
            &["template", "portico", CHART, "--set", set][..],
            &["lint", CHART, "--set", set][..],
        ] {
            let refusal = helm_refusal(args);
            assert!(
                refusal.contains(key) && refusal.contains(says),
                "helm {}: the refusal should name {key} and say {says:?}:\n{refusal}",
                args.join(" ")
            );
        }
    }
    // The same keys, spelled and typed right, render; free-form maps stay open.
    let docs = render(&[
        "--set",
        "dashboard.enabled=false",
        "--set",
        "operator.replicas=3",
        "--set",
        "webhook.tls=certManager",
        "--set",
        "operator.logFormat=text",
        "--set",
        "operator.config.sessionTokenLifetime=1h30m",
        "--set",
        "operator.nodeSelector.example\\.com/disk=ssd",
        "--set",
        "operator.resources.limits.ephemeral-storage=1Gi",
    ]);
    let d: Deployment = typed(doc(&docs, "Deployment", "portico-operator"));
    assert_eq!(d.spec.unwrap().replicas, Some(3));
    assert_eq!(
        operator_config(&docs).session_token_lifetime,
        std::time::Duration::from_secs(90 * 60)
    );
}

/// Every key under `path` of `values` has a type and a description in
/// `schema`; free-form maps (a schema without `properties`) end the walk.
fn undescribed(path: &str, values: &Value, schema: &Value, out: &mut Vec<String>) {
    match values {
        Value::Object(map) => {
            let Some(props) = schema["properties"].as_object() else {
                return;
            };
            for (k, v) in map {
                let key = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let Some(s) = props.get(k) else {
                    out.push(format!("{key}: not in the schema"));
                    continue;
                };
                if s["description"].as_str().is_none_or(str::is_empty) {
                    out.push(format!("{key}: no description"));
                }
                if ["type", "oneOf", "enum"].iter().all(|t| s.get(t).is_none()) {
                    out.push(format!("{key}: no type"));
                }
                undescribed(&key, v, s, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                undescribed(&format!("{path}[{i}]"), item, &schema["items"], out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_key_of_values_yaml_is_typed_and_described_in_the_schema() {
    let root = Path::new(CHART);
    let values: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(root.join("values.yaml")).unwrap()).unwrap();
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("values.schema.json")).unwrap()).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let mut out = vec![];
    undescribed("", &values, &schema, &mut out);
    assert!(out.is_empty(), "charts/portico/values.schema.json:\n{}", out.join("\n"));
}

#[test]
fn the_documented_operator_configuration_passes_the_schema_and_loads() {
    // config/operator.yaml documents every key; those the chart sets itself are not values.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/operator.yaml")).unwrap();
    let mut cfg: Value = serde_yaml_ng::from_str(&text).unwrap();
    for key in ["webhook", "leaderElection", "metrics"] {
        cfg.as_object_mut().unwrap().remove(key).expect("a documented section");
    }
    cfg["deployment"].as_object_mut().unwrap().remove("seedSecret");
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        serde_yaml_ng::to_string(&json!({"operator": {"config": cfg}})).unwrap(),
    )
    .unwrap();
    let loaded = operator_config(&render(&["-f", values.to_str().unwrap()]));
    let names: Vec<&str> = loaded.session_profiles.iter().map(|p| p.name.as_str()).collect();
    let documented: Vec<&str> = cfg["sessionProfiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, documented);
}
