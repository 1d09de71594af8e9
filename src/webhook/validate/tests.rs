//! Unit tests of `validate`.

use super::*;
use serde_json::{Value, json};

fn request(op: &str, user: &str, object: Value, old: Option<Value>) -> AdmissionRequest<DynamicObject> {
    crate::webhook::testing::terminal_request(op, user, &["developers"], object, old)
}

fn terminal(annotations: Value, pod_extra: Value, spec_extra: Value) -> Value {
    let mut pod = json!({"image": "alpine"});
    json_patch::merge(&mut pod, &pod_extra);
    let mut spec = json!({"host": {"namespace": "team-a", "pod": pod}, "target": {"namespace": "team-a"}});
    json_patch::merge(&mut spec, &spec_extra);
    json!({"apiVersion": "portico.dev/v1alpha1", "kind": "Terminal",
           "metadata": {"name": "t", "namespace": "team-a", "annotations": annotations}, "spec": spec})
}

fn alice() -> String {
    Creator {
        user: "alice".into(),
        groups: vec!["developers".into()],
    }
    .to_annotation()
}

fn now() -> Timestamp {
    "2026-03-01T10:00:00Z".parse().unwrap()
}

const OPERATOR: &str = "system:serviceaccount:portico-system:portico-operator";

fn check(op: &str, user: &str, obj: Value, old: Option<Value>) -> Result<bool, Denial> {
    validate(
        &request(op, user, obj, old),
        Kind::Terminal,
        now(),
        &OperatorConfig::default(),
        Some(OPERATOR),
    )
    .map(|r| r.is_some())
}

#[test]
fn a_good_create_asks_for_authorization() {
    assert!(
        check(
            "CREATE",
            "alice",
            terminal(json!({CREATED_BY: alice()}), json!({}), json!({})),
            None
        )
        .unwrap()
    );
}

#[test]
fn an_object_without_creator_means_the_mutating_webhook_did_not_run() {
    let d = check("CREATE", "alice", terminal(json!({}), json!({}), json!({})), None).unwrap_err();
    assert!(d.message.contains("mutating webhook"), "{}", d.message);
}

#[test]
fn privileged_pods_need_a_configured_group() {
    let obj = terminal(
        json!({CREATED_BY: alice()}),
        json!({"privileged": true, "hostPID": true}),
        json!({}),
    );
    let d = check("CREATE", "alice", obj.clone(), None).unwrap_err();
    assert_eq!(d.code, 403);
    assert!(d.message.contains("privileged, hostPID"), "{}", d.message);
    let fields: Vec<&str> = d.causes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["spec.host.pod.privileged", "spec.host.pod.hostPID"]);
    assert!(
        d.causes[1]
            .message
            .starts_with("alice may not request hostPID: that needs membership")
    );
    let mut cfg = OperatorConfig::default();
    cfg.terminal.privileged_groups = vec!["developers".into()];
    assert!(
        validate(
            &request("CREATE", "alice", obj, None),
            Kind::Terminal,
            now(),
            &cfg,
            None
        )
        .is_ok()
    );
}

#[test]
fn updates_that_leave_the_spec_alone_are_not_judged_against_todays_caps() {
    // Created under a higher cap; the operator's finalizer update must still pass.
    let old = terminal(json!({CREATED_BY: alice()}), json!({}), json!({"idleTimeout": "9h"}));
    let mut new = old.clone();
    new["metadata"]["finalizers"] = json!(["portico.dev/cleanup"]);
    assert!(!check("UPDATE", OPERATOR, new, Some(old)).unwrap());
}

#[test]
fn the_temporary_namespace_annotation_is_immutable() {
    let old = terminal(
        json!({CREATED_BY: alice(), TEMPORARY_NAMESPACE: "term-abc"}),
        json!({}),
        json!({}),
    );
    let new = terminal(
        json!({CREATED_BY: alice(), TEMPORARY_NAMESPACE: "team-b"}),
        json!({}),
        json!({}),
    );
    let d = check("UPDATE", "alice", new, Some(old)).unwrap_err();
    assert_eq!(d.code, 403);
    assert!(d.message.contains("temporary-namespace is immutable"), "{}", d.message);
    assert_eq!(
        d.causes[0].field,
        "metadata.annotations[portico.dev/temporary-namespace]"
    );
}

