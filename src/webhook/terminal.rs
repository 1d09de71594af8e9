//! Admission of Terminals. Pure: lifetime defaults and a temporary
//! namespace's name at creation; lifetime caps, privileged pods and what a
//! Terminal hosted in a shared namespace may bind. With API calls: the
//! kubeconfig Secrets it names, the host namespace, and the target grants,
//! in each cluster concerned (see [`crate::access`] for the rules).

use kube::core::{DynamicObject, admission::AdmissionRequest, admission::Operation};
use serde_json::Value;

use super::{
    Denial,
    mutate::set_annotation,
    validate::{Followup, check_lifetimes},
};
use crate::{
    access::{Checker, authorize_target, cluster_name, require, resource},
    api::{Terminal, TerminalSpec, keys::TEMPORARY_NAMESPACE},
    clusters::Clusters,
    config::OperatorConfig,
    creator::Creator,
    lifetime,
};

/// What admission adds to a new Terminal: the default lifetimes, and the
/// name of the temporary namespace it asks for (`term-` and a random suffix).
pub fn mutate_create(
    ops: &mut Vec<Value>,
    obj: &DynamicObject,
    cfg: &OperatorConfig,
    random_suffix: impl FnOnce() -> String,
) {
    let (idle, max) = (&cfg.terminal.idle_timeout.default, &cfg.terminal.max_lifetime.default);
    super::mutate::default_lifetimes(ops, obj, &idle.to_string(), &max.to_string());
    // A spec that does not parse gets no name; validation refuses it, saying why.
    let temporary = super::typed_spec::<TerminalSpec>(obj)
        .is_ok_and(|s| s.host.temporary_namespace == Some(true) || s.target.temporary_namespace == Some(true));
    if temporary {
        set_annotation(ops, obj, TEMPORARY_NAMESPACE, &format!("term-{}", random_suffix()));
    }
}

/// A Terminal's own rules, on its typed spec: lifetimes within the caps,
/// and privileged pods only for the configured groups. A new one is then
/// authorized against its creator's RBAC ([`Followup::Terminal`]).
pub fn validate(
    req: &AdmissionRequest<DynamicObject>,
    obj: &DynamicObject,
    creator: Creator,
    cfg: &OperatorConfig,
) -> Result<Option<Followup>, Denial> {
    let terminal: Terminal = serde_json::from_value(serde_json::to_value(obj).unwrap_or_default())
        .map_err(|e| Denial::invalid(format!("not a valid Terminal: {e}")))?;
    check_lifetimes(
        lifetime::problems(
            terminal.spec.idle_timeout.as_deref(),
            terminal.spec.max_lifetime.as_deref(),
            &cfg.terminal.idle_timeout,
            &cfg.terminal.max_lifetime,
        ),
        "",
    )?;
    if let Operation::Create = req.operation {
        let pod = &terminal.spec.host.pod;
        let asked: Vec<&str> = [
            (pod.privileged, "privileged"),
            (pod.host_pid, "hostPID"),
            (pod.host_network, "hostNetwork"),
        ]
        .iter()
        .filter(|(v, _)| *v == Some(true))
        .map(|(_, n)| *n)
        .collect();
        if !asked.is_empty() && !creator.in_any(&cfg.terminal.privileged_groups) {
            let needs = format!(
                "that needs membership in one of the groups {:?} (set by the platform admins in the operator \
                 configuration)",
                cfg.terminal.privileged_groups
            );
            let denial = Denial::forbidden(format!(
                "{} may not request {} in spec.host.pod: {needs}",
                creator.user,
                asked.join(", "),
            ));
            return Err(asked.iter().fold(denial, |d, field| {
                d.with_cause(
                    format!("spec.host.pod.{field}"),
                    format!("{} may not request {field}: {needs}", creator.user),
                )
            }));
        }
        return Ok(Some(Followup::Terminal(creator, Box::new(terminal))));
    }
    Ok(None)
}

