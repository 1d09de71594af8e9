//! The Insights page against the real control plane, operator, OpenID
//! Connect provider and Chromium: a Deployment of alice's that stalls
//! (a template that does not render) and a Terminal in team-a that binds a
//! role cluster-wide appear as action items and findings for alice, with
//! the catalog templates' findings; bob, of team-b, sees neither; the
//! exports carry the same; a bad export is refused; the page in both
//! themes and printed to PDF.

mod common;

use common::{fixtures::deployment, shared_with_operator, ui::*};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, api::PostParams};
use portico::api::{Deployment, Terminal};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn insights_name_what_needs_a_change_where_the_viewer_may_look() {
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    let cp = shared_with_operator();
    let admin = cp.admin_client().await.unwrap();
    let broken: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "insights-broken", "namespace": portico::dev::CATALOG_NAMESPACE, "labels": {"portico.dev/template": ""}},
        "data": {"template.yaml": "displayName: Broken\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: v1\n  kind: [oops\n"}
    }))
    .unwrap();
    portico::install::apply(&admin, &broken).await.unwrap();
    let alice = cp
        .client_as("alice", &["developers", "system:authenticated"])
        .await
        .unwrap();
    let deployments = Api::<Deployment>::namespaced(alice, "team-a");
    deployments
        .create(
            &PostParams::default(),
            &deployment("insights-stalled", "insights-broken", json!({})),
        )
        .await
        .unwrap();
    let stalled = |d: &Deployment| {
        d.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Stalled" && c.status == "True"))
    };
    common::wait::present(&deployments, "insights-stalled", "Stalled", stalled).await;
    let terminals = Api::<Terminal>::namespaced(admin.clone(), "team-a");
    let wide: Terminal = serde_json::from_value(json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Terminal", "metadata": {"name": "insights-wide"},
        "spec": {
            "host": {"temporaryNamespace": true, "pod": {"image": common::TOOLBOX}},
            "target": {"namespace": "team-a", "roleBindings": [
                {"roleRef": {"kind": "ClusterRole", "name": "view"}, "bindingKind": "ClusterRoleBinding", "nameSuffix": "view"}
            ]}
        }
    }))
    .unwrap();
    terminals.create(&PostParams::default(), &wide).await.unwrap();

    let mut b = Browser::new();
    b.login(&s.base, "alice").await;
    // The page: the stall and the cluster-wide binding as action items and
    // findings (the watch brings the Terminal within moments), and the
    // catalog's templates checked.
    let mut page = String::new();
    for _ in 0..100 {
        // minijinja escapes / and ' in what it interpolates.
        page = b
            .get(&format!("{}/insights", s.base))
            .await
            .text()
            .await
            .unwrap()
            .replace("&#x2f;", "/");
        if page.contains("team-a/insights-wide") && page.contains("team-a/insights-stalled is Stalled") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for says in [
        "Deployment team-a/insights-stalled is Stalled",
        "cluster-wide-binding",
        "it binds ClusterRole view in every namespace",
        "Template webapp",
        "may run as root",
        "Template insights-broken",
        "set prometheus.url in the dashboard&#x27;s configuration",
        "Usage figures over time come from a Prometheus",
    ] {
        assert!(page.contains(says), "{says}: {page}");
    }
    // The exports.
    let all: serde_json::Value = b
        .get(&format!("{}/insights?format=json", s.base))
        .await
        .json()
        .await
        .unwrap();
    assert!(all["overview"]["stalled"].as_u64().unwrap() >= 1, "{all}");
    let findings = all["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["subject"] == "team-a/insights-wide" && f["check"] == "cluster-wide-binding")
    );
    assert!(
        findings
            .iter()
            .any(|f| f["subject"] == "insights-broken" && f["check"] == "renders" && f["severity"] == "notice")
    );
    assert!(
        all["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "insights-stalled" && d["state"] == "stalled")
    );
    assert!(
        all["usage"]["unavailable"]
            .as_str()
            .is_some_and(|u| u.contains("prometheus.url")),
        "{all}"
    );
    let usage = b
        .get(&format!("{}/insights?format=csv&table=usage", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        usage,
        "per,name,operations,succeeded,success_rate,last_activity,terminals_opened,terminal_hours,idle_expirations,max_lifetime_expirations,logins,revocations\n",
        "no Prometheus: the header alone"
    );
    let csv = b
        .get(&format!("{}/insights?format=csv&table=findings", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("kind,subject,check,severity,found,fix\n"), "{csv}");
    assert!(
        csv.contains("Terminal,team-a/insights-wide,cluster-wide-binding,warning,"),
        "{csv}"
    );
    let r = b.get(&format!("{}/insights?format=csv&table=secrets", s.base)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("There is no table &quot;secrets&quot;")
    );
    let r = b.get(&format!("{}/insights?format=xml", s.base)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // bob may not list team-a's Deployments or Terminals: none of it is his.
    let mut bob = Browser::new();
    bob.login(&s.base, "bob").await;
    let his = bob
        .get(&format!("{}/insights", s.base))
        .await
        .text()
        .await
        .unwrap()
        .replace("&#x2f;", "/");
    assert!(
        his.contains("Template webapp") && !his.contains("insights-stalled") && !his.contains("insights-wide"),
        "{his}"
    );

    let flow = browser_script("insights.mjs", &[&s.base, "alice", screenshots().to_str().unwrap()]);
    expect_browser_ok(flow).await;

    terminals.delete("insights-wide", &Default::default()).await.unwrap();
    deployments
        .delete("insights-stalled", &Default::default())
        .await
        .unwrap();
    Api::<ConfigMap>::namespaced(admin, portico::dev::CATALOG_NAMESPACE)
        .delete("insights-broken", &Default::default())
        .await
        .unwrap();
}
