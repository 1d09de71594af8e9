//! What a detail page shows for working with its object from a shell: the
//! object as YAML (as the user read it, without `managedFields`), and the
//! `kubectl` commands that do what the page does (pure).

use serde::Serialize;

/// One command and what it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snippet {
    /// What it does, in words.
    pub what: &'static str,
    /// The command line.
    pub command: String,
}

/// The object as YAML, without `metadata.managedFields` (bookkeeping of
/// server-side apply, long and of no use to a reader).
pub fn yaml_of(object: &impl Serialize) -> String {
    let mut v = serde_json::to_value(object).unwrap_or_default();
    if let Some(meta) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("managedFields");
    }
    serde_yaml_ng::to_string(&v).unwrap_or_default()
}

/// The commands for a Portico object of `resource` (e.g.
/// `deployments.portico.dev`) named `name` in `namespace`; `heartbeat` adds
/// the keepalive a Terminal's page sends, `delete` the deletion when the
/// user may delete it.
pub fn snippets(resource: &str, namespace: &str, name: &str, heartbeat: bool, delete: bool) -> Vec<Snippet> {
    let at = format!("-n {namespace}");
    let mut out = vec![
        Snippet {
            what: "Show it",
            command: format!("kubectl get {resource} {name} {at} -o yaml"),
        },
        Snippet {
            what: "Wait until it is Ready",
            command: format!("kubectl wait --for=condition=Ready {resource}/{name} {at} --timeout=5m"),
        },
        Snippet {
            what: "Its conditions and Events",
            command: format!("kubectl describe {resource} {name} {at}"),
        },
    ];
    if heartbeat {
        out.push(Snippet {
            what: "Keep it alive (what Extend does)",
            command: format!("kubectl annotate {resource} {name} {at} portico.dev/operation=keepalive --overwrite"),
        });
    }
    if delete {
        out.push(Snippet {
            what: "Delete it and what it made",
            command: format!("kubectl delete {resource} {name} {at}"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_yaml_leaves_out_managed_fields_only() {
        let obj = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "managedFields": [{"manager": "portico"}], "labels": {"a": "b"}},
            "data": {"k": "v"}});
        let y = yaml_of(&obj);
        assert!(!y.contains("managedFields") && !y.contains("manager"), "{y}");
        assert!(y.contains("name: x") && y.contains("a: b") && y.contains("k: v"), "{y}");
    }

    #[test]
    fn commands_name_the_object_and_offer_deletion_and_keepalive_only_when_asked() {
        let cmds = snippets("terminals.portico.dev", "team-a", "shell", true, false);
        let lines: Vec<&str> = cmds.iter().map(|s| s.command.as_str()).collect();
        assert_eq!(lines[0], "kubectl get terminals.portico.dev shell -n team-a -o yaml");
        assert!(
            lines.contains(&"kubectl wait --for=condition=Ready terminals.portico.dev/shell -n team-a --timeout=5m")
        );
        assert!(lines.iter().any(|l| l.contains("portico.dev/operation=keepalive")));
        assert!(!lines.iter().any(|l| l.starts_with("kubectl delete")));
        let cmds = snippets("deployments.portico.dev", "team-a", "shop", false, true);
        assert!(!cmds.iter().any(|s| s.command.contains("keepalive")));
        assert_eq!(
            cmds.last().unwrap().command,
            "kubectl delete deployments.portico.dev shop -n team-a"
        );
    }
}
