//! Unit tests of `mutate`.

use super::*;

fn request(op: &str, user: &str, object: Value, old: Option<Value>) -> AdmissionRequest<DynamicObject> {
    crate::webhook::testing::terminal_request(op, user, &["developers", "system:authenticated"], object, old)
}

fn terminal(annotations: Value, spec_extra: Value) -> Value {
    let mut spec =
        json!({"host": {"namespace": "team-a", "pod": {"image": "alpine"}}, "target": {"namespace": "team-a"}});
    json_patch::merge(&mut spec, &spec_extra);
    json!({"apiVersion": "portico.dev/v1alpha1", "kind": "Terminal",
           "metadata": {"name": "t", "namespace": "team-a", "annotations": annotations}, "spec": spec})
}

fn apply(obj: &Value, ops: Vec<Value>) -> Value {
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).unwrap();
    let mut out = obj.clone();
    json_patch::patch(&mut out, &patch).unwrap();
    out
}

fn now() -> Timestamp {
    "2026-03-01T10:00:00Z".parse().unwrap()
}

fn cfg() -> OperatorConfig {
    OperatorConfig::default()
}

#[test]
fn create_records_the_requester_and_defaults_lifetimes() {
    let obj = json!({"apiVersion": "portico.dev/v1alpha1", "kind": "Terminal", "metadata": {"name": "t"},
                     "spec": {"host": {"namespace": "a", "pod": {"image": "x"}}, "target": {"namespace": "a"}}});
    let req = request("CREATE", "alice", obj.clone(), None);
    let out = apply(
        &obj,
        mutate(&req, Kind::Terminal, now(), &cfg(), || "x".into()).unwrap(),
    );
    let c: Creator = serde_json::from_str(out["metadata"]["annotations"][CREATED_BY].as_str().unwrap()).unwrap();
    assert_eq!(c.user, "alice");
    assert_eq!(c.groups, ["developers", "system:authenticated"]);
    assert_eq!(out["spec"]["idleTimeout"], "1800s");
    assert_eq!(out["spec"]["maxLifetime"], "28800s");
}

#[test]
fn create_keeps_given_lifetimes_and_names_a_temporary_namespace() {
    let obj = terminal(
        json!({}),
        json!({"host": {"namespace": null, "temporaryNamespace": true}, "idleTimeout": "5m"}),
    );
    let req = request("CREATE", "alice", obj.clone(), None);
    let out = apply(
        &obj,
        mutate(&req, Kind::Terminal, now(), &cfg(), || "abc123".into()).unwrap(),
    );
    assert_eq!(out["spec"]["idleTimeout"], "5m");
    assert_eq!(out["metadata"]["annotations"][TEMPORARY_NAMESPACE], "term-abc123");
}

