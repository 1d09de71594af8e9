//! Unit tests of `build`.

use super::*;

fn terminal() -> Terminal {
    serde_yaml_ng::from_str(
        r#"
apiVersion: portico.dev/v1alpha1
kind: Terminal
metadata: {name: t, namespace: team-a, uid: 0a1b2c3d-0000-0000-0000-000000000000}
spec:
  host:
    namespace: team-a
    pod:
      image: alpine
      env: [{name: A, value: b}]
      labels: {app: shell}
  target:
    namespace: team-b
    roleBindings:
      - {roleRef: {kind: ClusterRole, name: edit}, bindingKind: RoleBinding, nameSuffix: edit}
      - {roleRef: {kind: ClusterRole, name: view}, bindingKind: ClusterRoleBinding, nameSuffix: view}
"#,
    )
    .unwrap()
}

fn host() -> Side {
    Side {
        namespace: "team-a".into(),
        temporary: false,
        same_as_terminal: true,
    }
}

#[test]
fn names_are_deterministic_and_short() {
    let a = Names::for_uid("0a1b2c3d-0000-0000-0000-000000000000");
    assert_eq!(a, Names::for_uid("0a1b2c3d-0000-0000-0000-000000000000"));
    assert_ne!(a.id, Names::for_uid("other").id);
    assert_eq!(a.id.len(), 10);
    assert_eq!(a.pod, format!("term-{}", a.id));
    assert_eq!(a.binding("edit"), format!("term-access-{}-edit", a.id));
}

#[test]
fn attach_role_allows_exactly_this_pod_and_service_account() {
    let t = terminal();
    let n = Names::for_uid(&t.uid().unwrap());
    let role = attach_role(&t, &n, &host());
    let rules = role.rules.unwrap();
    assert_eq!(rules.len(), 3);
    for r in &rules {
        assert_eq!(r.resource_names.as_ref().unwrap().len(), 1);
    }
    assert_eq!(rules[0].resources.as_ref().unwrap()[0], "pods/attach");
    assert_eq!(rules[0].resource_names.as_ref().unwrap()[0], n.pod);
    assert_eq!(rules[2].resource_names.as_ref().unwrap()[0], n.attach);
    let creator = Creator {
        user: "alice".into(),
        groups: vec!["developers".into()],
    };
    let rb = attach_role_binding(&t, &n, &host(), &creator);
    let subjects = rb.subjects.unwrap();
    assert_eq!(subjects[1].kind, "User");
    assert_eq!(subjects[1].name, "alice");
    assert_eq!(subjects.len(), 2, "the creator's groups get nothing");
    assert!(
        role.metadata.owner_references.is_some(),
        "same namespace: owned by the Terminal"
    );
}

#[test]
fn target_bindings_follow_the_spec() {
    let t = terminal();
    let n = Names::for_uid(&t.uid().unwrap());
    let target = Side {
        namespace: "team-b".into(),
        temporary: false,
        same_as_terminal: false,
    };
    let access = access_side(&t, true, "portico-terminals");
    assert!(!access.same_as_terminal);
    let (rbs, crbs) = target_bindings(&t, &n, &target, &access);
    assert_eq!(rbs.len(), 1);
    assert_eq!(
        rbs[0].subjects.as_ref().unwrap()[0].namespace.as_deref(),
        Some("portico-terminals"),
        "the access service account lives where no user reaches it"
    );
    assert_eq!(rbs[0].metadata.namespace.as_deref(), Some("team-b"));
    assert_eq!(rbs[0].role_ref.name, "edit");
    assert!(
        rbs[0].metadata.owner_references.is_none(),
        "other namespace: finalizer-managed"
    );
    assert_eq!(crbs.len(), 1);
    assert_eq!(
        crbs[0].subjects.as_ref().unwrap()[0].namespace.as_deref(),
        Some("portico-terminals")
    );
}

#[test]
fn pod_has_a_tty_the_kubeconfig_and_no_token() {
    let t = terminal();
    let n = Names::for_uid(&t.uid().unwrap());
    let p = pod(&t, &n, &host(), &TerminalConfig::default());
    let spec = p.spec.unwrap();
    let c = &spec.containers[0];
    assert_eq!((c.stdin, c.tty), (Some(true), Some(true)));
    assert_eq!(spec.automount_service_account_token, Some(false));
    assert!(c.env.as_ref().unwrap().iter().any(|e| e.name == "KUBECONFIG"));
    assert!(
        c.resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap()
            .contains_key("memory"),
        "defaults apply"
    );
    assert_eq!(
        spec.volumes.unwrap()[0].secret.as_ref().unwrap().secret_name.as_deref(),
        Some(n.kubeconfig_secret.as_str())
    );
    let labels = p.metadata.labels.unwrap();
    assert_eq!(labels["app"], "shell");
    assert_eq!(labels[UID_LABEL], "0a1b2c3d-0000-0000-0000-000000000000");
    assert_eq!(c.security_context.as_ref().unwrap().privileged, Some(false));
}

#[test]
fn a_token_counts_only_for_the_service_account_it_was_issued_for() {
    let t = terminal();
    let n = Names::for_uid("uid-1");
    let marks = |account_uid| TokenMarks {
        issued: "2026-12-06T10:00:00Z",
        expires: "2026-12-06T11:00:00Z",
        account_uid,
    };
    let secret = kubeconfig_secret(&t, &n, &host(), "kubeconfig", &marks(Some("sa-1")));
    assert_eq!(
        secret.metadata.annotations.as_ref().unwrap()[TOKEN_ACCOUNT_UID_ANNOTATION],
        "sa-1"
    );
    let issued_for = |s: &k8s_openapi::api::core::v1::Secret| {
        s.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(TOKEN_ACCOUNT_UID_ANNOTATION).cloned())
    };
    assert!(token_for_account(issued_for(&secret).as_deref(), Some("sa-1")));
    assert!(
        !token_for_account(issued_for(&secret).as_deref(), Some("sa-2")),
        "the account was made again"
    );
    assert!(
        token_for_account(issued_for(&secret).as_deref(), None),
        "an unknown UID does not count against it"
    );
    let older = kubeconfig_secret(&t, &n, &host(), "kubeconfig", &marks(None));
    assert!(
        token_for_account(issued_for(&older).as_deref(), Some("sa-1")),
        "issued before the UID was recorded: kept, so an upgrade issues no token"
    );
}
