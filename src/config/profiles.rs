//! Session profiles: the admin-curated kinds of session a user may claim.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};
use serde::Deserialize;

use super::{Bounds, ConfigError, check_bounds, d, invalid};
use crate::api::common::RoleKind;

/// One session profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionProfile {
    /// Name users put in `spec.profile` (a DNS label).
    pub name: String,
    /// What the profile is for, shown to users.
    #[serde(default)]
    pub description: String,
    /// Groups whose members may claim it; `*` for everyone.
    pub allowed_groups: Vec<String>,
    /// What a session of this profile may do.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Idle timeout: default and maximum.
    #[serde(default = "default_idle")]
    pub idle_timeout: Bounds,
    /// Maximum lifetime: default and maximum.
    #[serde(default = "default_max")]
    pub max_lifetime: Bounds,
    /// Active sessions one user may hold under this profile at once.
    #[serde(default = "default_max_active")]
    pub max_active_per_user: u32,
}

fn default_idle() -> Bounds {
    Bounds {
        default: d(30 * 60),
        max: d(8 * 3600),
    }
}
fn default_max() -> Bounds {
    Bounds {
        default: d(8 * 3600),
        max: d(24 * 3600),
    }
}
fn default_max_active() -> u32 {
    3
}

/// A role bound in a set of namespaces.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Grant {
    /// Where the role is bound.
    pub namespaces: NamespaceSelector,
    /// The role to bind (a Role must exist in each namespace).
    pub role: GrantRole,
}

/// Namespaces by name or by label selector (exactly one).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceSelector {
    /// These namespaces.
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// Every namespace whose labels match, now or later.
    #[serde(default)]
    pub selector: Option<LabelSelector>,
}

/// A Role or ClusterRole by name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRole {
    /// `Role` or `ClusterRole`.
    pub kind: RoleKind,
    /// Its name.
    pub name: String,
}

impl SessionProfile {
    /// Whether a member of `groups` may claim this profile.
    pub fn allows(&self, groups: &[String]) -> bool {
        self.allowed_groups.iter().any(|g| g == "*" || groups.contains(g))
    }

    fn check(&self, key: &str) -> Result<(), ConfigError> {
        if !is_dns_label(&self.name) {
            return Err(invalid(
                format!("{key}.name"),
                format!("{:?} must be a DNS label", self.name),
            ));
        }
        if self.allowed_groups.is_empty() {
            return Err(invalid(
                format!("{key}.allowedGroups"),
                "list at least one group, or \"*\" for everyone",
            ));
        }
        check_bounds(&format!("{key}.idleTimeout"), &self.idle_timeout)?;
        check_bounds(&format!("{key}.maxLifetime"), &self.max_lifetime)?;
        if self.max_active_per_user == 0 {
            return Err(invalid(format!("{key}.maxActivePerUser"), "must be at least 1"));
        }
        for (i, g) in self.grants.iter().enumerate() {
            let gk = format!("{key}.grants[{i}]");
            match (&g.namespaces.names, &g.namespaces.selector) {
                (Some(n), None) if !n.is_empty() => {
                    if let Some(bad) = n.iter().find(|n| !is_dns_label(n)) {
                        return Err(invalid(
                            format!("{gk}.namespaces.names"),
                            format!("{bad:?} is not a namespace name"),
                        ));
                    }
                }
                (None, Some(sel)) => {
                    Selector::try_from(sel.clone())
                        .map_err(|e| invalid(format!("{gk}.namespaces.selector"), e.to_string()))?;
                }
                _ => {
                    return Err(invalid(
                        format!("{gk}.namespaces"),
                        "set exactly one of names (a non-empty list) or selector",
                    ));
                }
            }
            if g.role.name.is_empty() {
                return Err(invalid(
                    format!("{gk}.role.name"),
                    "name the Role or ClusterRole to bind",
                ));
            }
        }
        Ok(())
    }
}

impl Grant {
    /// Whether namespace `name` with `labels` is one this grant covers.
    pub fn covers(&self, name: &str, labels: &std::collections::BTreeMap<String, String>) -> bool {
        if let Some(names) = &self.namespaces.names {
            return names.iter().any(|n| n == name);
        }
        match &self.namespaces.selector {
            Some(sel) => Selector::try_from(sel.clone()).is_ok_and(|s| s.matches(labels)),
            None => false,
        }
    }
}

/// Whether `s` is a DNS label (a namespace or profile name).
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Checks every profile and that names are unique.
pub fn check_all(profiles: &[SessionProfile]) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for p in profiles {
        let key = format!("sessionProfiles[{}]", p.name);
        p.check(&key)?;
        if !seen.insert(p.name.clone()) {
            return Err(invalid(
                format!("{key}.name"),
                "two profiles have this name; names must be unique",
            ));
        }
    }
    Ok(())
}

/// A profile's index in the raw YAML, as a name for error messages: turns
/// `sessionProfiles[1].grants[0]` into `sessionProfiles[developer].grants[0]`.
pub fn name_profile_in_path(path: &str, yaml: &str) -> String {
    let Some(rest) = path.strip_prefix("sessionProfiles[") else {
        return path.to_string();
    };
    let Some((idx, tail)) = rest.split_once(']') else {
        return path.to_string();
    };
    let Ok(i) = idx.parse::<usize>() else {
        return path.to_string();
    };
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap_or_default();
    match doc
        .get("sessionProfiles")
        .and_then(|p| p.get(i))
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
    {
        Some(name) => format!("sessionProfiles[{name}]{tail}"),
        None => path.to_string(),
    }
}
