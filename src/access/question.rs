//! Access questions (pure): one verb on a resource or URL, and every
//! question a set of RBAC rules answers "yes" to where it is bound.

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::PolicyRule;

/// One access question.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// A verb on a resource (in a namespace, or cluster-wide when empty).
    Resource {
        /// Namespace, empty for cluster-wide.
        namespace: String,
        /// Verb.
        verb: String,
        /// API group.
        group: String,
        /// Resource.
        resource: String,
        /// Subresource.
        subresource: String,
        /// Object name, empty for any.
        name: String,
    },
    /// A verb on a non-resource URL.
    NonResource {
        /// URL path.
        path: String,
        /// Verb.
        verb: String,
    },
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Resource {
                verb,
                group,
                resource,
                subresource,
                name,
                ..
            } => {
                write!(f, "{verb} {resource}")?;
                if !subresource.is_empty() {
                    write!(f, "/{subresource}")?;
                }
                if !group.is_empty() {
                    write!(f, ".{group}")?;
                }
                if !name.is_empty() {
                    write!(f, " named {name}")?;
                }
                Ok(())
            }
            Access::NonResource { path, verb } => write!(f, "{verb} {path}"),
        }
    }
}

/// A resource access question.
pub fn resource(namespace: &str, verb: &str, group: &str, resource: &str, name: &str) -> Access {
    let (res, sub) = resource.split_once('/').unwrap_or((resource, ""));
    Access::Resource {
        namespace: namespace.into(),
        verb: verb.into(),
        group: group.into(),
        resource: res.into(),
        subresource: sub.into(),
        name: name.into(),
    }
}

/// Every access a set of rules grants when bound in `namespace` (empty:
/// cluster-wide). Non-resource rules count only cluster-wide, as in RBAC.
pub fn expand_rules(rules: &[PolicyRule], namespace: &str) -> BTreeSet<Access> {
    let mut out = BTreeSet::new();
    for rule in rules {
        if let Some(urls) = &rule.non_resource_urls {
            if namespace.is_empty() {
                for path in urls {
                    for verb in &rule.verbs {
                        out.insert(Access::NonResource {
                            path: path.clone(),
                            verb: verb.clone(),
                        });
                    }
                }
            }
            continue;
        }
        let names = rule
            .resource_names
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| vec![String::new()]);
        for group in rule.api_groups.iter().flatten() {
            for res in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    for name in &names {
                        out.insert(resource(namespace, verb, group, res, name));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str], names: Option<&[&str]>) -> PolicyRule {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        PolicyRule {
            api_groups: Some(v(groups)),
            resources: Some(v(resources)),
            verbs: v(verbs),
            resource_names: names.map(v),
            non_resource_urls: None,
        }
    }

    #[test]
    fn rules_expand_to_one_question_per_verb_resource_and_name() {
        let rules = vec![
            rule(&["", "apps"], &["pods", "deployments/scale"], &["get", "list"], None),
            rule(&[""], &["configmaps"], &["get"], Some(&["a", "b"])),
        ];
        let all = expand_rules(&rules, "team-a");
        assert_eq!(all.len(), 2 * 2 * 2 + 2);
        let texts: Vec<String> = all.iter().map(|a| a.to_string()).collect();
        assert!(texts.contains(&"get deployments/scale.apps".to_string()), "{texts:?}");
        assert!(texts.contains(&"get configmaps named b".to_string()), "{texts:?}");
    }

    #[test]
    fn non_resource_rules_count_only_cluster_wide() {
        let rules = vec![PolicyRule {
            non_resource_urls: Some(vec!["/healthz".into()]),
            verbs: vec!["get".into()],
            ..Default::default()
        }];
        assert!(expand_rules(&rules, "team-a").is_empty());
        assert_eq!(
            expand_rules(&rules, "").iter().next().unwrap().to_string(),
            "get /healthz"
        );
    }
}
