//! The CRDs against a real API server: they install, kubectl knows them
//! (`explain`, printer columns, `--field-selector`), the examples apply, the
//! generated files match, and every schema constraint and CEL rule rejects
//! bad input with a message that names the field.

mod common;

use common::{kubectl, kubectl_ok, test_namespace};
use kube::{
    Api,
    api::{ApiResource, DynamicObject, GroupVersionKind, PostParams},
};
use serde_json::{Value, json};

#[test]
fn generated_crds_match_the_crds_directory() {
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["crds", "--out-dir"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/crds");
    let names = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(out.path()),
        names(dir.as_ref()),
        "crds/ holds other files than `portico crds` writes"
    );
    for name in names(out.path()) {
        let generated = std::fs::read_to_string(out.path().join(&name)).unwrap();
        let committed = std::fs::read_to_string(std::path::Path::new(dir).join(&name)).unwrap();
        assert!(
            generated == committed,
            "crds/{name} differs from `portico crds`; run `cargo run -- crds --out-dir crds` and commit"
        );
    }
    // `portico crds` on stdout is the same set of documents.
    let stdout = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .arg("crds")
        .output()
        .unwrap();
    let docs = String::from_utf8(stdout.stdout).unwrap();
    assert_eq!(docs.matches("kind: CustomResourceDefinition").count(), 3);
    assert_eq!(docs.matches("kind: ClusterRole\n").count(), 3);
}

#[test]
fn crds_are_established_and_kubectl_knows_them() {
    for crd in [
        "terminals.portico.dev",
        "deployments.portico.dev",
        "sessionclaims.portico.dev",
    ] {
        kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            &format!("crd/{crd}"),
        ]);
    }
    let resources = kubectl_ok(&["api-resources", "--api-group=portico.dev", "-o", "wide"]);
    for (plural, short, kind) in [
        ("terminals", "term", "Terminal"),
        ("deployments", "pdeploy", "Deployment"),
        ("sessionclaims", "sclaim", "SessionClaim"),
    ] {
        let line = resources
            .lines()
            .find(|l| l.starts_with(plural))
            .unwrap_or_else(|| panic!("{plural} missing:\n{resources}"));
        assert!(
            line.contains(short) && line.contains(kind) && line.contains("portico"),
            "{line}"
        );
        assert!(line.contains("true"), "{plural} should be namespaced: {line}");
    }
    let explain = kubectl_ok(&["explain", "terminal.spec.target"]);
    assert!(explain.contains("roleBindings"), "{explain}");
    assert!(
        explain.contains("What the kubeconfig inside the terminal pod reaches"),
        "{explain}"
    );
    let explain = kubectl_ok(&["explain", "sessionclaims.spec.profile"]);
    assert!(explain.contains("session profile"), "{explain}");
    // Each kind says what it is at the top, not kube-derive's placeholder.
    for (resource, says) in [
        ("terminal", "A shell in the browser"),
        ("deployments.portico.dev", "An instance of a template from the catalog"),
        ("sessionclaim", "A user's session under a session profile"),
    ] {
        let explain = kubectl_ok(&["explain", resource]);
        let description = explain
            .split("DESCRIPTION:")
            .nth(1)
            .and_then(|d| d.split("FIELDS:").next())
            .unwrap_or_else(|| panic!("kubectl explain {resource}:\n{explain}"));
        assert!(
            description.contains(says) && !explain.contains("Auto-generated"),
            "kubectl explain {resource}:\n{explain}"
        );
    }
}