/// A Terminal hosted in a named (shared) namespace may only bind, in that
/// same namespace and cluster, roles from `allowed`: its pod and kubeconfig
/// Secret are open to whoever may exec into pods or read Secrets there, so
/// anything more would hand the Terminal's access to every editor of the
/// host namespace (pure).
pub fn check_shared_host(t: &Terminal, allowed: &[String]) -> Result<(), Denial> {
    use crate::api::common::{BindingKind, RoleKind};
    let Some(host) = t.spec.host.namespace.as_ref() else {
        return Ok(());
    };
    let target = &t.spec.target;
    if target.role_bindings.is_empty() {
        return Ok(());
    }
    let fix = "set spec.host.temporaryNamespace: true (and remove spec.host.namespace) to keep this access to yourself";
    let open = format!(
        "the terminal pod and its kubeconfig Secret would live in namespace {host}, where whoever may exec into \
         pods or read Secrets could use them"
    );
    if target.cluster != t.spec.host.cluster {
        return Err(Denial::forbidden_field(
            "spec.target.cluster",
            format!("{open}, and so reach another cluster; {fix}"),
        ));
    }
    if target.namespace.as_ref() != Some(host) {
        let (field, reach) = match &target.namespace {
            Some(ns) => ("spec.target.namespace", format!("namespace {ns}")),
            None => ("spec.target.temporaryNamespace", "a temporary namespace".to_string()),
        };
        let detail = format!("{open}, and so reach {reach}; {fix}");
        return Err(Denial::forbidden(format!("spec.target: {detail}")).with_cause(field, detail));
    }
    // One cause for each binding at fault.
    let mut refused: Option<Denial> = None;
    for (i, b) in target.role_bindings.iter().enumerate() {
        let detail = if b.binding_kind == BindingKind::ClusterRoleBinding {
            format!(
                "a ClusterRoleBinding from a Terminal hosted in namespace {host}: {open}, and so act cluster-wide; {fix}"
            )
        } else if b.role_ref.kind != RoleKind::ClusterRole || !allowed.contains(&b.role_ref.name) {
            let kind = if b.role_ref.kind == RoleKind::Role {
                "Role"
            } else {
                "ClusterRole"
            };
            format!(
                "{kind} {} is not one the platform admins allow for Terminals in a named host namespace ({}): \
                 {open} with that role; {fix}",
                b.role_ref.name,
                if allowed.is_empty() {
                    "none are".to_string()
                } else {
                    format!("ClusterRoles {}", allowed.join(", "))
                }
            )
        } else {
            continue;
        };
        let field = format!("spec.target.roleBindings[{i}]");
        refused = Some(match refused {
            // The message names the first; the causes name every one.
            None => Denial::forbidden_field(field, detail),
            Some(d) => d.with_cause(field, detail),
        });
    }
    refused.map_or(Ok(()), Err)
}

