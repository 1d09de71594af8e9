//! The threat model as tests: one test per way a user could reach, change,
//! adopt or leave behind what is not theirs, each attempted on a real control
//! plane with the operator and its webhook running, each refused with a
//! message that says what is wrong, and nothing that existed changed.
//!
//! Users: alice and bob edit team-a and team-b (the demo tenants), carol is
//! admin everywhere; dave is a second editor of team-a; grace may create
//! namespaces and edits a namespace of her own; frank claims sessions.

mod common;

use common::{
    deployment,
    fixtures::{self, With, claim},
    shared_with_operator, test_namespace,
    wait::{refused, until},
};
use futures::future::join_all;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use portico::api::{Deployment, SessionClaim, Terminal, deployment::Health, keys};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

type User = (&'static str, &'static [&'static str]);
const ALICE: User = ("alice", &["developers", "system:authenticated"]);
const BOB: User = ("bob", &["developers", "system:authenticated"]);
const CAROL: User = ("carol", &["portico-admins", "system:authenticated"]);
const DAVE: User = ("dave", &["developers", "system:authenticated"]);
const GRACE: User = ("grace", &["developers", "system:authenticated"]);
const FRANK: User = ("frank", &["developers", "system:authenticated"]);

async fn client(user: User) -> Client {
    shared_with_operator().client_as(user.0, user.1).await.unwrap()
}

async fn admin() -> Client {
    shared_with_operator().admin_client().await.unwrap()
}

fn from<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// Applies RBAC or other objects as admin.
async fn grant(objects: Vec<Value>) {
    let admin = admin().await;
    for o in objects {
        let kind = o["kind"].as_str().unwrap().to_string();
        let text = serde_json::to_string(&o).unwrap();
        let out = shared_with_operator()
            .kubectl()
            .args(["apply", "--server-side", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(text.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(
            out.status.success(),
            "apply {kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    portico::install::wait_aggregated(&admin).await.unwrap();
}

fn edit_binding(user: &str, ns: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": format!("{user}-edit"), "namespace": ns},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
           "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})
}

fn terminal(name: &str, host: Value, target: Value) -> Terminal {
    fixtures::terminal(name).with(json!({"spec": {"host": host, "target": target}}))
}

fn stalled_with(t: Option<&Terminal>, reason: &str) -> bool {
    t.and_then(|t| t.status.as_ref()).is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True" && c.reason == reason)
    })
}

/// grace: may create namespaces, edits a namespace of her own.
async fn grace_namespace() -> String {
    let ns = test_namespace("grace").await;
    grant(vec![
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "abuse-create-namespaces"},
               "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "abuse-grace-namespaces"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "abuse-create-namespaces"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "grace"}]}),
        edit_binding("grace", &ns),
    ])
    .await;
    ns
}

#[tokio::test]
async fn a_client_cannot_choose_the_temporary_namespace_and_take_over_another_one() {
    let ns = grace_namespace().await;
    let mut t = terminal("pick", json!({"namespace": ns}), json!({"temporaryNamespace": true}));
    t.annotations_mut()
        .insert(keys::TEMPORARY_NAMESPACE.into(), "team-b".into());
    let api: Api<Terminal> = Api::namespaced(client(GRACE).await, &ns);
    let (code, msg) = refused(api.create(&PostParams::default(), &t).await);
    assert_eq!(code, 403, "{msg}");
    assert!(
        msg.contains("temporary-namespace is written by Portico") && msg.contains("\"team-b\""),
        "{msg}"
    );
    assert!(api.get_opt("pick").await.unwrap().is_none(), "nothing was created");
}

#[tokio::test]
async fn the_temporary_namespace_cannot_be_rewritten_and_only_a_marked_one_is_deleted() {
    let ns = grace_namespace().await;
    let api: Api<Terminal> = Api::namespaced(client(GRACE).await, &ns);
    let t = terminal("temp", json!({"namespace": ns}), json!({"temporaryNamespace": true}));
    api.create(&PostParams::default(), &t).await.unwrap();
    let admin_terminals: Api<Terminal> = Api::namespaced(admin().await, &ns);
    let t = until(&admin_terminals, "temp", "a host namespace", |t| {
        t.and_then(|t| t.status.as_ref()).is_some_and(|s| s.pod_name.is_some())
    })
    .await
    .unwrap();
    let temp = t.annotations()[keys::TEMPORARY_NAMESPACE].clone();
    let namespaces: Api<Namespace> = Api::all(admin().await);
    until(&namespaces, &temp, "the temporary namespace", |n| n.is_some()).await;

    // The creator rewrites the annotation to another namespace: refused.
    let patch = json!({"metadata": {"annotations": {keys::TEMPORARY_NAMESPACE: "team-b"}}});
    let (code, msg) = refused(api.patch("temp", &PatchParams::default(), &Patch::Merge(&patch)).await);
    assert_eq!(code, 403, "{msg}");
    assert!(msg.contains("temporary-namespace is immutable"), "{msg}");

    // A namespace without the Terminal's mark is never deleted by it.
    let unmark = json!({"metadata": {"labels": {keys::TERMINAL_UID_LABEL: null}}});
    namespaces
        .patch(&temp, &PatchParams::default(), &Patch::Merge(&unmark))
        .await
        .unwrap();
    // The operator's watch of what it made sees the mark go, and its next
    // pass refuses to use the namespace.
    let t = until(&admin_terminals, "temp", "Stalled NamespaceNotOwned", |t| {
        stalled_with(t, "NamespaceNotOwned")
    })
    .await;
    let message = t.unwrap().status.unwrap().message.unwrap();
    assert!(message.contains("was not created for this Terminal"), "{message}");
    api.delete("temp", &DeleteParams::default()).await.unwrap();
    until(&admin_terminals, "temp", "the Terminal gone", |t| t.is_none()).await;
    let kept = namespaces.get(&temp).await.unwrap();
    assert!(
        kept.metadata.deletion_timestamp.is_none(),
        "the unmarked namespace stays"
    );
    assert!(
        namespaces
            .get("team-b")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );
    namespaces.delete(&temp, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn a_terminal_cannot_target_a_namespace_where_its_creator_has_no_rights() {
    let t = terminal(
        "reach-b",
        json!({"namespace": "team-a"}),
        json!({"namespace": "team-b"}),
    );
    let api: Api<Terminal> = Api::namespaced(client(ALICE).await, "team-a");
    let (code, msg) = refused(api.create(&PostParams::default(), &t).await);
    assert_eq!(code, 403, "{msg}");
    assert!(
        msg.contains("alice may not get namespaces named team-b")
            && msg.contains("a Terminal reaches only namespaces its creator holds a role in"),
        "{msg}"
    );
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(admin().await, "team-b");
    let made = sas
        .list(&kube::api::ListParams::default().labels(keys::TERMINAL_UID_LABEL))
        .await
        .unwrap();
    assert!(made.items.is_empty(), "nothing made in team-b: {:?}", made.items);
}

#[tokio::test]
async fn another_editor_of_the_namespace_cannot_end_your_terminal() {
    grant(vec![edit_binding("dave", "team-a")]).await;
    let t = terminal(
        "alices-own",
        json!({"namespace": "team-a"}),
        json!({"namespace": "team-a"}),
    );
    Api::<Terminal>::namespaced(client(ALICE).await, "team-a")
        .create(&PostParams::default(), &t)
        .await
        .unwrap();
    let daves: Api<Terminal> = Api::namespaced(client(DAVE).await, "team-a");
    let (code, msg) = refused(daves.delete("alices-own", &DeleteParams::default()).await);
    assert_eq!(code, 403, "{msg}");
    assert!(
        msg.contains("Terminal team-a/alices-own belongs to alice") && msg.contains("from dave"),
        "{msg}"
    );
    let carols: Api<Terminal> = Api::namespaced(client(CAROL).await, "team-a");
    carols
        .delete("alices-own", &DeleteParams::default())
        .await
        .expect("an admin may end it");
    until(&carols, "alices-own", "gone", |t| t.is_none()).await;
}

/// A namespace where the developers may manage SessionClaims.
async fn sessions_namespace() -> String {
    let ns = test_namespace("sessions").await;
    grant(vec![
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": "claim-sessions", "namespace": ns},
               "rules": [{"apiGroups": ["portico.dev"], "resources": ["sessionclaims"],
                          "verbs": ["create", "get", "list", "watch", "patch", "update", "delete"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "claim-sessions", "namespace": ns},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "claim-sessions"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "developers"}]}),
    ])
    .await;
    ns
}

#[tokio::test]
async fn others_cannot_change_or_end_your_session_but_an_admin_can() {
    let ns = sessions_namespace().await;
    let alices: Api<SessionClaim> = Api::namespaced(client(ALICE).await, &ns);
    alices
        .create(&PostParams::default(), &claim("alice-s", "developer"))
        .await
        .unwrap();
    let bobs: Api<SessionClaim> = Api::namespaced(client(BOB).await, &ns);
    let longer = json!({"spec": {"idleTimeout": "8h", "maxLifetime": "24h"}});
    let (code, msg) = refused(
        bobs.patch("alice-s", &PatchParams::default(), &Patch::Merge(&longer))
            .await,
    );
    assert_eq!(code, 403, "{msg}");
    assert!(
        msg.contains("belongs to alice") && msg.contains("only they may change it"),
        "{msg}"
    );
    let (code, msg) = refused(bobs.delete("alice-s", &DeleteParams::default()).await);
    assert_eq!(code, 403, "{msg}");
    assert!(
        msg.contains("only they may end it") && msg.contains("override sessionclaims.portico.dev"),
        "{msg}"
    );
    let now = alices.get("alice-s").await.unwrap();
    assert_eq!(
        now.spec.idle_timeout.as_deref(),
        Some("1800s"),
        "the lifetimes are untouched"
    );
    assert!(now.metadata.deletion_timestamp.is_none());

    // The creator may change her own claim within the profile's caps; an admin may end it.
    let shorter = json!({"spec": {"idleTimeout": "10m"}});
    alices
        .patch("alice-s", &PatchParams::default(), &Patch::Merge(&shorter))
        .await
        .unwrap();
    let carols: Api<SessionClaim> = Api::namespaced(client(CAROL).await, &ns);
    carols.delete("alice-s", &DeleteParams::default()).await.unwrap();
    until(&carols, "alice-s", "gone", |c| c.is_none()).await;
}

#[tokio::test]
async fn eight_claims_at_once_against_a_limit_of_two_admit_exactly_two() {
    let ns = sessions_namespace().await;
    let franks: Api<SessionClaim> = Api::namespaced(client(FRANK).await, &ns);
    let attempts = (0..8).map(|i| {
        let api = franks.clone();
        async move {
            api.create(&PostParams::default(), &claim(&format!("pair-{i}"), "pair"))
                .await
        }
    });
    let results = join_all(attempts).await;
    let admitted: Vec<&SessionClaim> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(admitted.len(), 2, "{results:#?}");
    for r in results.iter().filter(|r| r.is_err()) {
        let Err(kube::Error::Api(s)) = r else { panic!("{r:?}") };
        assert_eq!(s.code, 403, "{}", s.message);
        assert!(
            s.message
                .contains("frank already has 2 active sessions of profile pair (at most 2)"),
            "{}",
            s.message
        );
    }
    // Ending one frees its slot at once, not after the reservation expires.
    let first = admitted[0].name_any();
    franks.delete(&first, &DeleteParams::default()).await.unwrap();
    until(&franks, &first, "gone", |c| c.is_none()).await;
    franks
        .create(&PostParams::default(), &claim("pair-again", "pair"))
        .await
        .expect("a slot is free again");
}

fn deployment_stalled(d: Option<&Deployment>, reason: &str) -> bool {
    d.and_then(|d| d.status.as_ref()).is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True" && c.reason == reason)
    })
}

#[tokio::test]
async fn a_deployment_never_adopts_or_deletes_an_object_it_did_not_create() {
    let ns = test_namespace("adopt").await;
    grant(vec![edit_binding("alice", &ns)]).await;
    let cms: Api<ConfigMap> = Api::namespaced(admin().await, &ns);
    let admins: ConfigMap = from(json!({"metadata": {"name": "web-config"}, "data": {"owner": "the admin"}}));
    cms.create(&PostParams::default(), &admins).await.unwrap();
    let api: Api<Deployment> = Api::namespaced(client(ALICE).await, &ns);
    api.create(
        &PostParams::default(),
        &deployment("web", "webapp", json!({"image": "nginx"})),
    )
    .await
    .unwrap();
    let d = until(&api, "web", "Stalled ObjectNotOwned", |d| {
        deployment_stalled(d, "ObjectNotOwned")
    })
    .await
    .unwrap();
    let msg = d.status.unwrap().message.unwrap();
    assert!(
        msg.contains(&format!(
            "ConfigMap {ns}/web-config already exists and was not created by this Deployment"
        )),
        "{msg}"
    );
    api.delete("web", &DeleteParams::default()).await.unwrap();
    until(&api, "web", "gone", |d| d.is_none()).await;
    let kept = cms.get("web-config").await.unwrap();
    assert_eq!(
        kept.data.as_ref().unwrap()["owner"],
        "the admin",
        "neither changed nor deleted"
    );
    assert!(
        !kept.labels().contains_key(keys::DEPLOYMENT_UID_LABEL),
        "not marked as the Deployment's"
    );
}

/// A template whose second object its creator may not create.
async fn half_refused_template() {
    let template = r#"
displayName: Half refused
allowedGroups: ["*"]
parameters: {type: object}
manifests: |
  apiVersion: v1
  kind: ConfigMap
  metadata: {name: "{{ name }}-first"}
  data: {a: "1"}
  ---
  apiVersion: v1
  kind: ResourceQuota
  metadata: {name: "{{ name }}-quota"}
  spec: {hard: {pods: "1"}}
  ---
  apiVersion: v1
  kind: ConfigMap
  metadata: {name: "{{ name }}-last"}
  data: {b: "2"}
"#;
    let cm: ConfigMap = from(json!({
        "metadata": {"name": "half-refused", "namespace": portico::dev::CATALOG_NAMESPACE,
                     "labels": {"portico.dev/template": ""}},
        "data": {"template.yaml": template}}));
    portico::install::apply(&admin().await, &cm).await.unwrap();
}

#[tokio::test]
async fn an_object_applied_before_a_refusal_is_still_deleted_with_the_deployment() {
    half_refused_template().await;
    let ns = test_namespace("half").await;
    grant(vec![edit_binding("alice", &ns)]).await;
    let api: Api<Deployment> = Api::namespaced(client(ALICE).await, &ns);
    api.create(&PostParams::default(), &deployment("h", "half-refused", json!({})))
        .await
        .unwrap();
    let d = until(&api, "h", "Stalled ApplyRefused", |d| {
        deployment_stalled(d, "ApplyRefused")
    })
    .await
    .unwrap();
    let recorded: Vec<(String, Health)> = d
        .status
        .unwrap()
        .resources
        .iter()
        .map(|r| (r.name.clone(), r.health))
        .collect();
    assert_eq!(
        recorded,
        [
            ("h-first".to_string(), Health::Current),
            ("h-quota".to_string(), Health::NotFound),
            ("h-last".to_string(), Health::Current)
        ],
        "every object recorded with the stall, the applied ones as applied"
    );
    let cms: Api<ConfigMap> = Api::namespaced(admin().await, &ns);
    assert!(
        cms.get_opt("h-first").await.unwrap().is_some(),
        "applied before the refusal"
    );
    api.delete("h", &DeleteParams::default()).await.unwrap();
    until(&api, "h", "gone", |d| d.is_none()).await;
    assert!(cms.get_opt("h-first").await.unwrap().is_none(), "nothing left behind");
}

#[tokio::test]
async fn parameters_nested_too_deep_get_an_error_naming_the_limit() {
    let ns = test_namespace("deep").await;
    grant(vec![edit_binding("alice", &ns)]).await;
    let api: Api<Deployment> = Api::namespaced(client(ALICE).await, &ns);
    for levels in [150, 400] {
        let mut deep = json!("x");
        for _ in 0..levels {
            deep = json!({ "a": deep });
        }
        let d = deployment("deep", "webapp", json!({"image": "nginx", "message": deep}));
        let (code, msg) = refused(api.create(&PostParams::default(), &d).await);
        assert_eq!(code, 422, "{msg}");
        assert!(
            msg.contains("nested") && msg.contains("at most 64 levels"),
            "{levels}: {msg}"
        );
    }
    assert!(api.get_opt("deep").await.unwrap().is_none());
}

/// Whether the API server's RBAC lets `user` do `verb` on `resource` (named `name`) in `ns`.
async fn may(user: User, verb: &str, resource: &str, ns: &str, name: &str) -> bool {
    use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.0.into()),
            groups: Some(user.1.iter().map(|g| g.to_string()).collect()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.into()),
                verb: Some(verb.into()),
                resource: Some(resource.into()),
                subresource: (!subresource.is_empty()).then(|| subresource.into()),
                name: Some(name.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SubjectAccessReview>::all(admin().await)
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .is_some_and(|s| s.allowed)
}

#[tokio::test]
async fn a_second_editor_cannot_use_a_terminals_credentials_when_it_is_hosted_apart() {
    let ns = grace_namespace().await;
    grant(vec![edit_binding("dave", &ns)]).await;
    let t = terminal(
        "apart",
        json!({"temporaryNamespace": true}),
        json!({"namespace": ns, "roleBindings": [
            {"roleRef": {"kind": "ClusterRole", "name": "edit"}, "bindingKind": "RoleBinding", "nameSuffix": "edit"}]}),
    );
    Api::<Terminal>::namespaced(client(GRACE).await, &ns)
        .create(&PostParams::default(), &t)
        .await
        .unwrap();
    let admins: Api<Terminal> = Api::namespaced(admin().await, &ns);
    let t = until(&admins, "apart", "its objects made", |t| {
        t.and_then(|t| t.status.as_ref()).is_some_and(|s| s.pod_name.is_some())
    })
    .await
    .unwrap();
    let n = portico::controller::terminal::build::Names::for_uid(&t.uid().unwrap());
    let host = t.status.as_ref().unwrap().host_namespace.clone().unwrap();
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(admin().await, "portico-terminals");
    until(&sas, &n.access, "the access service account", |s| s.is_some()).await;

    // dave edits the target namespace, as grace does, yet reaches none of the Terminal's credentials.
    assert!(
        may(DAVE, "impersonate", "serviceaccounts", &ns, "anything").await,
        "edit impersonates there"
    );
    for (verb, resource, where_, name) in [
        ("impersonate", "serviceaccounts", "portico-terminals", n.access.as_str()),
        (
            "create",
            "serviceaccounts/token",
            "portico-terminals",
            n.access.as_str(),
        ),
        ("get", "secrets", host.as_str(), n.kubeconfig_secret.as_str()),
        ("create", "pods/exec", host.as_str(), n.pod.as_str()),
        ("create", "pods/attach", host.as_str(), n.pod.as_str()),
    ] {
        assert!(
            !may(DAVE, verb, resource, where_, name).await,
            "dave may {verb} {resource} {name} in {where_}"
        );
    }
    // The creator may attach to her own pod, and nothing else there.
    assert!(may(GRACE, "create", "pods/attach", &host, &n.pod).await);
    assert!(!may(GRACE, "get", "secrets", &host, &n.kubeconfig_secret).await);
    Api::<Terminal>::namespaced(client(GRACE).await, &ns)
        .delete("apart", &DeleteParams::default())
        .await
        .unwrap();
    until(&admins, "apart", "gone", |t| t.is_none()).await;
    assert!(
        sas.get_opt(&n.access).await.unwrap().is_none(),
        "the access service account went with it"
    );
}

#[tokio::test]
async fn a_terminal_in_a_shared_namespace_cannot_hand_its_editors_more_than_they_hold() {
    // carol is admin everywhere; a Terminal of hers hosted in team-a would leave its
    // credentials where every editor of team-a can read them.
    let api: Api<Terminal> = Api::namespaced(client(CAROL).await, "team-a");
    let binding = |kind: &str, role: &str| json!([{"roleRef": {"kind": "ClusterRole", "name": role}, "bindingKind": kind, "nameSuffix": "x"}]);
    for (name, target, says) in [
        (
            "wide",
            json!({"namespace": "team-a", "roleBindings": binding("ClusterRoleBinding", "view")}),
            "and so act cluster-wide",
        ),
        (
            "above",
            json!({"namespace": "team-a", "roleBindings": binding("RoleBinding", "admin")}),
            "ClusterRole admin is not one the platform admins allow",
        ),
        (
            "elsewhere",
            json!({"namespace": "team-b", "roleBindings": binding("RoleBinding", "view")}),
            "and so reach namespace team-b",
        ),
    ] {
        let t = terminal(name, json!({"namespace": "team-a"}), target);
        let (code, msg) = refused(api.create(&PostParams::default(), &t).await);
        assert_eq!(code, 403, "{name}: {msg}");
        assert!(
            msg.contains(says)
                && msg.contains("would live in namespace team-a, where whoever may exec into pods or read Secrets")
                && msg.contains("set spec.host.temporaryNamespace: true"),
            "{name}: {msg}"
        );
        assert!(
            api.get_opt(name).await.unwrap().is_none(),
            "{name}: nothing was created"
        );
    }
    // What every editor of team-a holds anyway is fine there.
    let t = terminal(
        "same",
        json!({"namespace": "team-a"}),
        json!({"namespace": "team-a", "roleBindings": binding("RoleBinding", "edit")}),
    );
    api.create(&PostParams::default(), &t).await.unwrap();
    api.delete("same", &DeleteParams::default()).await.unwrap();
}

/// Puts a template into the catalog.
async fn catalog_template(name: &str, template: &str) {
    let cm: ConfigMap = from(json!({
        "metadata": {"name": name, "namespace": portico::dev::CATALOG_NAMESPACE,
                     "labels": {"portico.dev/template": ""}},
        "data": {"template.yaml": template}}));
    portico::install::apply(&admin().await, &cm).await.unwrap();
}

#[tokio::test]
async fn a_change_is_applied_with_the_rights_of_whoever_made_it() {
    catalog_template(
        "with-role",
        r#"
displayName: With a Role
allowedGroups: ["*"]
parameters: {type: object, properties: {message: {type: string, default: hi}}}
manifests: |
  apiVersion: v1
  kind: ConfigMap
  metadata: {name: "{{ name }}-config"}
  data: {message: {{ params.message | tojson }}}
  ---
  apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: "{{ name }}-reader"}
  rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
"#,
    )
    .await;
    let ns = test_namespace("updater").await;
    grant(vec![edit_binding("dave", &ns)]).await;
    let carols: Api<Deployment> = Api::namespaced(client(CAROL).await, &ns);
    carols
        .create(&PostParams::default(), &deployment("r", "with-role", json!({})))
        .await
        .unwrap();
    let ready = |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let d = until(&carols, "r", "Ready as carol", ready).await.unwrap();
    assert_eq!(d.status.unwrap().applied_by.as_deref(), Some("carol"));

    // dave may edit the Deployment, but his change is applied with his rights: no Roles.
    let daves: Api<Deployment> = Api::namespaced(client(DAVE).await, &ns);
    let change = json!({"spec": {"parameters": {"message": "from dave"}}});
    let d = daves
        .patch("r", &PatchParams::default(), &Patch::Merge(&change))
        .await
        .unwrap();
    let updater = portico::creator::Creator::updater(d.metadata.annotations.as_ref()).unwrap();
    assert_eq!(updater.user, "dave", "admission records who changed the spec");
    let d = until(&carols, "r", "Stalled ApplyRefused", |d| {
        deployment_stalled(d, "ApplyRefused")
    })
    .await
    .unwrap();
    let status = d.status.unwrap();
    assert_eq!(status.applied_by.as_deref(), Some("dave"));
    assert!(
        status
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("as dave was refused"),
        "{:?}",
        status.message
    );
    // The annotation is admission's: a client can neither set nor rewrite it.
    let forge = json!({"metadata": {"annotations": {keys::UPDATED_BY: "{\"user\":\"carol\",\"groups\":[]}"}}});
    let (code, msg) = refused(daves.patch("r", &PatchParams::default(), &Patch::Merge(&forge)).await);
    assert_eq!(code, 403, "{msg}");
    assert!(msg.contains("updated-by is written by Portico"), "{msg}");
    carols.delete("r", &DeleteParams::default()).await.unwrap();
    until(&carols, "r", "gone", |d| d.is_none()).await;
}

#[tokio::test]
async fn an_operator_applied_template_renders_only_within_its_bounds() {
    catalog_template(
        "op-unbounded",
        "displayName: Unbounded\nallowedGroups: ['*']\napplyAs: operator\nmanifests: |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: x}\n",
    )
    .await;
    catalog_template(
        "op-bounded",
        r#"
displayName: Bounded
allowedGroups: ["*"]
applyAs: operator
bounds: {kinds: [ConfigMap]}
parameters: {type: object, properties: {extra: {type: string, default: ""}}}
manifests: |
  apiVersion: v1
  kind: ConfigMap
  metadata: {name: "{{ name }}-config"}
  data: {extra: {{ params.extra }}}
  {% if params.extra == "secret" %}
  ---
  apiVersion: v1
  kind: Secret
  metadata: {name: "{{ name }}-secret"}
  {% endif %}
"#,
    )
    .await;
    let ns = test_namespace("bounds").await;
    // What an admin does for operator-applied templates: grant the operator what they create there.
    let operator_edits = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "portico-operator-edit", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": "portico-operator", "namespace": "portico-system"}]});
    grant(vec![edit_binding("alice", &ns), operator_edits]).await;
    let api: Api<Deployment> = Api::namespaced(client(ALICE).await, &ns);
    let (code, msg) = refused(
        api.create(&PostParams::default(), &deployment("u", "op-unbounded", json!({})))
            .await,
    );
    assert_eq!(code, 422, "{msg}");
    assert!(msg.contains("applyAs: operator needs bounds"), "{msg}");

    // A parameter written unquoted cannot smuggle in another document.
    let smuggle = "x\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: smuggled}";
    api.create(
        &PostParams::default(),
        &deployment("b", "op-bounded", json!({"extra": smuggle})),
    )
    .await
    .unwrap();
    let ready = |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    until(&api, "b", "Ready", ready).await;
    let cm = Api::<ConfigMap>::namespaced(admin().await, &ns)
        .get("b-config")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["extra"], smuggle, "one value");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(admin().await, &ns);
    assert!(secrets.get_opt("smuggled").await.unwrap().is_none());

    // A render outside the bounds applies nothing.
    api.create(
        &PostParams::default(),
        &deployment("s", "op-bounded", json!({"extra": "secret"})),
    )
    .await
    .unwrap();
    let d = until(&api, "s", "Stalled OutOfBounds", |d| {
        deployment_stalled(d, "OutOfBounds")
    })
    .await
    .unwrap();
    let msg = d.status.unwrap().message.unwrap();
    assert!(
        msg.contains("the render holds Secret s-secret") && msg.contains("nothing was applied"),
        "{msg}"
    );
    assert!(secrets.get_opt("s-secret").await.unwrap().is_none());
    let cms: Api<ConfigMap> = Api::namespaced(admin().await, &ns);
    assert!(
        cms.get_opt("s-config").await.unwrap().is_none(),
        "not even the allowed object"
    );
}