#[test]
fn the_cleanup_finalizer_is_there_from_creation_and_kept_until_deletion() {
    let mutated = |op: &str, obj: &Value, old: Option<Value>| {
        let req = request(op, "alice", obj.clone(), old);
        apply(obj, mutate(&req, Kind::Terminal, now(), &cfg(), || "x".into()).unwrap())
    };
    let created = mutated("CREATE", &terminal(json!({}), json!({})), None);
    assert_eq!(created["metadata"]["finalizers"], json!([FINALIZER]));

    let mut theirs = terminal(json!({}), json!({}));
    theirs["metadata"]["finalizers"] = json!(["example.com/keep"]);
    let created = mutated("CREATE", &theirs, None);
    assert_eq!(
        created["metadata"]["finalizers"],
        json!(["example.com/keep", FINALIZER])
    );
    assert_eq!(mutated("CREATE", &created, None), created, "added once");

    // An apply that never listed it does not drop it ...
    let mut dropped = created.clone();
    dropped["metadata"]["finalizers"] = json!(["example.com/keep"]);
    let updated = mutated("UPDATE", &dropped, Some(created.clone()));
    assert_eq!(
        updated["metadata"]["finalizers"],
        json!(["example.com/keep", FINALIZER])
    );
    // ... but once the object is being deleted the operator removes it.
    dropped["metadata"]["deletionTimestamp"] = json!("2026-03-01T10:00:00Z");
    let updated = mutated("UPDATE", &dropped, Some(created));
    assert_eq!(updated["metadata"]["finalizers"], json!(["example.com/keep"]));
    // An object that never had it (made before this webhook) gets it from the controller.
    let old = terminal(json!({}), json!({}));
    let updated = mutated("UPDATE", &old, Some(old.clone()));
    assert!(updated["metadata"].get("finalizers").is_none());

    for kind in [Kind::Deployment, Kind::SessionClaim] {
        let req = request("CREATE", "alice", terminal(json!({}), json!({})), None);
        let ops = mutate(&req, kind, now(), &cfg(), || "x".into()).unwrap();
        assert!(
            ops.contains(&json!({"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]})),
            "{kind:?}: {ops:?}"
        );
    }
}

#[test]
fn a_forged_creator_is_denied() {
    let forged = Creator {
        user: "carol".into(),
        groups: vec!["portico-admins".into()],
    }
    .to_annotation();
    let obj = terminal(json!({CREATED_BY: forged}), json!({}));
    let req = request("CREATE", "alice", obj, None);
    let d = mutate(&req, Kind::Terminal, now(), &cfg(), || "x".into()).unwrap_err();
    assert_eq!(d.code, 403);
    assert!(d.message.contains("cannot be set by a client"), "{}", d.message);
}

#[test]
fn a_client_set_temporary_namespace_is_denied() {
    for spec in [
        json!({}),
        json!({"host": {"namespace": null, "temporaryNamespace": true}}),
    ] {
        let obj = terminal(json!({TEMPORARY_NAMESPACE: "team-b"}), spec);
        let req = request("CREATE", "alice", obj, None);
        let d = mutate(&req, Kind::Terminal, now(), &cfg(), || "x".into()).unwrap_err();
        assert_eq!(d.code, 403);
        assert!(
            d.message.contains("a client cannot set it") && d.message.contains("\"team-b\""),
            "{}",
            d.message
        );
    }
}

#[test]
fn keepalive_by_the_creator_sets_the_server_time() {
    let creator = Creator {
        user: "alice".into(),
        groups: vec![],
    }
    .to_annotation();
    let old = terminal(json!({CREATED_BY: creator}), json!({"idleTimeout": "5m"}));
    let new = terminal(
        json!({CREATED_BY: creator, OPERATION: KEEPALIVE}),
        json!({"idleTimeout": "5m"}),
    );
    let req = request("UPDATE", "alice", new.clone(), Some(old));
    let out = apply(
        &new,
        mutate(&req, Kind::Terminal, now(), &cfg(), || "x".into()).unwrap(),
    );
    assert_eq!(
        out["metadata"]["annotations"][LAST_HEARTBEAT_AT],
        "2026-03-01T10:00:00.000Z"
    );
    assert!(out["metadata"]["annotations"].get(OPERATION).is_none());
}

#[test]
fn keepalive_by_someone_else_or_unknown_operations_are_denied() {
    let creator = Creator {
        user: "alice".into(),
        groups: vec![],
    }
    .to_annotation();
    let old = terminal(json!({CREATED_BY: creator}), json!({}));
    let new = terminal(json!({CREATED_BY: creator, OPERATION: KEEPALIVE}), json!({}));
    let d = mutate(
        &request("UPDATE", "bob", new, Some(old.clone())),
        Kind::Terminal,
        now(),
        &cfg(),
        || "x".into(),
    )
    .unwrap_err();
    assert_eq!(d.code, 403);
    assert!(
        d.message.contains("only the creator (alice)") && d.message.contains("bob"),
        "{}",
        d.message
    );
    let new = terminal(json!({CREATED_BY: creator, OPERATION: "extend"}), json!({}));
    let d = mutate(
        &request("UPDATE", "alice", new, Some(old)),
        Kind::Terminal,
        now(),
        &cfg(),
        || "x".into(),
    )
    .unwrap_err();
    assert!(d.message.contains("unknown operation \"extend\""), "{}", d.message);
}

#[test]
fn update_carries_forward_what_admission_added() {
    let creator = Creator {
        user: "alice".into(),
        groups: vec![],
    }
    .to_annotation();
    let old = terminal(
        json!({CREATED_BY: creator, TEMPORARY_NAMESPACE: "term-x", LAST_HEARTBEAT_AT: "2026-03-01T09:00:00.000Z"}),
        json!({"idleTimeout": "1800s", "maxLifetime": "28800s"}),
    );
    let mut new = terminal(json!({}), json!({}));
    new["metadata"]["annotations"] = Value::Null;
    let req = request("UPDATE", "flux", new.clone(), Some(old.clone()));
    let out = apply(
        &new,
        mutate(&req, Kind::Terminal, now(), &cfg(), || "x".into()).unwrap(),
    );
    assert_eq!(out["metadata"]["annotations"], old["metadata"]["annotations"]);
    assert_eq!(out["spec"], old["spec"]);
}
