//! The validating webhook's checks that every kind shares (pure): size,
//! the creator, updater, temporary-namespace and heartbeat annotations, and
//! who acts on another user's object; then the kind's own rules (in its
//! module), which say what is left to check with API calls ([`Followup`]).

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::core::{DynamicObject, admission::AdmissionRequest, admission::Operation};

use super::{Denial, Kind, annotation, ownership};
use crate::{
    api::{
        Terminal,
        keys::{CREATED_BY, LAST_HEARTBEAT_AT, OPERATION, TEMPORARY_NAMESPACE, UPDATED_BY},
    },
    config::OperatorConfig,
    creator::Creator,
};

/// How far ahead of the server's clock a heartbeat may be (clock steps between replicas).
pub const HEARTBEAT_SKEW: SignedDuration = SignedDuration::from_secs(2);

/// What is left to check with API calls after the pure checks pass.
#[derive(Debug)]
pub enum Followup {
    /// A new Terminal: authorize it against its creator's RBAC.
    Terminal(Creator, Box<Terminal>),
    /// A new SessionClaim: count the creator's active sessions of this profile.
    Session(Creator, String),
    /// Someone acts on another user's Terminal or SessionClaim: they need `override`.
    Override(ownership::Override),
    /// A Deployment: check its template, the creator's groups and the parameters.
    Deployment {
        /// Who created it.
        creator: Creator,
        /// Whose rights apply this version: the creator, or who changed the spec.
        applier: Creator,
        /// The template's name and catalog namespace.
        template: (String, Option<String>),
        /// The parameters now.
        params: serde_json::Value,
        /// The parameters before an update.
        old_params: Option<serde_json::Value>,
    },
}

/// Checks one request; returns what still needs API calls. `operator` is the
/// operator's own user name, whose finalizer updates and expiry deletes are
/// never someone acting on another user's object.
pub fn validate(
    req: &AdmissionRequest<DynamicObject>,
    kind: Kind,
    now: Timestamp,
    cfg: &OperatorConfig,
    operator: Option<&str>,
) -> Result<Option<Followup>, Denial> {
    let requester = Creator {
        user: req.user_info.username.clone().unwrap_or_default(),
        groups: req.user_info.groups.clone().unwrap_or_default(),
    };
    let followup = match req.operation {
        Operation::Delete => None,
        _ => validate_object(req, kind, now, cfg)?,
    };
    let Some(old) = req.old_object.as_ref() else {
        return Ok(followup);
    };
    // An object Portico never acted on (no creator) follows plain RBAC.
    let Ok(creator) = Creator::from_annotations(old.metadata.annotations.as_ref()) else {
        return Ok(followup);
    };
    let spec_changed = req
        .object
        .as_ref()
        .is_some_and(|o| o.data.get("spec") != old.data.get("spec"));
    match ownership::act_on_others(kind, &req.operation, spec_changed, &creator, &requester.user, operator) {
        Some(act) => Ok(Some(Followup::Override(ownership::Override {
            kind,
            namespace: req.namespace.clone().unwrap_or_default(),
            name: req.name.clone(),
            creator,
            requester,
            act,
        }))),
        None => Ok(followup),
    }
}

fn validate_object(
    req: &AdmissionRequest<DynamicObject>,
    kind: Kind,
    now: Timestamp,
    cfg: &OperatorConfig,
) -> Result<Option<Followup>, Denial> {
    let Some(obj) = req.object.as_ref() else {
        return Ok(None);
    };
    let size = serde_json::to_vec(obj).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > cfg.webhook.max_object_bytes {
        return Err(Denial::invalid(format!(
            "this {} is {size} bytes; Portico accepts at most {} bytes; make it smaller",
            kind.name(),
            cfg.webhook.max_object_bytes
        )));
    }
    if annotation(obj, OPERATION).is_some() {
        return Err(Denial::invalid(format!(
            "{OPERATION} is consumed by Portico's mutating webhook, which did not run; check the webhook configuration"
        )));
    }
    let creator = Creator::from_annotations(obj.metadata.annotations.as_ref())
        .map_err(|e| Denial::invalid(format!("{e}; check that Portico's mutating webhook is configured")))?;
    let requester = req.user_info.username.clone().unwrap_or_default();

    if let Operation::Update = req.operation
        && let Some(old) = req.old_object.as_ref()
    {
        if annotation(old, CREATED_BY) != annotation(obj, CREATED_BY) {
            return Err(Denial::forbidden(format!(
                "{CREATED_BY} is immutable; it records who created this {} and cannot change",
                kind.name()
            )));
        }
        let spec_same = old.data.get("spec") == obj.data.get("spec");
        if spec_same && annotation(old, UPDATED_BY) != annotation(obj, UPDATED_BY) {
            return Err(Denial::forbidden(format!(
                "{UPDATED_BY} is written by Portico when the spec changes, naming who changed it; it cannot be set"
            )));
        }
        if !spec_same
            && kind == Kind::Deployment
            && annotation(obj, UPDATED_BY)
                .and_then(|v| Creator::parse(v).ok())
                .map(|c| c.user)
                != Some(requester.clone())
        {
            return Err(Denial::forbidden(format!(
                "{UPDATED_BY} must name the user changing the spec ({requester}); check that Portico's mutating \
                 webhook is configured"
            )));
        }
        if annotation(old, TEMPORARY_NAMESPACE) != annotation(obj, TEMPORARY_NAMESPACE) {
            return Err(Denial::forbidden(format!(
                "{TEMPORARY_NAMESPACE} is immutable; it names the namespace Portico created for this {} \
                 and cannot change",
                kind.name()
            )));
        }
        let new_hb = annotation(obj, LAST_HEARTBEAT_AT);
        if new_hb != annotation(old, LAST_HEARTBEAT_AT) {
            if requester != creator.user {
                return Err(Denial::forbidden(format!(
                    "only the creator ({}) may change {LAST_HEARTBEAT_AT}; the request comes from {requester}",
                    creator.user
                )));
            }
            if let Some(v) = new_hb {
                check_heartbeat(v, now)?;
            }
        }
    }
    if let Operation::Create = req.operation {
        if let Some(v) = annotation(obj, LAST_HEARTBEAT_AT) {
            check_heartbeat(v, now)?;
        }
        if annotation(obj, UPDATED_BY).is_some() {
            return Err(Denial::forbidden(format!(
                "{UPDATED_BY} is written by Portico when the spec changes; remove it"
            )));
        }
    }

    // An update that leaves the spec alone (finalizers, labels, heartbeats,
    // deletion) is not judged against today's templates, profiles or caps:
    // otherwise a removed template or a lowered cap would block deletion.
    if let (Operation::Update, Some(old)) = (&req.operation, req.old_object.as_ref())
        && (old.data.get("spec") == obj.data.get("spec") || obj.metadata.deletion_timestamp.is_some())
    {
        if kind == Kind::SessionClaim {
            super::session::check_labels(old, obj)?;
        }
        return Ok(None);
    }
    match kind {
        Kind::SessionClaim => super::session::validate(req, obj, creator, cfg),
        Kind::Deployment => super::deployment::validate(req, obj, creator),
        Kind::Terminal => super::terminal::validate(req, obj, creator, cfg),
    }
}

