//! `helm test`, the NOTES, and the webhook configurations the chart ships.

use crate::*;

#[test]
fn helm_test_checks_each_component_where_its_service_sends_the_kubelets_probes() {
    let cert_manager = ["--set", "webhook.tls=certManager"];
    for (extra, expected) in [
        (&[][..], &["portico-test-operator", "portico-test-webhook"][..]),
        (
            &cert_manager[..],
            &["portico-test-operator", "portico-test-webhook"][..],
        ),
        (
            &DASHBOARD[..],
            &[
                "portico-test-dashboard",
                "portico-test-operator",
                "portico-test-webhook",
            ][..],
        ),
    ] {
        let docs = render(extra);
        let mut tests: Vec<Pod> = docs
            .iter()
            .filter(|d| d["metadata"]["annotations"]["helm.sh/hook"] == "test")
            .map(typed)
            .collect();
        tests.sort_by_key(|p| p.metadata.name.clone());
        let names: Vec<&str> = tests.iter().map(|p| p.metadata.name.as_deref().unwrap()).collect();
        assert_eq!(names, expected);
        for t in &tests {
            let name = t.metadata.name.as_deref().unwrap();
            let spec = t.spec.as_ref().unwrap();
            let check = &spec.containers[0];
            let args = check.args.clone().unwrap();
            let url: http::Uri = args.last().unwrap().parse().unwrap();
            // <service>.<namespace>.svc, a Service the chart makes, one of its ports...
            let (svc_name, ns) = url
                .host()
                .unwrap()
                .strip_suffix(".svc")
                .unwrap()
                .split_once('.')
                .unwrap();
            let svc: Service = typed(doc(&docs, "Service", svc_name));
            assert_eq!(svc.metadata.namespace.as_deref(), Some(ns));
            let svc_spec = svc.spec.unwrap();
            let svc_port = svc_spec
                .ports
                .unwrap()
                .into_iter()
                .find(|p| Some(p.port as u16) == url.port_u16())
                .unwrap_or_else(|| panic!("{name}: {url} is no port of Service {svc_name}"));
            // ...which leads to a port of the container of the pods it selects.
            let target = serde_json::to_value(svc_port.target_port.unwrap()).unwrap();
            let selected: Vec<Deployment> = docs
                .iter()
                .filter(|d| d["kind"] == "Deployment")
                .map(typed::<Deployment>)
                .filter(|d| {
                    let labels = d.spec.clone().unwrap().template.metadata.unwrap().labels.unwrap();
                    selects(svc_spec.selector.as_ref().unwrap(), &labels)
                })
                .collect();
            assert_eq!(selected.len(), 1, "{name}: Service {svc_name} selects one Deployment");
            let pod_spec = selected[0].spec.clone().unwrap().template.spec.unwrap();
            let container = pod_spec
                .containers
                .iter()
                .find(|c| {
                    c.ports.iter().flatten().any(|p| {
                        target == json!(p.name.clone().unwrap_or_default()) || target == json!(p.container_port)
                    })
                })
                .unwrap_or_else(|| panic!("{name}: no container has port {target}"));
            match url.scheme_str() {
                // Over HTTP: the path and port the kubelet's readiness probe asks, and an HTTP error fails.
                Some("http") => {
                    let probe = container.readiness_probe.clone().unwrap().http_get.unwrap();
                    assert_eq!(probe.path.as_deref(), Some(url.path()), "{name}");
                    assert_eq!(serde_json::to_value(probe.port).unwrap(), target, "{name}");
                    assert!(args.iter().any(|a| a == "--fail"), "{name}");
                }
                // The webhook: TLS checked against ca.crt of the Secret the operator serves from.
                Some("https") => {
                    let ca = &args[args.iter().position(|a| a == "--cacert").unwrap() + 1];
                    let mount = check
                        .volume_mounts
                        .iter()
                        .flatten()
                        .find(|m| ca.starts_with(&m.mount_path))
                        .unwrap_or_else(|| panic!("{name}: {ca} is on no volume"));
                    let volume = spec.volumes.iter().flatten().find(|v| v.name == mount.name).unwrap();
                    let secret = volume.secret.clone().unwrap();
                    assert!(ca.ends_with("/ca.crt"));
                    assert!(
                        secret.items.unwrap().iter().all(|i| i.key == "ca.crt"),
                        "only the CA, not the key"
                    );
                    let cfg = operator_config(&docs);
                    let serving = match &cfg.webhook.cert_dir {
                        Some(dir) => {
                            let m = container
                                .volume_mounts
                                .iter()
                                .flatten()
                                .find(|m| Path::new(&m.mount_path) == dir.as_path())
                                .unwrap();
                            let v = pod_spec.volumes.iter().flatten().find(|v| v.name == m.name).unwrap();
                            v.secret.clone().unwrap().secret_name.unwrap()
                        }
                        None => cfg.webhook.cert_secret.name.clone(),
                    };
                    assert_eq!(secret.secret_name.as_deref(), Some(serving.as_str()), "{name}");
                    assert_eq!(
                        serde_json::to_value(cfg.webhook.service.unwrap().port).unwrap(),
                        json!(svc_port.port)
                    );
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}

/// The NOTES `helm install` prints, and the objects it installs, for
/// values `extra`. `helm template` leaves NOTES.txt out and an install (even
/// a dry run) needs every kind to exist in a cluster, so a copy of the chart
/// renders the notes into a ConfigMap.
fn notes(extra: &[&str]) -> (String, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("portico");
    common::copy_dir(Path::new(CHART), &chart);
    let text = std::fs::read_to_string(chart.join("templates/NOTES.txt")).unwrap();
    std::fs::write(
        chart.join("templates/zz-notes.yaml"),
        format!(
            "{{{{- define \"zz.notes\" }}}}{text}{{{{- end }}}}\n\
             {{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {{\"name\": \"zz-notes\"}}, \
             \"data\": {{\"notes\": {{{{ include \"zz.notes\" . | toJson }}}}}}}}\n"
        ),
    )
    .unwrap();
    let docs = render_chart(chart.to_str().unwrap(), extra);
    let notes = doc(&docs, "ConfigMap", "zz-notes")["data"]["notes"]
        .as_str()
        .unwrap()
        .to_string();
    (notes, docs)
}

#[test]
fn the_notes_render_for_every_kind_of_installation() {
    let mut variants: Vec<Vec<&str>> = vec![vec![], DASHBOARD.to_vec()];
    for extra in [
        &["--set", "dashboard.ingress.enabled=true"][..],
        &[
            "--set",
            "dashboard.httpRoute.enabled=true",
            "--set-json",
            r#"dashboard.httpRoute.parentRefs=[{"name":"public"}]"#,
        ][..],
        &["--set-json", "dashboard.session.claimGroups=[]"][..],
    ] {
        let mut v = DASHBOARD.to_vec();
        v.extend(extra);
        variants.push(v);
    }
    for extra in variants {
        let (notes, docs) = notes(&extra);
        // What the notes say to wait for is the operator the chart installs.
        let waited = notes
            .split("rollout status deployment/")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("no rollout status in\n{notes}"));
        let d = doc(&docs, "Deployment", waited);
        assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/component"], "operator");
        assert!(notes.contains("helm test portico -n portico-system"), "{notes}");
        // With the dashboard: where users reach it.
        if extra.contains(&"dashboard.enabled=true") {
            assert!(notes.contains(&ui_config(&docs).public_url), "{notes}");
        }
    }
}

#[test]
fn the_charts_webhook_configurations_are_the_ones_the_operator_builds() {
    use portico::webhook::registration::{mutating, validating};
    for extra in [&[][..], &["--set", "webhook.tls=certManager"][..]] {
        let docs = render(extra);
        let cfg = operator_config(&docs);
        let built = [
            (
                "MutatingWebhookConfiguration",
                serde_json::to_value(mutating(&cfg.webhook, "")).unwrap(),
            ),
            (
                "ValidatingWebhookConfiguration",
                serde_json::to_value(validating(&cfg.webhook, "")).unwrap(),
            ),
        ];
        for (kind, mut want) in built {
            for hook in want["webhooks"].as_array_mut().unwrap() {
                hook["clientConfig"].as_object_mut().unwrap().remove("caBundle");
            }
            let got = docs
                .iter()
                .find(|d| d["kind"] == kind)
                .unwrap_or_else(|| panic!("the chart renders a {kind}"));
            assert_eq!(got["metadata"]["name"], want["metadata"]["name"], "{kind} {extra:?}");
            assert_eq!(got["webhooks"], want["webhooks"], "{kind} {extra:?}");
            // The CA comes from the operator (which never creates the
            // configurations) or from cert-manager's injector.
            let injected = got["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].as_str();
            assert_eq!(injected.is_some(), !extra.is_empty(), "{kind} {extra:?}");
            assert_eq!(cfg.webhook.inject_ca_bundle, extra.is_empty());
            assert!(!cfg.webhook.manage_configurations);
        }
    }
}
