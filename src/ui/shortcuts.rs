//! Terminal shortcuts: a title, an image and command, and the roles the
//! terminal gets in a namespace. Verified shortcuts come from the dashboard
//! configuration; ConfigMaps labelled `portico.dev/terminal-shortcuts` (read as
//! the user) add unverified ones. Pure: parsing, checks and building the
//! Terminal a shortcut stands for.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use crate::api::{Terminal, common::RoleKind, terminal::TerminalSpec};

/// The label that marks a ConfigMap holding shortcuts.
pub use crate::api::keys::SHORTCUTS_LABEL as LABEL;
/// The ConfigMap key holding the YAML list of shortcuts.
pub const KEY: &str = "shortcuts.yaml";

/// One shortcut.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Shortcut {
    /// Identifier, a DNS label; also the start of the Terminal's name.
    pub name: String,
    /// Shown on the card.
    pub title: String,
    /// Shown under the title.
    #[serde(default)]
    pub description: String,
    /// Container image with a shell.
    pub image: String,
    /// Entrypoint; the image's when absent.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Arguments.
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// The namespace the terminal runs in and works on; when absent the user picks one.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Roles bound to the terminal in that namespace (the user must hold what they grant).
    pub roles: Vec<ShortcutRole>,
}

/// A role a shortcut's terminal gets in its namespace.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShortcutRole {
    /// `Role` or `ClusterRole`.
    pub kind: RoleKind,
    /// The role's name.
    pub name: String,
}

/// Where a shortcut comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Origin {
    /// The dashboard configuration: verified by whoever installed Portico.
    Config,
    /// A labelled ConfigMap: anyone who may write ConfigMaps there wrote it.
    ConfigMap {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

/// A shortcut with its origin, as the pages list it.
#[derive(Debug, Clone, Serialize)]
pub struct Offered {
    /// The shortcut.
    #[serde(flatten)]
    pub shortcut: Shortcut,
    /// Where it comes from.
    pub origin: Origin,
    /// The id the create form posts: `config/NAME` or `NAMESPACE/CONFIGMAP/NAME`.
    pub id: String,
    /// Not from the configuration: shown with a warning.
    pub unverified: bool,
}

/// Whether `s` is a DNS label of at most `max` characters (pure).
pub fn dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl Shortcut {
    /// What is wrong with it, in words naming the field.
    pub fn check(&self) -> Result<(), String> {
        if !dns_label(&self.name, 40) {
            return Err(format!(
                "name {:?} must be a DNS label of at most 40 characters (a-z, 0-9, -)",
                self.name
            ));
        }
        if self.title.trim().is_empty() {
            return Err("title must not be empty".into());
        }
        if self.image.trim().is_empty() {
            return Err("image must name a container image with a shell".into());
        }
        if let Some(ns) = &self.namespace
            && !dns_label(ns, 40)
        {
            return Err(format!("namespace {ns:?} is not a namespace name"));
        }
        if self.roles.is_empty() {
            return Err("roles must name at least one Role or ClusterRole for the terminal".into());
        }
        if let Some(r) = self.roles.iter().find(|r| r.name.trim().is_empty()) {
            return Err(format!("roles: a {:?} has no name", r.kind));
        }
        Ok(())
    }

    /// The Terminal this shortcut stands for, in `namespace`, named `name`.
    pub fn terminal(&self, name: &str, namespace: &str) -> Terminal {
        let bindings: Vec<serde_json::Value> = self
            .roles
            .iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::json!({
                    "roleRef": {"kind": r.kind, "name": r.name},
                    "bindingKind": "RoleBinding",
                    "nameSuffix": format!("r{i}"),
                })
            })
            .collect();
        let spec: TerminalSpec = serde_json::from_value(serde_json::json!({
            "host": {"namespace": namespace, "pod": {"image": self.image, "command": self.command, "args": self.args}},
            "target": {"namespace": namespace, "roleBindings": bindings},
        }))
        .expect("a shortcut builds a Terminal spec");
        let mut t = Terminal::new(name, spec);
        t.metadata.namespace = Some(namespace.to_string());
        t.metadata.annotations = Some([(crate::api::keys::SHORTCUT.to_string(), self.title.clone())].into());
        t
    }
}