fn check_heartbeat(value: &str, now: Timestamp) -> Result<(), Denial> {
    let t: Timestamp = value.parse().map_err(|_| {
        Denial::invalid(format!(
            "{LAST_HEARTBEAT_AT} {value:?} is not an RFC 3339 time; request a keepalive instead"
        ))
    })?;
    if t > now.saturating_add(HEARTBEAT_SKEW).unwrap_or(Timestamp::MAX) {
        return Err(Denial::invalid(format!(
            "{LAST_HEARTBEAT_AT} {value} is in the future (server time {now}); \
             send {OPERATION}: keepalive and Portico records the server's time"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
    fn a_shared_host_binds_only_the_allowed_roles_in_itself() {
        let binding = |kind: &str, role_kind: &str, role: &str| json!([{"roleRef": {"kind": role_kind, "name": role}, "bindingKind": kind, "nameSuffix": "x"}]);
        let allowed = OperatorConfig::default().terminal.shared_host_roles;
        let parse = |v: Value| -> Terminal { serde_json::from_value(v).unwrap() };
        let check = |spec: Value| {
            super::super::terminal::check_shared_host(&parse(terminal(json!({}), json!({}), spec)), &allowed)
        };
        for role in ["view", "edit"] {
            let spec = json!({"target": {"roleBindings": binding("RoleBinding", "ClusterRole", role)}});
            assert!(check(spec).is_ok(), "{role} in the host namespace itself");
        }
        assert!(
            check(json!({"target": {"roleBindings": []}})).is_ok(),
            "no access at all"
        );
        let refused = [
            (
                json!({"target": {"roleBindings": binding("ClusterRoleBinding", "ClusterRole", "view")}}),
                "act cluster-wide",
            ),
            (
                json!({"target": {"namespace": "team-b", "roleBindings": binding("RoleBinding", "ClusterRole", "edit")}}),
                "reach namespace team-b",
            ),
            (
                json!({"target": {"roleBindings": binding("RoleBinding", "ClusterRole", "admin")}}),
                "ClusterRole admin is not one the platform admins allow",
            ),
            (
                json!({"target": {"roleBindings": binding("RoleBinding", "Role", "edit")}}),
                "Role edit is not one",
            ),
        ];
        for (spec, says) in refused {
            let d = check(spec.clone()).unwrap_err();
            assert!(
                d.message.contains(says)
                    && d.message.contains("namespace team-a")
                    && d.message.contains("spec.host.temporaryNamespace: true"),
                "{spec}: {}",
                d.message
            );
        }
        let apart = json!({"host": {"namespace": null, "temporaryNamespace": true},
            "target": {"roleBindings": binding("ClusterRoleBinding", "ClusterRole", "admin")}});
        assert!(
            check(apart).is_ok(),
            "a temporary host namespace is the creator's alone"
        );
    }

    #[test]
    fn lifetimes_above_the_caps_are_refused() {
        let obj = terminal(json!({CREATED_BY: alice()}), json!({}), json!({"idleTimeout": "9h"}));
        let d = check("CREATE", "alice", obj, None).unwrap_err();
        assert!(
            d.message.contains("spec.idleTimeout") && d.message.contains("above the maximum"),
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
    }
}