#[tokio::test]
async fn category_and_short_names_list_objects() {
    let ns = test_namespace("cat").await;
    for file in ["terminal.yaml", "deployment.yaml", "sessionclaim.yaml"] {
        kubectl_ok(&["apply", "-n", &ns, "-f", &example(file)]);
    }
    let all = kubectl_ok(&["get", "portico", "-n", &ns]);
    for name in [
        "terminal.portico.dev/team-a-shell",
        "deployment.portico.dev/hello",
        "sessionclaim.portico.dev/my-session",
    ] {
        assert!(all.contains(name), "`kubectl get portico` lacks {name}:\n{all}");
    }
    for (short, name, column) in [
        ("term", "team-a-shell", "EXPIRES"),
        ("pdeploy", "hello", "TEMPLATE"),
        ("sclaim", "my-session", "PROFILE"),
    ] {
        let out = kubectl_ok(&["get", short, "-n", &ns]);
        assert!(
            out.contains(name) && out.contains(column),
            "kubectl get {short}:\n{out}"
        );
    }
    let out = kubectl_ok(&["get", "deployments.portico.dev", "-n", &ns, "-o", "name"]);
    assert_eq!(out.trim(), "deployment.portico.dev/hello");
}

/// `kubectl get` of one object as a header and a row, split at runs of two or more spaces.
fn table(args: &[&str]) -> Vec<(String, String)> {
    let out = kubectl_ok(args);
    let split = |line: &str| -> Vec<String> {
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    let mut lines = out.lines();
    let header = split(lines.next().unwrap_or_default());
    let row = split(lines.next().unwrap_or_default());
    assert_eq!(header.len(), row.len(), "kubectl {}:\n{out}", args.join(" "));
    header.into_iter().zip(row).collect()
}

fn columns(table: &[(String, String)]) -> Vec<&str> {
    table.iter().map(|(h, _)| h.as_str()).collect()
}

fn cell<'a>(table: &'a [(String, String)], column: &str) -> &'a str {
    let found = table.iter().find(|(h, _)| h == column);
    found
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {column} in {table:?}"))
}

/// Writes `status` through the status subresource, as the operator does.
fn set_status(ns: &str, resource: &str, status: Value) {
    let patch = json!({"status": status}).to_string();
    kubectl_ok(&[
        "patch",
        resource,
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ]);
}

fn ready(reason: &str) -> Value {
    json!([{"type": "Ready", "status": "True", "reason": reason, "message": "ok",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}])
}

#[tokio::test]
async fn printer_columns_say_whether_it_works_and_until_when_and_wide_adds_who_and_where() {
    let ns = test_namespace("columns").await;
    // No webhook runs in this binary: the creator is written here as admission writes it.
    let creator = r#"{"user":"alice","groups":["developers"]}"#;
    let by_alice = json!({"metadata": {"annotations": {"portico.dev/created-by": creator}}});
    for kind in ["Terminal", "Deployment", "SessionClaim"] {
        let mut obj = valid(kind);
        json_patch::merge(&mut obj, &by_alice);
        create(&ns, &obj).await.unwrap();
    }
    let expires = "2030-01-02T03:04:05Z";
    set_status(
        &ns,
        "terminal/t",
        json!({"hostNamespace": "team-a", "expiresAt": expires, "message": "the terminal is ready",
               "conditions": ready("PodReady")}),
    );
    set_status(
        &ns,
        "deployments.portico.dev/d",
        json!({"appliedBy": "alice", "message": "all 3 objects are current", "conditions": ready("AllCurrent")}),
    );
    set_status(
        &ns,
        "sessionclaim/s",
        json!({"user": "alice", "expiresAt": expires, "message": "the kubeconfig is ready",
               "conditions": ready("KubeconfigReady")}),
    );

    let t = table(&["get", "terminal", "t", "-n", &ns]);
    assert_eq!(columns(&t), ["NAME", "READY", "STATUS", "EXPIRES", "AGE"]);
    assert_eq!(
        (cell(&t, "READY"), cell(&t, "STATUS"), cell(&t, "EXPIRES")),
        ("True", "PodReady", expires),
        "the expiry is the time it happens, not an age"
    );
    let t = table(&["get", "terminal", "t", "-n", &ns, "-o", "wide"]);
    assert_eq!(columns(&t)[5..], ["TARGET", "HOST NAMESPACE", "CREATOR", "MESSAGE"]);
    assert_eq!(
        (cell(&t, "TARGET"), cell(&t, "HOST NAMESPACE"), cell(&t, "CREATOR")),
        ("team-a", "team-a", creator)
    );

    let d = table(&["get", "deployments.portico.dev", "d", "-n", &ns]);
    assert_eq!(columns(&d), ["NAME", "TEMPLATE", "READY", "STATUS", "MESSAGE", "AGE"]);
    assert_eq!(
        (cell(&d, "TEMPLATE"), cell(&d, "STATUS"), cell(&d, "MESSAGE")),
        ("webapp", "AllCurrent", "all 3 objects are current")
    );
    let d = table(&["get", "deployments.portico.dev", "d", "-n", &ns, "-o", "wide"]);
    assert_eq!((cell(&d, "CREATOR"), cell(&d, "APPLIED BY")), (creator, "alice"));

    let s = table(&["get", "sessionclaim", "s", "-n", &ns]);
    assert_eq!(
        columns(&s),
        ["NAME", "PROFILE", "USER", "READY", "STATUS", "EXPIRES", "AGE"]
    );
    assert_eq!(
        (
            cell(&s, "PROFILE"),
            cell(&s, "USER"),
            cell(&s, "STATUS"),
            cell(&s, "EXPIRES")
        ),
        ("developer", "alice", "KubeconfigReady", expires)
    );
    let s = table(&["get", "sessionclaim", "s", "-n", &ns, "-o", "wide"]);
    assert_eq!(cell(&s, "MESSAGE"), "the kubeconfig is ready");
}