/// The configured shortcuts, offered as verified.
pub fn from_config(shortcuts: &[Shortcut]) -> Vec<Offered> {
    shortcuts
        .iter()
        .map(|s| Offered {
            id: format!("config/{}", s.name),
            shortcut: s.clone(),
            origin: Origin::Config,
            unverified: false,
        })
        .collect()
}

/// The shortcuts of a labelled ConfigMap, offered as unverified; the error
/// says what is wrong with the ConfigMap and names it.
pub fn from_config_map(cm: &ConfigMap) -> Result<Vec<Offered>, String> {
    let (ns, name) = (cm.namespace().unwrap_or_default(), cm.name_any());
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(KEY))
        .ok_or_else(|| format!("ConfigMap {ns}/{name} has no key {KEY}"))?;
    let list: Vec<Shortcut> =
        serde_yaml_ng::from_str(text).map_err(|e| format!("ConfigMap {ns}/{name}, {KEY}: {e}"))?;
    list.into_iter()
        .map(|s| {
            s.check()
                .map_err(|e| format!("ConfigMap {ns}/{name}, shortcut {}: {e}", s.name))?;
            Ok(Offered {
                id: format!("{ns}/{name}/{}", s.name),
                origin: Origin::ConfigMap {
                    namespace: ns.clone(),
                    name: name.clone(),
                },
                shortcut: s,
                unverified: true,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shortcut() -> Shortcut {
        serde_yaml_ng::from_str(
            "name: view\ntitle: Look around\nimage: docker.io/library/alpine:3.20\ncommand: [/bin/sh]\nroles: [{kind: ClusterRole, name: view}]\n",
        )
        .unwrap()
    }

    #[test]
    fn a_shortcut_builds_the_terminal_it_stands_for() {
        let t = shortcut().terminal("view-1a2b3", "team-a");
        assert_eq!(t.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(t.spec.host.namespace.as_deref(), Some("team-a"));
        assert_eq!(t.spec.target.namespace.as_deref(), Some("team-a"));
        assert_eq!(t.spec.host.pod.command, Some(vec!["/bin/sh".to_string()]));
        let rb = &t.spec.target.role_bindings[0];
        assert_eq!(
            (rb.role_ref.kind, rb.role_ref.name.as_str()),
            (RoleKind::ClusterRole, "view")
        );
    }

    #[test]
    fn checks_name_the_field() {
        let mut s = shortcut();
        s.name = "Bad_Name".into();
        assert!(s.check().unwrap_err().contains("name"));
        let mut s = shortcut();
        s.roles.clear();
        assert!(s.check().unwrap_err().contains("roles"));
        let mut s = shortcut();
        s.namespace = Some("Team A".into());
        assert!(s.check().unwrap_err().contains("namespace"));
        assert!(shortcut().check().is_ok());
    }

    #[test]
    fn config_maps_give_unverified_shortcuts_or_say_what_is_wrong() {
        let cm = |text: &str| -> ConfigMap {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "tools", "namespace": "team-a", "labels": {LABEL: "true"}},
                "data": {KEY: text},
            }))
            .unwrap()
        };
        let ok = from_config_map(&cm(
            "- {name: dbg, title: Debug, image: busybox, roles: [{kind: Role, name: debugger}]}",
        ))
        .unwrap();
        assert!(ok[0].unverified);
        assert_eq!(ok[0].id, "team-a/tools/dbg");
        let e = from_config_map(&cm("- {name: dbg, title: Debug, roles: []}")).unwrap_err();
        assert!(e.contains("team-a/tools") && e.contains("image"), "{e}");
        let e = from_config_map(&cm(
            "- {name: dbg, title: Debug, image: x, roles: [{kind: Role, name: r}]}",
        ))
        .map(|_| ())
        .and_then(|_| from_config_map(&cm("not: [a list")).map(|_| ()))
        .unwrap_err();
        assert!(e.contains(KEY), "{e}");
        assert!(from_config(&[shortcut()])[0].id == "config/view" && !from_config(&[shortcut()])[0].unverified);
    }
}