/// All checks for a new Terminal in `namespace`, with `temporary` the
/// generated temporary namespace name. Returns warnings for clusters that
/// cannot be reached now (the controller checks those before granting).
pub async fn authorize_terminal(
    clusters: &Clusters,
    namespace: &str,
    creator: &Creator,
    terminal: &Terminal,
    temporary: Option<&str>,
) -> Result<Vec<String>, Denial> {
    let cache = clusters.access_cache();
    let local = Checker {
        client: &clusters.local().client,
        cluster: "this cluster",
        cache,
    };
    let spec = &terminal.spec;
    for (field, cluster) in [("host", &spec.host.cluster), ("target", &spec.target.cluster)] {
        if let Some(c) = cluster {
            let name = &c.kubeconfig_secret_ref.name;
            let why =
                format!(" (the Secret named in spec.{field}.cluster.kubeconfigSecretRef, in namespace {namespace})");
            require(&local, creator, resource(namespace, "get", "", "secrets", name), &why)
                .await
                .map_err(|d| d.on(format!("spec.{field}.cluster.kubeconfigSecretRef.name")))?;
        }
    }
    let mut warnings = vec![];
    match clusters.get(namespace, spec.host.cluster.as_ref()).await {
        Ok(host) => {
            let name = cluster_name(&host.remote);
            let c = Checker {
                client: &host.client,
                cluster: &name,
                cache,
            };
            let (access, why, field) = match &spec.host.namespace {
                Some(ns) => (
                    resource(ns, "create", "", "pods", ""),
                    format!(" in namespace {ns}, where the terminal pod would run"),
                    "spec.host.namespace",
                ),
                None => (
                    resource("", "create", "", "namespaces", ""),
                    " (spec.host.temporaryNamespace creates one)".to_string(),
                    "spec.host.temporaryNamespace",
                ),
            };
            require(&c, creator, access, &why).await.map_err(|d| d.on(field))?;
        }
        Err(e) => warnings.push(format!(
            "host cluster not reachable, the operator checks permissions there later: {e}"
        )),
    }
    match clusters.get(namespace, spec.target.cluster.as_ref()).await {
        Ok(target) => {
            let name = cluster_name(&target.remote);
            authorize_target(
                &Checker {
                    client: &target.client,
                    cluster: &name,
                    cache,
                },
                creator,
                terminal,
                temporary,
            )
            .await?
        }
        Err(e) => warnings.push(format!(
            "target cluster not reachable, the operator checks permissions there before granting: {e}"
        )),
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn terminal(spec_extra: Value) -> Value {
        let mut spec =
            json!({"host": {"namespace": "team-a", "pod": {"image": "alpine"}}, "target": {"namespace": "team-a"}});
        json_patch::merge(&mut spec, &spec_extra);
        json!({"apiVersion": "portico.dev/v1alpha1", "kind": "Terminal",
               "metadata": {"name": "t", "namespace": "team-a"}, "spec": spec})
    }

    #[test]
    fn a_shared_host_binds_only_the_allowed_roles_in_itself() {
        let binding = |kind: &str, role_kind: &str, role: &str| json!([{"roleRef": {"kind": role_kind, "name": role}, "bindingKind": kind, "nameSuffix": "x"}]);
        let allowed = OperatorConfig::default().terminal.shared_host_roles;
        let parse = |v: Value| -> Terminal { serde_json::from_value(v).unwrap() };
        let check = |spec: Value| check_shared_host(&parse(terminal(spec)), &allowed);
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
        // Every binding at fault is a cause of its own.
        let two = json!({"target": {"roleBindings": [
            {"roleRef": {"kind": "ClusterRole", "name": "view"}, "bindingKind": "RoleBinding", "nameSuffix": "v"},
            {"roleRef": {"kind": "ClusterRole", "name": "admin"}, "bindingKind": "RoleBinding", "nameSuffix": "a"},
            {"roleRef": {"kind": "ClusterRole", "name": "view"}, "bindingKind": "ClusterRoleBinding", "nameSuffix": "c"},
        ]}});
        let d = check(two).unwrap_err();
        let fields: Vec<&str> = d.causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["spec.target.roleBindings[1]", "spec.target.roleBindings[2]"]);
        assert!(
            d.message.starts_with("spec.target.roleBindings[1]: ClusterRole admin"),
            "{}",
            d.message
        );
        assert!(d.causes[1].message.contains("act cluster-wide"), "{:?}", d.causes);
        let d = check(
            json!({"target": {"namespace": "team-b", "roleBindings": binding("RoleBinding", "ClusterRole", "edit")}}),
        )
        .unwrap_err();
        assert_eq!(d.causes[0].field, "spec.target.namespace");
        let apart = json!({"host": {"namespace": null, "temporaryNamespace": true},
            "target": {"roleBindings": binding("ClusterRoleBinding", "ClusterRole", "admin")}});
        assert!(
            check(apart).is_ok(),
            "a temporary host namespace is the creator's alone"
        );
    }
}