#[test]
fn deleting_someone_elses_terminal_needs_override_but_not_ones_own() {
    let old = terminal(json!({CREATED_BY: alice()}), json!({}), json!({}));
    let mut req = request("DELETE", "bob", Value::Null, Some(old.clone()));
    req.object = None;
    let f = validate(&req, Kind::Terminal, now(), &OperatorConfig::default(), Some(OPERATOR)).unwrap();
    match f {
        Some(Followup::Override(o)) => {
            assert_eq!((o.creator.user.as_str(), o.requester.user.as_str()), ("alice", "bob"));
            assert_eq!(o.act, ownership::Act::End);
        }
        other => panic!("expected an override check, got {other:?}"),
    }
    for user in ["alice", OPERATOR] {
        let mut req = request("DELETE", user, Value::Null, Some(old.clone()));
        req.object = None;
        let f = validate(&req, Kind::Terminal, now(), &OperatorConfig::default(), Some(OPERATOR)).unwrap();
        assert!(f.is_none(), "{user}: {f:?}");
    }
}

#[test]
fn lifetimes_above_the_caps_are_refused_one_cause_a_field() {
    let obj = terminal(json!({CREATED_BY: alice()}), json!({}), json!({"idleTimeout": "9h"}));
    let d = check("CREATE", "alice", obj, None).unwrap_err();
    assert!(
        d.message.contains("spec.idleTimeout") && d.message.contains("above the maximum"),
        "{}",
        d.message
    );
    assert_eq!(d.causes.len(), 1, "{:?}", d.causes);
    let both = terminal(
        json!({CREATED_BY: alice()}),
        json!({}),
        json!({"idleTimeout": "9h", "maxLifetime": "999h"}),
    );
    let d = check("CREATE", "alice", both, None).unwrap_err();
    assert_eq!(d.code, 422);
    let causes: Vec<(&str, bool)> = d
        .causes
        .iter()
        .map(|c| {
            (
                c.field.as_str(),
                c.message.contains("above the maximum") && !c.message.contains("spec."),
            )
        })
        .collect();
    assert_eq!(causes, [("spec.idleTimeout", true), ("spec.maxLifetime", true)]);
    assert!(
        d.message.contains("spec.maxLifetime 999h is above the maximum"),
        "{}",
        d.message
    );
}

#[test]
fn heartbeats_in_the_future_or_by_others_are_refused() {
    let old = terminal(json!({CREATED_BY: alice()}), json!({}), json!({}));
    let future = terminal(
        json!({CREATED_BY: alice(), LAST_HEARTBEAT_AT: "2026-03-01T11:00:00Z"}),
        json!({}),
        json!({}),
    );
    let d = check("UPDATE", "alice", future, Some(old.clone())).unwrap_err();
    assert!(d.message.contains("in the future"), "{}", d.message);
    let past = terminal(
        json!({CREATED_BY: alice(), LAST_HEARTBEAT_AT: "2026-03-01T09:59:00Z"}),
        json!({}),
        json!({}),
    );
    let d = check("UPDATE", "bob", past.clone(), Some(old.clone())).unwrap_err();
    assert!(d.message.contains("only the creator (alice)"), "{}", d.message);
    assert!(!check("UPDATE", "alice", past, Some(old)).unwrap());
}

#[test]
fn the_creator_annotation_is_immutable_and_size_is_bounded() {
    let old = terminal(json!({CREATED_BY: alice()}), json!({}), json!({}));
    let bob = Creator {
        user: "bob".into(),
        groups: vec![],
    }
    .to_annotation();
    let d = check(
        "UPDATE",
        "bob",
        terminal(json!({CREATED_BY: bob}), json!({}), json!({})),
        Some(old),
    )
    .unwrap_err();
    assert!(d.message.contains("immutable"), "{}", d.message);
    let big = terminal(
        json!({CREATED_BY: alice(), "x": "y".repeat(70_000)}),
        json!({}),
        json!({}),
    );
    let d = check("CREATE", "alice", big, None).unwrap_err();
    assert!(d.message.contains("at most 65536 bytes"), "{}", d.message);
    assert!(d.causes.is_empty(), "the whole object, no one field: {:?}", d.causes);
}
