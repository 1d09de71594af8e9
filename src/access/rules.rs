//! What a user holds in one namespace, as the API server lists it
//! (a SelfSubjectRulesReview made as the user), and whether that covers an
//! access question (pure). The matching is RBAC's own: a verb, group and
//! resource match when listed or `*`; `*/subresource` matches that
//! subresource of every resource (`resource/*` is no wildcard); a rule with
//! resource names covers only those names; a non-resource URL matches
//! exactly or by a trailing `*`.

use k8s_openapi::api::authorization::v1::{NonResourceRule, ResourceRule, SubjectRulesReviewStatus};

use super::Access;

/// The rules a user holds in one namespace (those of its RoleBindings and
/// of every ClusterRoleBinding).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeldRules {
    /// Resource rules.
    pub resource: Vec<ResourceRule>,
    /// Non-resource rules.
    pub non_resource: Vec<NonResourceRule>,
    /// The API server could not list everything (an authorizer that cannot
    /// enumerate, or a binding to a missing role): what is not covered must
    /// be asked one question at a time.
    pub incomplete: bool,
}

impl From<SubjectRulesReviewStatus> for HeldRules {
    fn from(s: SubjectRulesReviewStatus) -> Self {
        HeldRules {
            resource: s.resource_rules,
            non_resource: s.non_resource_rules,
            incomplete: s.incomplete || s.evaluation_error.is_some_and(|e| !e.is_empty()),
        }
    }
}

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v == value)
}

/// RBAC's own resource match: `*`, the resource (with `/subresource` when
/// one is asked), or `*/subresource`. (`pods/*` is no wildcard to RBAC: it
/// matches only a subresource literally named `*`.)
fn resource_matches(rule: &[String], resource: &str, subresource: &str) -> bool {
    rule.iter().any(|r| {
        if r == "*" {
            return true;
        }
        match r.split_once('/') {
            None => subresource.is_empty() && r == resource,
            Some((res, sub)) => !subresource.is_empty() && sub == subresource && (res == resource || res == "*"),
        }
    })
}

fn url_matches(rule: &[String], path: &str) -> bool {
    rule.iter()
        .any(|u| u == "*" || u == path || u.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix)))
}

impl HeldRules {
    /// Whether these rules allow `access` (in the namespace they were listed for).
    pub fn covers(&self, access: &Access) -> bool {
        match access {
            Access::Resource {
                verb,
                group,
                resource,
                subresource,
                name,
                ..
            } => self.resource.iter().any(|r| {
                has(&r.verbs, verb)
                    && has(r.api_groups.as_deref().unwrap_or_default(), group)
                    && resource_matches(r.resources.as_deref().unwrap_or_default(), resource, subresource)
                    && match r.resource_names.as_deref() {
                        None | Some([]) => true,
                        Some(names) => !name.is_empty() && names.iter().any(|n| n == name),
                    }
            }),
            Access::NonResource { path, verb } => self
                .non_resource
                .iter()
                .any(|r| has(&r.verbs, verb) && url_matches(r.non_resource_urls.as_deref().unwrap_or_default(), path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::resource;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str], names: &[&str]) -> ResourceRule {
        ResourceRule {
            api_groups: Some(v(groups)),
            resources: Some(v(resources)),
            verbs: v(verbs),
            resource_names: (!names.is_empty()).then(|| v(names)),
        }
    }

    fn held(rules: Vec<ResourceRule>) -> HeldRules {
        HeldRules {
            resource: rules,
            ..Default::default()
        }
    }

    #[test]
    fn verbs_groups_and_resources_match_by_name_or_star() {
        let h = held(vec![
            rule(&["", "apps"], &["pods", "deployments"], &["get", "list"], &[]),
            rule(&["batch"], &["*"], &["*"], &[]),
        ]);
        assert!(h.covers(&resource("a", "get", "", "pods", "")));
        assert!(h.covers(&resource("a", "list", "apps", "deployments", "x")));
        assert!(h.covers(&resource("a", "delete", "batch", "cronjobs", "")));
        assert!(!h.covers(&resource("a", "delete", "", "pods", "")), "verb not held");
        assert!(
            h.covers(&resource("a", "get", "apps", "pods", "")),
            "a rule covers each group with each resource"
        );
        assert!(
            !h.covers(&resource("a", "get", "apps", "cronjobs", "")),
            "group and resource from different rules"
        );
        assert!(!h.covers(&resource("a", "get", "", "secrets", "")));
    }

    #[test]
    fn subresources_match_as_rbac_matches_them() {
        let h = held(vec![
            rule(&[""], &["pods", "pods/log"], &["get"], &[]),
            rule(&[""], &["*/status"], &["get"], &[]),
            rule(&["apps"], &["deployments/*"], &["update"], &[]),
            rule(&[""], &["*/*"], &["patch"], &[]),
        ]);
        assert!(h.covers(&resource("a", "get", "", "pods/log", "")));
        assert!(
            !h.covers(&resource("a", "get", "", "pods/exec", "")),
            "pods does not cover pods/exec"
        );
        assert!(h.covers(&resource("a", "get", "", "services/status", "")));
        assert!(
            !h.covers(&resource("a", "update", "apps", "deployments/scale", "")),
            "deployments/* is no wildcard to RBAC"
        );
        assert!(h.covers(&resource("a", "update", "apps", "deployments/*", "")));
        assert!(!h.covers(&resource("a", "update", "apps", "deployments", "")));
        assert!(
            !h.covers(&resource("a", "patch", "", "pods/status", "")),
            "*/* matches only a subresource named *"
        );
    }

    #[test]
    fn a_rule_with_names_covers_only_those_names() {
        let h = held(vec![rule(&[""], &["configmaps"], &["get"], &["a"])]);
        assert!(h.covers(&resource("n", "get", "", "configmaps", "a")));
        assert!(!h.covers(&resource("n", "get", "", "configmaps", "b")));
        assert!(
            !h.covers(&resource("n", "get", "", "configmaps", "")),
            "any name needs a rule without names"
        );
    }

    #[test]
    fn urls_match_exactly_or_by_a_trailing_star() {
        let h = HeldRules {
            non_resource: vec![NonResourceRule {
                non_resource_urls: Some(v(&["/healthz", "/metrics/*"])),
                verbs: v(&["get"]),
            }],
            ..Default::default()
        };
        let url = |path: &str, verb: &str| Access::NonResource {
            path: path.into(),
            verb: verb.into(),
        };
        assert!(h.covers(&url("/healthz", "get")));
        assert!(h.covers(&url("/metrics/cadvisor", "get")));
        assert!(!h.covers(&url("/healthz/etcd", "get")));
        assert!(!h.covers(&url("/healthz", "post")));
    }

    #[test]
    fn an_evaluation_error_makes_the_answer_incomplete() {
        let s = SubjectRulesReviewStatus {
            evaluation_error: Some("role \"gone\" not found".into()),
            incomplete: false,
            ..Default::default()
        };
        assert!(HeldRules::from(s).incomplete);
        assert!(!HeldRules::from(SubjectRulesReviewStatus::default()).incomplete);
    }
}
