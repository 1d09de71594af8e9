//! The dashboard's part of the chart: a valid configuration that applies,
//! a default install that lets every user log in, the operator's scheduling
//! knobs, and an Ingress or HTTPRoute.

use crate::*;

#[tokio::test]
async fn the_dashboard_renders_a_valid_configuration_and_applies() {
    // A server-side dry run creates no namespace, so those the chart makes exist first.
    common::operator::ensure_namespace(shared(), "portico-system").await;
    common::operator::ensure_namespace(shared(), "portico-catalog").await;
    common::operator::ensure_namespace(shared(), "portico-sessions").await;
    let docs = render(&DASHBOARD);
    let cm = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "portico-dashboard")
        .unwrap();
    let cm: ConfigMap = serde_json::from_value(cm.clone()).unwrap();
    let cfg = portico::ui::config::UiConfig::from_yaml(&cm.data.unwrap()["ui.yaml"]).unwrap();
    assert_eq!(cfg.oidc.unwrap().issuer, "https://login.example.com");
    assert!(cfg.terminals.shortcuts.is_empty() && cfg.branding.accent_color.is_none());
    // The dashboard watches SessionClaims only in the session namespace, which the chart makes.
    let sessions_role = docs
        .iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["name"] == "portico-dashboard-sessions")
        .expect("a Role for the session namespace");
    assert_eq!(sessions_role["metadata"]["namespace"], "portico-sessions");
    assert!(
        docs.iter()
            .any(|d| d["kind"] == "Namespace" && d["metadata"]["name"] == "portico-sessions")
    );
    let cluster_role = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "portico-dashboard")
        .unwrap();
    assert!(
        !cluster_role.to_string().contains("sessionclaims"),
        "no cluster-wide SessionClaim access"
    );
    // Branding and shortcuts from values reach the configuration.
    let shortcuts = r#"dashboard.terminals.shortcuts=[{"name":"shell","title":"Shell","image":"docker.io/library/alpine:3.20","roles":[{"kind":"ClusterRole","name":"view"}]}]"#;
    let mut args = DASHBOARD.to_vec();
    args.extend([
        "--set",
        "dashboard.branding.accentColor=#0f766e",
        "--set-json",
        shortcuts,
        "--set",
        "dashboard.terminals.shortcutNamespaces={team-a}",
        "--set",
        "dashboard.trustedProxies={10.0.0.0/8,192.0.2.1}",
    ]);
    let branded = render(&args);
    let cm = branded
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "portico-dashboard")
        .unwrap();
    let cm: ConfigMap = serde_json::from_value(cm.clone()).unwrap();
    let cfg = portico::ui::config::UiConfig::from_yaml(&cm.data.unwrap()["ui.yaml"]).unwrap();
    assert_eq!(cfg.branding.accent_color.as_deref(), Some("#0f766e"));
    assert_eq!(cfg.terminals.shortcuts[0].title, "Shell");
    assert_eq!(cfg.terminals.shortcut_namespaces, ["team-a"]);
    assert!(
        cfg.trusted_proxies.contains("10.1.2.3".parse().unwrap())
            && cfg.trusted_proxies.contains("192.0.2.1".parse().unwrap())
    );
    assert!(cfg.api_server.is_none(), "kubectl as the user is off by default");
    assert!(cfg.prometheus.is_none(), "no Prometheus by default");
    // The API server's trust in the login provider, with both CAs.
    let mut args = DASHBOARD.to_vec();
    args.extend([
        "--set",
        "dashboard.apiServer.server=https://api.example.com:6443",
        "--set",
        "dashboard.apiServer.caPem=API CA",
        "--set",
        "dashboard.oidc.caPem=LOGIN CA",
        "--set",
        "dashboard.apiServer.audiences={kubectl,portico}",
        "--set",
        "dashboard.apiServer.kubectlClientId=kubectl",
        "--set",
        "dashboard.apiServer.dashboardActsWith=token",
        "--set",
        "dashboard.oidc.refreshSeconds=60",
        "--set",
        "dashboard.replicas=1",
    ]);
    let trusting = render(&args);
    let cm: ConfigMap = typed(doc(&trusting, "ConfigMap", "portico-dashboard"));
    let data = cm.data.unwrap();
    let cfg = portico::ui::config::UiConfig::from_yaml(&data["ui.yaml"]).unwrap();
    let api = cfg.api_server.unwrap();
    assert_eq!(api.server, "https://api.example.com:6443");
    assert_eq!(api.kubectl_client_id.as_deref(), Some("kubectl"));
    assert_eq!(api.dashboard_acts_with, portico::ui::config::ActsWith::Token);
    assert_eq!(
        api.ca_file.as_deref(),
        Some(std::path::Path::new("/etc/portico/dashboard-config/apiserver-ca.crt"))
    );
    assert_eq!(
        cfg.oidc.unwrap().ca_file.as_deref(),
        Some(std::path::Path::new("/etc/portico/dashboard-config/oidc-ca.crt"))
    );
    assert_eq!(
        (data["apiserver-ca.crt"].as_str(), data["oidc-ca.crt"].as_str()),
        ("API CA", "LOGIN CA")
    );
    let deployment = doc(&trusting, "Deployment", "portico-dashboard").to_string();
    assert!(deployment.contains("/etc/portico/dashboard-config"), "{deployment}");
    let mut bad = DASHBOARD.to_vec();
    bad.extend(["--set", "dashboard.apiServer.dashboardActsWith=sudo"]);
    let refusal = helm_refusal(&[&["template", "portico", CHART], &bad[..]].concat());
    assert!(refusal.contains("dashboardActsWith"), "{refusal}");
    // Token mode keeps ID tokens in each replica's memory: one replica.
    let two = args
        .iter()
        .map(|a| a.replace("dashboard.replicas=1", "dashboard.replicas=2"))
        .collect::<Vec<_>>();
    let two: Vec<&str> = two.iter().map(String::as_str).collect();
    let refusal = helm_refusal(&[&["template", "portico", CHART], &two[..]].concat());
    assert!(refusal.contains("dashboard.replicas must be 1"), "{refusal}");
    // Another cluster: its entry, and the dashboard's own kubeconfig for it mounted where the entry says.
    let mut args = DASHBOARD.to_vec();
    args.extend([
        "--set",
        "dashboard.clusters[0].name=cluster-b",
        "--set",
        "dashboard.clusters[0].title=Cluster B",
        "--set",
        "dashboard.clusters[0].secretName=cluster-b",
        "--set",
        "dashboard.clusters[0].dashboardKubeconfigSecret=portico-dashboard-cluster-b",
    ]);
    args.extend([
        "--set",
        "dashboard.prometheus.url=http://prometheus-operated.monitoring:9090",
    ]);
    let multi = render(&args);
    let cfg = ui_config(&multi);
    let prometheus = cfg.prometheus.unwrap();
    assert_eq!(prometheus.url, "http://prometheus-operated.monitoring:9090");
    assert_eq!(
        prometheus.source,
        std::collections::BTreeMap::from([("namespace".to_string(), "portico-system".to_string())]),
        "only the series its ServiceMonitor scrapes"
    );
    let b = &cfg.clusters[0];
    assert_eq!(
        (b.name.as_str(), b.title.as_str(), b.secret_key.as_str()),
        ("cluster-b", "Cluster B", "kubeconfig")
    );
    let pod: k8s_openapi::api::apps::v1::Deployment = typed(doc(&multi, "Deployment", "portico-dashboard"));
    let spec = pod.spec.unwrap().template.spec.unwrap();
    let volume = spec
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "cluster-0")
        .unwrap();
    assert_eq!(
        volume.secret.unwrap().secret_name.as_deref(),
        Some("portico-dashboard-cluster-b")
    );
    let mount = spec.containers[0]
        .volume_mounts
        .clone()
        .unwrap()
        .into_iter()
        .find(|m| m.name == "cluster-0")
        .unwrap();
    assert_eq!(
        std::path::Path::new(&mount.mount_path).join("kubeconfig"),
        b.kubeconfig_file
    );
    // Only the dashboard's own objects: the cluster-wide rest is the same as
    // below, and applying it twice at once races with the tests that install it.
    let own: Vec<Value> = multi
        .iter()
        .filter(|d| {
            d["metadata"]["name"] == "portico-dashboard"
                && ["Deployment", "ConfigMap"].contains(&d["kind"].as_str().unwrap_or_default())
        })
        .cloned()
        .collect();
    assert_eq!(own.len(), 2);
    dry_run(&own);
    let without: Vec<&str> = args[..args.len() - 4].to_vec();
    let refusal = helm_refusal(&[&["template", "portico", CHART], &without[..]].concat());
    assert!(refusal.contains("dashboardKubeconfigSecret"), "{refusal}");
    let mut twice = args.clone();
    twice.extend([
        "--set",
        "dashboard.clusters[1].name=cluster-b",
        "--set",
        "dashboard.clusters[1].title=B again",
        "--set",
        "dashboard.clusters[1].secretName=other",
        "--set",
        "dashboard.clusters[1].dashboardKubeconfigSecret=other",
    ]);
    let refusal = helm_refusal(&[&["template", "portico", CHART], &twice[..]].concat());
    assert!(refusal.contains("the name cluster-b is used twice"), "{refusal}");
    assert!(
        docs.iter()
            .any(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "portico-dashboard")
    );
    dry_run(&docs);
    // Without the values it needs, the chart says which.
    let out = std::process::Command::new(shared().binaries().path("helm"))
        .args(["template", "portico", CHART, "--set", "dashboard.enabled=true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("dashboard.publicUrl is required"));
}

/// The priority level and flow schema API Priority and Fairness put a
/// request in, from the response's headers.
#[tokio::test]
async fn by_default_every_user_may_log_in_to_the_dashboard() {
    common::operator::ensure_namespace(shared(), "portico-sessions").await;
    let docs = render(&DASHBOARD);
    let (operator, ui) = (operator_config(&docs), ui_config(&docs));
    // The profile every login claims is offered, to users in any groups the
    // identity provider sends (the webhook's check), or in none.
    let profile = operator.profile(&ui.session.profile).unwrap_or_else(|| {
        panic!(
            "logins claim profile {:?}; the operator offers {:?}",
            ui.session.profile,
            operator.session_profiles.iter().map(|p| &p.name).collect::<Vec<_>>()
        )
    });
    assert!(profile.allows(&[]) && profile.allows(&["some-team".to_string()]));
    // RBAC lets any authenticated user create it in the session namespace:
    // with the chart's Role and RoleBinding applied, a user the cluster has
    // never seen, impersonated as the dashboard does, may.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rbac.yaml");
    let rbac = [
        doc(&docs, "Role", "portico-session-claims"),
        doc(&docs, "RoleBinding", "portico-session-claims"),
    ];
    assert!(
        rbac.iter()
            .all(|d| d["metadata"]["namespace"] == ui.session.namespace.as_str())
    );
    let text: String = rbac
        .iter()
        .map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap()))
        .collect();
    std::fs::write(&file, text).unwrap();
    let out = kubectl(&["apply", "--server-side", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let user = shared()
        .client_as("newcomer@example.com", &["some-team"])
        .await
        .unwrap();
    let claims: Api<SessionClaim> = Api::namespaced(user.clone(), &ui.session.namespace);
    let claim = common::fixtures::claim("login", &ui.session.profile);
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    // The RBAC authorizer's cache takes a moment to see a new binding: bounded polling.
    let mut created = claims.create(&dry, &claim).await;
    for _ in 0..50 {
        if created.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        created = claims.create(&dry, &claim).await;
    }
    created.expect("a newcomer may create a SessionClaim in the session namespace");
    // Read, extend (a keepalive patch) and end one: 404, there is none, not 403.
    let keepalive = json!({"metadata": {"annotations": {"portico.dev/operation": "keepalive"}}});
    let results = [
        claims.get("none").await.err(),
        claims
            .patch("none", &PatchParams::default(), &Patch::Merge(&keepalive))
            .await
            .err(),
        claims.delete("none", &DeleteParams::default()).await.err(),
    ];
    for r in results {
        assert!(matches!(&r, Some(kube::Error::Api(e)) if e.code == 404), "{r:?}");
    }
    // Nothing else there: not the list of who is logged in, no Secrets, and
    // no SessionClaims elsewhere.
    let r = claims.list(&Default::default()).await.err();
    assert!(matches!(&r, Some(kube::Error::Api(e)) if e.code == 403), "{r:?}");
    let secrets: Api<Secret> = Api::namespaced(user.clone(), &ui.session.namespace);
    let r = secrets.list(&Default::default()).await.err();
    assert!(matches!(&r, Some(kube::Error::Api(e)) if e.code == 403), "{r:?}");
    let elsewhere: Api<SessionClaim> = Api::namespaced(user, "default");
    let r = elsewhere.create(&dry, &claim).await.err();
    assert!(matches!(&r, Some(kube::Error::Api(e)) if e.code == 403), "{r:?}");
}

#[tokio::test]
async fn the_dashboard_takes_the_operators_scheduling_knobs_and_an_ingress_or_httproute() {
    let mut args = DASHBOARD.to_vec();
    args.extend([
        "--set",
        "dashboard.replicas=3",
        "--set",
        "dashboard.nodeSelector.pool=web",
        "--set",
        "dashboard.priorityClassName=portico-high",
        "--set-json",
        r#"dashboard.tolerations=[{"key":"dedicated","operator":"Equal","value":"web","effect":"NoSchedule"}]"#,
        "--set-json",
        r#"dashboard.topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"ScheduleAnyway"}]"#,
        "--set",
        "dashboard.podAnnotations.example\\.com/team=platform",
        "--set-json",
        r#"imagePullSecrets=[{"name":"registry"}]"#,
        "--set",
        "dashboard.serviceAccount.create=false",
        "--set",
        "dashboard.serviceAccount.name=portico-ui",
        "--set",
        "dashboard.podDisruptionBudget.minAvailable=50%",
        "--set",
        "dashboard.ingress.enabled=true",
        "--set",
        "dashboard.ingress.className=nginx",
        "--set-json",
        r#"dashboard.ingress.tls=[{"secretName":"portico-tls","hosts":["portico.example.com"]}]"#,
        "--set",
        "dashboard.httpRoute.enabled=true",
        "--set-json",
        r#"dashboard.httpRoute.parentRefs=[{"name":"public","namespace":"gateways","sectionName":"https"}]"#,
    ]);
    let docs = render(&args);
    let d: Deployment = typed(doc(&docs, "Deployment", "portico-dashboard"));
    let spec = d.spec.unwrap();
    let labels = spec.template.metadata.clone().unwrap().labels.unwrap();
    let annotations = spec.template.metadata.unwrap().annotations.unwrap();
    let pod = spec.template.spec.unwrap();
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(pod.node_selector.unwrap()["pool"], "web");
    assert_eq!(pod.priority_class_name.as_deref(), Some("portico-high"));
    assert_eq!(pod.tolerations.unwrap()[0].key.as_deref(), Some("dedicated"));
    assert_eq!(annotations["example.com/team"], "platform");
    assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "registry");
    // A spread constraint without a selector counts the dashboard's own pods.
    let spread = &pod.topology_spread_constraints.unwrap()[0];
    let spread_labels = spread.label_selector.clone().unwrap().match_labels.unwrap();
    assert!(selects(&spread_labels, &labels));
    // An existing service account: the pods use it and the chart binds it, without making it.
    assert_eq!(pod.service_account_name.as_deref(), Some("portico-ui"));
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "ServiceAccount" && d["metadata"]["name"] != "portico-operator")
    );
    let binding = doc(&docs, "ClusterRoleBinding", "portico-dashboard");
    assert_eq!(binding["subjects"][0]["name"], "portico-ui");
    // The disruption budget keeps the dashboard's pods, and only them.
    let operator: Deployment = typed(doc(&docs, "Deployment", "portico-operator"));
    let operator_labels = operator.spec.unwrap().template.metadata.unwrap().labels.unwrap();
    let pdb: PodDisruptionBudget = typed(doc(&docs, "PodDisruptionBudget", "portico-dashboard"));
    let pdb = pdb.spec.unwrap();
    let pdb_labels = pdb.selector.unwrap().match_labels.unwrap();
    assert!(selects(&pdb_labels, &labels) && !selects(&pdb_labels, &operator_labels));
    assert_eq!(serde_json::to_value(pdb.min_available.unwrap()).unwrap(), json!("50%"));
    // The Service reaches the dashboard's pods; the Ingress sends the
    // publicUrl's host to a port of that Service, with the TLS asked for.
    let svc: Service = typed(doc(&docs, "Service", "portico-dashboard"));
    let svc_spec = svc.spec.unwrap();
    assert!(selects(svc_spec.selector.as_ref().unwrap(), &labels));
    let ports = svc_spec.ports.unwrap();
    let ing: Ingress = typed(doc(&docs, "Ingress", "portico-dashboard"));
    let ing = ing.spec.unwrap();
    assert_eq!(ing.ingress_class_name.as_deref(), Some("nginx"));
    assert_eq!(ing.tls.unwrap()[0].secret_name.as_deref(), Some("portico-tls"));
    let rule = &ing.rules.unwrap()[0];
    assert_eq!(rule.host.as_deref(), Some("portico.example.com"));
    let backend = rule.http.as_ref().unwrap().paths[0].backend.service.clone().unwrap();
    assert_eq!(backend.name, "portico-dashboard");
    let port = backend.port.unwrap();
    assert!(
        ports
            .iter()
            .any(|p| p.name == port.name && port.name.is_some() || Some(p.port) == port.number)
    );
    // The HTTPRoute likewise, attached to the Gateway named.
    let route = doc(&docs, "HTTPRoute", "portico-dashboard");
    assert_eq!(route["spec"]["parentRefs"][0]["name"], "public");
    assert_eq!(route["spec"]["hostnames"], json!(["portico.example.com"]));
    let backend = &route["spec"]["rules"][0]["backendRefs"][0];
    assert_eq!(backend["name"], "portico-dashboard");
    assert!(ports.iter().any(|p| json!(p.port) == backend["port"]));
    // The API server takes them (Gateway API is not installed here).
    for ns in ["portico-system", "portico-catalog", "portico-sessions"] {
        common::operator::ensure_namespace(shared(), ns).await;
    }
    let installed: Vec<Value> = docs.iter().filter(|d| d["kind"] != "HTTPRoute").cloned().collect();
    dry_run(&installed);
    // Neither by default; an HTTPRoute needs a Gateway.
    let plain = render(&DASHBOARD);
    assert!(!plain.iter().any(|d| d["kind"] == "Ingress" || d["kind"] == "HTTPRoute"));
    let mut args = vec!["template", "portico", CHART];
    args.extend(DASHBOARD);
    args.extend(["--set", "dashboard.httpRoute.enabled=true"]);
    assert!(helm_refusal(&args).contains("dashboard.httpRoute.parentRefs is required"));
}