fn names(args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = kubectl_ok(args).lines().map(String::from).collect();
    v.sort();
    v
}

#[tokio::test]
async fn field_selectors_pick_by_template_creator_profile_and_user() {
    let ns = test_namespace("select").await;
    for (name, template) in [("web-1", "webapp"), ("web-2", "webapp"), ("db", "postgresql")] {
        let mut d = valid("Deployment");
        json_patch::merge(
            &mut d,
            &json!({"metadata": {"name": name}, "spec": {"template": {"name": template}}}),
        );
        create(&ns, &d).await.unwrap();
    }
    let selected =
        |kind: &str, selector: &str| names(&["get", kind, "-n", &ns, "--field-selector", selector, "-o", "name"]);
    let get = |selector: &str| selected("deployments.portico.dev", selector);
    assert_eq!(
        get("spec.template.name=webapp"),
        ["deployment.portico.dev/web-1", "deployment.portico.dev/web-2"]
    );
    assert_eq!(get("spec.template.name!=webapp"), ["deployment.portico.dev/db"]);
    // The API client's way, as the dashboard would list them.
    let listed = api(common::admin().await, &ns, "Deployment")
        .list(&kube::api::ListParams::default().fields("spec.template.name=postgresql"))
        .await
        .unwrap();
    let listed: Vec<String> = listed.items.iter().filter_map(|d| d.metadata.name.clone()).collect();
    assert_eq!(listed, ["db"]);
    // The creator, which the operator mirrors into status from the admission annotation.
    for (name, creator) in [("web-1", "alice"), ("web-2", "bob"), ("db", "alice")] {
        set_status(
            &ns,
            &format!("deployments.portico.dev/{name}"),
            json!({"creator": creator}),
        );
    }
    assert_eq!(
        get("status.creator=alice"),
        ["deployment.portico.dev/db", "deployment.portico.dev/web-1"]
    );
    assert_eq!(
        get("status.creator=alice,spec.template.name=webapp"),
        ["deployment.portico.dev/web-1"]
    );
    for (name, creator) in [("t-a", "alice"), ("t-b", "bob")] {
        let mut t = valid("Terminal");
        json_patch::merge(&mut t, &json!({"metadata": {"name": name}}));
        create(&ns, &t).await.unwrap();
        set_status(&ns, &format!("terminal/{name}"), json!({"creator": creator}));
    }
    assert_eq!(
        selected("terminals", "status.creator=bob"),
        ["terminal.portico.dev/t-b"]
    );

    for (name, profile, user) in [
        ("a", "developer", "alice"),
        ("b", "ops", "bob"),
        ("c", "developer", "bob"),
    ] {
        let mut c = valid("SessionClaim");
        json_patch::merge(
            &mut c,
            &json!({"metadata": {"name": name}, "spec": {"profile": profile}}),
        );
        create(&ns, &c).await.unwrap();
        set_status(&ns, &format!("sessionclaim/{name}"), json!({"user": user}));
    }
    let get = |selector: &str| selected("sessionclaims", selector);
    assert_eq!(
        get("spec.profile=developer"),
        ["sessionclaim.portico.dev/a", "sessionclaim.portico.dev/c"]
    );
    assert_eq!(
        get("status.user=bob"),
        ["sessionclaim.portico.dev/b", "sessionclaim.portico.dev/c"]
    );
    assert_eq!(
        get("spec.profile=developer,status.user=bob"),
        ["sessionclaim.portico.dev/c"]
    );

    // Fields that are not selectable are refused, not ignored.
    let out = kubectl(&[
        "get",
        "deployments.portico.dev",
        "-n",
        &ns,
        "--field-selector",
        "spec.suspend=true",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("field label not supported"), "{stderr}");
}

fn example(file: &str) -> String {
    format!("{}/examples/{file}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn every_example_applies_with_server_dry_run() {
    let ns = test_namespace("examples").await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut checked = 0;
    for entry in walk(dir.as_ref()) {
        let text = std::fs::read_to_string(&entry).unwrap();
        if !text.contains("apiVersion: portico.dev/") || entry.components().any(|c| c.as_os_str() == "flux") {
            continue; // Flux's kinds are not installed here; tests/chart.rs checks the HelmRelease's values.
        }
        let out = kubectl(&["apply", "--dry-run=server", "-n", &ns, "-f", entry.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}: {}",
            entry.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(
        checked >= 4,
        "expected the examples of all three kinds, found {checked}"
    );
}

/// The README shows the examples as they are: each block that starts with
/// `# kubectl apply ... -f examples/FILE` is that file from that line on.
#[test]
fn the_readmes_examples_are_the_files_in_examples() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut checked = 0;
    for block in readme.split("```yaml\n").skip(1) {
        let block = &block[..block.find("```").unwrap()];
        let Some(file) = block
            .lines()
            .next()
            .filter(|l| l.starts_with("# kubectl apply"))
            .and_then(|l| l.split(" -f examples/").nth(1))
        else {
            continue;
        };
        let text = std::fs::read_to_string(example(file)).unwrap();
        let from = text.find("# kubectl apply").expect("the example says how to apply it");
        assert_eq!(
            block,
            &text[from..],
            "README.md's block for examples/{file} differs from the file"
        );
        checked += 1;
    }
    assert!(
        checked >= 3,
        "README.md shows the Terminal, Deployment and SessionClaim examples"
    );
}

#[test]
fn the_examples_name_the_images_the_local_node_builds() {
    use portico::controlplane::node::images::{TOOLBOX_IMAGE, WEBAPP_IMAGE};
    for (file, image) in [
        ("terminal.yaml", TOOLBOX_IMAGE),
        ("terminal-temporary-namespace.yaml", TOOLBOX_IMAGE),
        ("deployment.yaml", WEBAPP_IMAGE),
    ] {
        let text = std::fs::read_to_string(example(file)).unwrap();
        assert!(text.contains(&format!("image: {image}\n")), "{file} names {image}");
        assert!(
            text.contains("real cluster"),
            "{file} says what to use on a real cluster"
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
    out
}

// ---- bad input: one test per schema constraint and CEL rule ----

fn valid(kind: &str) -> Value {
    match kind {
        "Terminal" => json!({
            "apiVersion": "portico.dev/v1alpha1", "kind": "Terminal", "metadata": {"name": "t"},
            "spec": {
                "host": {"namespace": "team-a", "pod": {"image": "alpine:3.20"}},
                "target": {"namespace": "team-a", "roleBindings": [
                    {"roleRef": {"kind": "ClusterRole", "name": "edit"}, "bindingKind": "RoleBinding", "nameSuffix": "edit"}
                ]},
                "idleTimeout": "15m", "maxLifetime": "8h"
            }
        }),
        "Deployment" => json!({
            "apiVersion": "portico.dev/v1alpha1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"name": "webapp"}, "parameters": {"replicas": 2}}
        }),
        "SessionClaim" => json!({
            "apiVersion": "portico.dev/v1alpha1", "kind": "SessionClaim", "metadata": {"name": "s"},
            "spec": {"profile": "developer", "idleTimeout": "30m", "maxLifetime": "8h"}
        }),
        _ => unreachable!(),
    }
}

fn api(client: kube::Client, ns: &str, kind: &str) -> Api<DynamicObject> {
    let plural = match kind {
        "Terminal" => "terminals",
        "Deployment" => "deployments",
        _ => "sessionclaims",
    };
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("portico.dev", "v1alpha1", kind), plural);
    Api::namespaced_with(client, ns, &ar)
}

async fn create(ns: &str, obj: &Value) -> Result<DynamicObject, kube::Error> {
    let kind = obj["kind"].as_str().unwrap();
    let dynobj: DynamicObject = serde_json::from_value(obj.clone()).unwrap();
    api(common::admin().await, ns, kind)
        .create(&PostParams::default(), &dynobj)
        .await
}

/// Creates `kind` with `patch` merged into a valid object and expects the API
/// server to refuse it with a message containing every one of `expect`.
async fn assert_rejected(kind: &str, patch: Value, expect: &[&str]) {
    let ns = test_namespace("bad").await;
    let mut obj = valid(kind);
    json_patch::merge(&mut obj, &patch);
    match create(&ns, &obj).await {
        Ok(_) => panic!("{kind} with {patch} was accepted"),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            for e in expect {
                assert!(status.message.contains(e), "message lacks {e:?}: {}", status.message);
            }
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[tokio::test]
async fn valid_objects_of_every_kind_are_accepted() {
    let ns = test_namespace("good").await;
    for kind in ["Terminal", "Deployment", "SessionClaim"] {
        create(&ns, &valid(kind))
            .await
            .unwrap_or_else(|e| panic!("valid {kind} refused: {e}"));
    }
    let mut temp = valid("Terminal");
    json_patch::merge(
        &mut temp,
        &json!({"metadata": {"name": "t2"}, "spec": {"host": {"namespace": null, "temporaryNamespace": true}}}),
    );
    create(&ns, &temp).await.expect("temporaryNamespace host accepted");
}

macro_rules! rejects {
    ($name:ident, $kind:literal, $patch:tt, [$($expect:literal),+]) => {
        #[tokio::test]
        async fn $name() {
            assert_rejected($kind, json!($patch), &[$($expect),+]).await;
        }
    };
}

rejects!(host_with_namespace_and_temporary_namespace, "Terminal",
    {"spec": {"host": {"temporaryNamespace": true}}},
    ["spec.host", "exactly one of host.namespace or host.temporaryNamespace"]);
rejects!(host_with_neither_namespace_nor_temporary_namespace, "Terminal",
    {"spec": {"host": {"namespace": null}}},
    ["spec.host", "exactly one of host.namespace or host.temporaryNamespace"]);
rejects!(host_temporary_namespace_false_alone, "Terminal",
    {"spec": {"host": {"namespace": null, "temporaryNamespace": false}}},
    ["spec.host", "exactly one"]);
rejects!(target_with_namespace_and_temporary_namespace, "Terminal",
    {"spec": {"target": {"temporaryNamespace": true}}},
    ["spec.target", "exactly one of target.namespace or target.temporaryNamespace"]);
rejects!(cluster_role_binding_of_a_role, "Terminal",
    {"spec": {"target": {"roleBindings": [{"roleRef": {"kind": "Role", "name": "r"}, "bindingKind": "ClusterRoleBinding", "nameSuffix": "r"}]}}},
    ["spec.target.roleBindings[0]", "a ClusterRoleBinding may only bind a ClusterRole"]);
rejects!(duplicate_name_suffix, "Terminal",
    {"spec": {"target": {"roleBindings": [
        {"roleRef": {"kind": "ClusterRole", "name": "view"}, "bindingKind": "RoleBinding", "nameSuffix": "x"},
        {"roleRef": {"kind": "ClusterRole", "name": "edit"}, "bindingKind": "RoleBinding", "nameSuffix": "x"}]}}},
    ["spec.target.roleBindings", "own nameSuffix"]);
rejects!(name_suffix_not_a_dns_label, "Terminal",
    {"spec": {"target": {"roleBindings": [{"roleRef": {"kind": "ClusterRole", "name": "view"}, "bindingKind": "RoleBinding", "nameSuffix": "Not_OK"}]}}},
    ["spec.target.roleBindings[0].nameSuffix", "must be a DNS label"]);
rejects!(unknown_role_kind, "Terminal",
    {"spec": {"target": {"roleBindings": [{"roleRef": {"kind": "Group", "name": "view"}, "bindingKind": "RoleBinding", "nameSuffix": "v"}]}}},
    ["spec.target.roleBindings[0].roleRef.kind", "\"Role\", \"ClusterRole\""]);
rejects!(unknown_binding_kind, "Terminal",
    {"spec": {"target": {"roleBindings": [{"roleRef": {"kind": "ClusterRole", "name": "view"}, "bindingKind": "Binding", "nameSuffix": "v"}]}}},
    ["spec.target.roleBindings[0].bindingKind", "\"RoleBinding\", \"ClusterRoleBinding\""]);
rejects!(host_namespace_not_a_dns_label, "Terminal",
    {"spec": {"host": {"namespace": "Team_A"}}},
    ["spec.host.namespace", "must be a DNS label"]);
rejects!(target_namespace_not_a_dns_label, "Terminal",
    {"spec": {"target": {"namespace": "-team"}}},
    ["spec.target.namespace", "must be a DNS label"]);
rejects!(context_namespace_not_a_dns_label, "Terminal",
    {"spec": {"target": {"kubeconfigContextNamespace": "a.b"}}},
    ["spec.target.kubeconfigContextNamespace", "must be a DNS label"]);
rejects!(kubeconfig_secret_name_not_a_dns_subdomain, "Terminal",
    {"spec": {"target": {"cluster": {"kubeconfigSecretRef": {"name": "My Secret"}}}}},
    ["spec.target.cluster.kubeconfigSecretRef.name", "must be a DNS subdomain"]);
rejects!(idle_timeout_not_a_duration, "Terminal",
    {"spec": {"idleTimeout": "5 minutes"}},
    ["spec.idleTimeout", "must be a positive duration"]);
rejects!(idle_timeout_zero, "Terminal",
    {"spec": {"idleTimeout": "0s"}},
    ["spec.idleTimeout", "must be a positive duration"]);
rejects!(max_lifetime_negative, "Terminal",
    {"spec": {"maxLifetime": "-1h"}},
    ["spec.maxLifetime", "must be a positive duration"]);
rejects!(image_missing, "Terminal",
    {"spec": {"host": {"pod": {"image": null}}}},
    ["spec.host.pod.image", "Required value"]);
rejects!(image_blank, "Terminal",
    {"spec": {"host": {"pod": {"image": "   "}}}},
    ["spec.host.pod.image", "must name a container image"]);
rejects!(reserved_pod_label, "Terminal",
    {"spec": {"host": {"pod": {"labels": {"portico.dev/owner": "me"}}}}},
    ["spec.host.pod.labels", "reserved for Portico"]);
rejects!(too_many_role_bindings, "Terminal",
    {"spec": {"target": {"roleBindings": (0..17).map(|i| json!({"roleRef": {"kind": "ClusterRole", "name": "view"}, "bindingKind": "RoleBinding", "nameSuffix": format!("r{i}")})).collect::<Vec<_>>()}}},
    ["spec.target.roleBindings", "must have at most 16 items"]);
rejects!(template_name_not_a_dns_subdomain, "Deployment",
    {"spec": {"template": {"name": "Web App"}}},
    ["spec.template.name", "must be a DNS subdomain"]);
rejects!(template_namespace_not_a_dns_label, "Deployment",
    {"spec": {"template": {"namespace": "cat.alog"}}},
    ["spec.template.namespace", "must be a DNS label"]);
rejects!(parameters_not_an_object, "Deployment",
    {"spec": {"parameters": "replicas=2"}},
    ["spec.parameters", "must be of type object"]);
rejects!(profile_not_a_dns_label, "SessionClaim",
    {"spec": {"profile": "Developer!"}},
    ["spec.profile", "must be a DNS label"]);
rejects!(session_idle_timeout_not_a_duration, "SessionClaim",
    {"spec": {"idleTimeout": "30"}},
    ["spec.idleTimeout", "must be a positive duration"]);
rejects!(session_max_lifetime_zero, "SessionClaim",
    {"spec": {"maxLifetime": "0h0m"}},
    ["spec.maxLifetime", "must be a positive duration"]);

/// Creates a valid object, then expects `patch` merged into its spec to be
/// refused on update with a message containing `expect`.
async fn assert_update_rejected(kind: &str, patch: Value, expect: &[&str]) {
    let ns = test_namespace("immutable").await;
    let created = create(&ns, &valid(kind)).await.expect("valid object");
    let mut changed = serde_json::to_value(&created).unwrap();
    json_patch::merge(&mut changed, &patch);
    let obj: DynamicObject = serde_json::from_value(changed).unwrap();
    let err = api(common::admin().await, &ns, kind)
        .replace(&created.metadata.name.clone().unwrap(), &PostParams::default(), &obj)
        .await
        .expect_err("update should be refused");
    let kube::Error::Api(status) = err else {
        panic!("unexpected error {err}")
    };
    assert_eq!(status.code, 422, "{status:?}");
    for e in expect {
        assert!(status.message.contains(e), "message lacks {e:?}: {}", status.message);
    }
}

#[tokio::test]
async fn terminal_spec_is_immutable() {
    assert_update_rejected(
        "Terminal",
        json!({"spec": {"target": {"namespace": "team-b"}}}),
        &["spec", "a Terminal cannot be changed after it is created"],
    )
    .await;
}

#[tokio::test]
async fn session_claim_profile_is_immutable() {
    assert_update_rejected(
        "SessionClaim",
        json!({"spec": {"profile": "admin"}}),
        &["spec", "profile is immutable"],
    )
    .await;
}

#[tokio::test]
async fn session_claim_durations_may_change_but_not_to_garbage() {
    let ns = test_namespace("sclaim-upd").await;
    let created = create(&ns, &valid("SessionClaim")).await.unwrap();
    let mut changed = serde_json::to_value(&created).unwrap();
    json_patch::merge(&mut changed, &json!({"spec": {"idleTimeout": "45m"}}));
    let obj: DynamicObject = serde_json::from_value(changed).unwrap();
    api(common::admin().await, &ns, "SessionClaim")
        .replace("s", &PostParams::default(), &obj)
        .await
        .expect("a new idle timeout is accepted");
}

#[tokio::test]
async fn deployment_template_is_immutable() {
    assert_update_rejected(
        "Deployment",
        json!({"spec": {"template": {"name": "postgresql"}}}),
        &["spec", "spec.template is immutable"],
    )
    .await;
}
