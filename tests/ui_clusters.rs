//! The dashboard and another cluster, each a real control plane with its
//! own node: cluster B holds the demo's namespaces and roles, team-a of
//! cluster A holds the operator's kubeconfig Secret for B, and the
//! dashboard knows B through the chart's dashboard identity there. A user
//! is offered B where that Secret is theirs to read, opens a terminal whose
//! pod runs in B, and its shell, attached through the dashboard, works in B
//! with the user's rights there and the dashboard asking nothing there but
//! as the user — over HTTP and in Chromium.

mod common;

use std::time::Duration;

use common::{shared_with_operator, ui::*};
use k8s_openapi::api::{
    core::v1::{ConfigMap, Secret},
    rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding},
};
use kube::{Api, api::PostParams};
use portico::{
    api::Terminal,
    controller::terminal::build::UID_LABEL,
    controlplane::{ControlPlane, free_port},
};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn alice_opens_a_terminal_in_another_cluster_and_its_shell_has_her_rights_there() {
    let a = shared_with_operator();
    let b = tokio::task::spawn_blocking(ControlPlane::start_with_node)
        .await
        .unwrap()
        .expect("cluster B with a node");
    let b_admin = b.admin_client().await.unwrap();
    portico::dev::setup_demo(&b_admin).await.unwrap();
    // Only cluster B's team-a holds this ConfigMap: the shell shows where it works.
    let marker: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "only-in-cluster-b"}, "data": {"cluster": "b"}
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(b_admin.clone(), "team-a")
        .create(&PostParams::default(), &marker)
        .await
        .unwrap();

    // The operator's way into B: B's admin kubeconfig, in team-a of cluster A only.
    let secret = common::fixtures::kubeconfig_secret("cluster-b", &b);
    let a_admin = a.admin_client().await.unwrap();
    Api::<Secret>::namespaced(a_admin.clone(), "team-a")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    // The dashboard's way into B: the chart's dashboard identity, made in B.
    let in_b = common::operator::chart_identity(&b, "templates/dashboard-rbac.yaml", "portico-dashboard").await;
    common::operator::ensure_namespace(a, portico::dev::demo::SESSIONS_NAMESPACE).await;
    let port = free_port().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let config = format!(
        "listen: 127.0.0.1:{port}\npublicUrl: {base}\ndevUsers: [{{name: alice, groups: [developers]}}, {{name: bob, groups: [developers]}}]\nsession: {{profile: developer, namespace: {}}}\nassetsDir: {}\nterminals:\n  shortcuts: {}\nclusters:\n  - name: cluster-b\n    title: Cluster B\n    secretName: cluster-b\n    kubeconfigFile: {}\n",
        portico::dev::demo::SESSIONS_NAMESPACE,
        ui_assets().display(),
        serde_json::to_string(&test_shortcuts()).unwrap(),
        in_b.display(),
    );
    let _ui = dashboard("ui-clusters", &config).await;
    wait_http(&format!("{base}/healthz")).await;

    // alice reads the Secret in team-a, so B is offered to her there; bob,
    // of team-b where there is no such Secret, is not offered it.
    let mut alice = Browser::new();
    alice.dev_login(&base, "alice").await;
    let page = alice.get(&format!("{base}/terminals")).await.text().await.unwrap();
    assert!(
        page.contains(r#"<option value="cluster-b">Cluster B (namespace team-a)</option>"#),
        "{page}"
    );
    let mut bob = Browser::new();
    bob.dev_login(&base, "bob").await;
    let bobs = bob.get(&format!("{base}/terminals")).await.text().await.unwrap();
    assert!(bobs.contains("Team shell") && !bobs.contains("cluster-b"), "{bobs}");

    // A cluster the dashboard does not know is refused, and nothing is made.
    let token = csrf(&page);
    let terminals = Api::<Terminal>::namespaced(a_admin.clone(), "team-a");
    let before = terminals.list(&Default::default()).await.unwrap().items.len();
    let r = alice
        .post_form(
            &format!("{base}/terminals"),
            &[
                ("csrf", &token),
                ("shortcut", "config/shell"),
                ("namespace", "team-a"),
                ("cluster", "cluster-z"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("There is no cluster &quot;cluster-z&quot; here"),
        "{text}"
    );
    assert_eq!(terminals.list(&Default::default()).await.unwrap().items.len(), before);
    // Nor a cluster where it is not offered (no Secret of it in team-b), nor
    // a choice of where to run that is not one.
    for (form, says) in [
        (
            [("namespace", "team-b"), ("cluster", "cluster-b"), ("runsIn", "there")],
            "Cluster B is not offered in namespace team-b",
        ),
        (
            [("namespace", "team-a"), ("cluster", "cluster-b"), ("runsIn", "Here")],
            "There is no choice &quot;Here&quot; of where the terminal runs",
        ),
    ] {
        let mut fields = vec![("csrf", token.as_str()), ("shortcut", "config/shell")];
        fields.extend(form);
        let r = alice.post_form(&format!("{base}/terminals"), &fields).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{says}: {text}");
    }
    assert_eq!(terminals.list(&Default::default()).await.unwrap().items.len(), before);

    // alice opens the team shell in B.
    let in_b = [
        ("csrf", token.as_str()),
        ("shortcut", "config/shell"),
        ("namespace", "team-a"),
        ("cluster", "cluster-b"),
    ];
    let key = open(&mut alice, &base, &in_b).await;
    let name = key.split('/').nth(1).unwrap().to_string();
    let t = terminals.get(&name).await.unwrap();
    for side in [&t.spec.host.cluster, &t.spec.target.cluster] {
        assert_eq!(side.as_ref().unwrap().kubeconfig_secret_ref.name, "cluster-b");
    }
    let ready = |t: &Terminal| t.status.as_ref().is_some_and(|s| common::wait::ready(&s.conditions));
    let t = common::wait::present(&terminals, &name, "Ready", ready).await;
    let st = t.status.unwrap();
    let (pod, host_ns) = (st.pod_name.unwrap(), st.host_namespace.unwrap());
    assert_eq!(host_ns, "team-a");
    let b_pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(b_admin.clone(), &host_ns);
    assert!(b_pods.get_opt(&pod).await.unwrap().is_some(), "the pod runs in B");
    let a_pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(a_admin.clone(), &host_ns);
    assert!(a_pods.get_opt(&pod).await.unwrap().is_none(), "and not in A");

    let listed = alice.get(&format!("{base}/terminals")).await.text().await.unwrap();
    assert!(
        listed.contains(r#"team-a <small class="cluster">in Cluster B</small>"#),
        "{listed}"
    );
    let shown = alice
        .get(&format!("{base}/terminals/{key}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(shown.contains("Runs in cluster <strong>Cluster B</strong>"), "{shown}");

    // The shell, attached through the dashboard, works in B with alice's
    // rights there: team-a's ConfigMap of B, and nothing of team-b.
    let out = shell(
        &alice,
        &base,
        &key,
        "kubectl get configmap only-in-cluster-b -o jsonpath='{.data.cluster}{\"=cluster\\n\"}'; kubectl -n team-b get configmaps 2>&1 | tail -1; echo done-$((6*7))\n",
        "done-42",
    )
    .await;
    assert!(out.contains("b=cluster"), "{out}");
    assert!(
        out.contains("cannot list resource \"configmaps\"") && out.contains("in the namespace \"team-b\""),
        "{out}"
    );

    // bob, who may not read alice's Terminal, is not attached to it.
    let refused = bob_attach(&bob, &base, &key).await;
    assert!(refused.contains("error"), "{refused}");

    // In B, the attach used the attach token and the token was asked for
    // as alice, by the dashboard's identity there.
    let events = b.audit_events();
    let token_for_alice = events.iter().any(|e| {
        e.object_ref
            .as_ref()
            .is_some_and(|o| o.subresource == "token" && o.namespace == host_ns)
            && e.impersonated_user.as_ref().is_some_and(|u| u.username == "alice")
            && e.user.username == "system:serviceaccount:portico-system:portico-dashboard"
    });
    assert!(token_for_alice, "the attach token was asked for as alice in B");

    // Run here, reach there: the pod in a namespace of its own in A (alice
    // may make namespaces in A for it), its roles and kubeconfig in B.
    let creator: ClusterRole = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "ui-clusters-namespace-creator"},
        "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]}]
    }))
    .unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "ui-clusters-namespace-creator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ui-clusters-namespace-creator"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]
    }))
    .unwrap();
    portico::install::apply(&a_admin, &creator).await.unwrap();
    portico::install::apply(&a_admin, &binding).await.unwrap();
    let here_key = open(&mut alice, &base, &[&in_b[..], &[("runsIn", "here")]].concat()).await;
    let here_name = here_key.split('/').nth(1).unwrap().to_string();
    let here = common::wait::present(&terminals, &here_name, "Ready", ready).await;
    assert!(here.spec.host.cluster.is_none() && here.spec.host.temporary_namespace == Some(true));
    let uid = kube::ResourceExt::uid(&here).unwrap();
    let by_uid = kube::api::ListParams::default().labels(&format!("{UID_LABEL}={uid}"));
    let bound_in = |client: kube::Client| {
        let by_uid = by_uid.clone();
        async move {
            Api::<RoleBinding>::namespaced(client, "team-a")
                .list(&by_uid)
                .await
                .unwrap()
                .items
                .len()
        }
    };
    assert!(bound_in(b_admin.clone()).await > 0, "its roles are bound in B");
    assert_eq!(bound_in(a_admin.clone()).await, 0, "and not in A");
    let host = here.status.unwrap().host_namespace.unwrap();
    assert_ne!(host, "team-a", "it runs in a namespace of its own");
    let shown = alice
        .get(&format!("{base}/terminals/{here_key}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        shown.contains("Works on cluster <strong>Cluster B</strong>, namespace team-a"),
        "{shown}"
    );
    // Its shell runs in A; its kubeconfig names B's API server.
    let server = b.kubeconfig().clusters[0]
        .cluster
        .as_ref()
        .unwrap()
        .server
        .clone()
        .unwrap();
    let out = shell(
        &alice,
        &base,
        &here_key,
        "kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}{\"=server\\n\"}'\n",
        "=server\r\n",
    )
    .await;
    assert!(out.contains(&format!("{server}=server")), "{out}");
    terminals.delete(&here_name, &Default::default()).await.unwrap();

    // The same in Chromium: offered, opened, named, and a shell that answers from B.
    let flow = browser_script(
        "cluster_terminal.mjs",
        &[
            &base,
            "alice",
            "cluster-b",
            "Cluster B",
            screenshots().to_str().unwrap(),
        ],
    );
    expect_browser_ok(flow).await;
    for t in terminals.list(&Default::default()).await.unwrap() {
        let in_b = t
            .spec
            .host
            .cluster
            .as_ref()
            .is_some_and(|c| c.kubeconfig_secret_ref.name == "cluster-b");
        if in_b && t.metadata.name.as_deref() != Some(name.as_str()) {
            terminals
                .delete(t.metadata.name.as_deref().unwrap(), &Default::default())
                .await
                .unwrap();
        }
    }

    terminals.delete(&name, &Default::default()).await.unwrap();
    let gone =
        kube::runtime::wait::await_condition(b_pods, &pod, |p: Option<&k8s_openapi::api::core::v1::Pod>| p.is_none());
    tokio::time::timeout(Duration::from_secs(120), gone)
        .await
        .expect("the pod in B goes with the Terminal")
        .unwrap();
    Api::<Secret>::namespaced(a_admin.clone(), "team-a")
        .delete("cluster-b", &Default::default())
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(a_admin.clone())
        .delete("ui-clusters-namespace-creator", &Default::default())
        .await
        .unwrap();
    Api::<ClusterRole>::all(a_admin)
        .delete("ui-clusters-namespace-creator", &Default::default())
        .await
        .unwrap();
}

/// bob opens alice's terminal's socket; returns what the dashboard says.
async fn bob_attach(bob: &Browser, base: &str, key: &str) -> String {
    use futures::StreamExt;
    let mut ws = open_socket(bob, base, key, base).await.expect("websocket");
    let mut said = String::new();
    let read = async {
        while let Some(Ok(m)) = ws.next().await {
            match m {
                tokio_tungstenite::tungstenite::Message::Text(t) => said.push_str(&t),
                tokio_tungstenite::tungstenite::Message::Close(_) => break,
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the dashboard closes the socket");
    said
}
