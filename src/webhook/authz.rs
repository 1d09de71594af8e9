//! Authorization of a Terminal against its creator's own RBAC, with
//! SubjectAccessReviews in the cluster concerned: a Terminal never grants
//! more than its creator already holds. For each role it binds, the creator
//! must hold every permission in it where it would be bound (rule by rule,
//! as RBAC's own escalation check does) or be allowed to `bind` it.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Mutex,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use k8s_openapi::api::{
    authorization::v1::{NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
    rbac::v1::{ClusterRole, PolicyRule, Role},
};
use kube::{Api, Client, api::PostParams};

use super::Denial;
use crate::{
    api::terminal::{BindingKind, RoleKind, Terminal, TerminalRoleBinding},
    clusters::Clusters,
    creator::Creator,
};

/// SubjectAccessReviews in flight at once for one check.
const CONCURRENCY: usize = 16;

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

/// Positive SubjectAccessReview answers are reused for this long: one user
/// creating many Terminals does not repeat hundreds of identical reviews.
/// A permission revoked within this window may still be honoured once.
pub const ACCESS_CACHE_TTL: Duration = Duration::from_secs(10);
const ACCESS_CACHE_MAX: usize = 100_000;

/// Recently allowed access questions, per cluster and user.
#[derive(Default)]
pub struct AccessCache {
    allowed: Mutex<HashMap<String, Instant>>,
}

impl AccessCache {
    fn key(cluster: &str, creator: &Creator, access: &Access) -> String {
        format!(
            "{cluster}\u{0}{}\u{0}{}\u{0}{access:?}",
            creator.user,
            creator.groups.join(",")
        )
    }

    fn get(&self, key: &str) -> bool {
        self.allowed
            .lock()
            .unwrap()
            .get(key)
            .is_some_and(|t| t.elapsed() < ACCESS_CACHE_TTL)
    }

    fn put(&self, key: String) {
        let mut m = self.allowed.lock().unwrap();
        if m.len() >= ACCESS_CACHE_MAX {
            m.retain(|_, t| t.elapsed() < ACCESS_CACHE_TTL);
            if m.len() >= ACCESS_CACHE_MAX {
                m.clear();
            }
        }
        m.insert(key, Instant::now());
    }
}

/// Asks one cluster about a creator's access.
pub struct Checker<'a> {
    /// The cluster, as the operator (which may create SubjectAccessReviews).
    pub client: &'a Client,
    /// How messages name the cluster ("this cluster", or the kubeconfig Secret).
    pub cluster: &'a str,
    /// Recently allowed answers.
    pub cache: &'a AccessCache,
}

impl Checker<'_> {
    /// Whether `creator` may do `access`.
    pub async fn allowed(&self, creator: &Creator, access: &Access) -> Result<bool, kube::Error> {
        let key = AccessCache::key(self.cluster, creator, access);
        if self.cache.get(&key) {
            return Ok(true);
        }
        let ok = review(self.client, creator, access).await?;
        if ok {
            self.cache.put(key);
        }
        Ok(ok)
    }
}

/// One SubjectAccessReview: whether `creator` may do `access` in the cluster behind `client`.
pub async fn review(client: &Client, creator: &Creator, access: &Access) -> Result<bool, kube::Error> {
    let mut spec = SubjectAccessReviewSpec {
        user: Some(creator.user.clone()),
        groups: Some(creator.groups.clone()),
        ..Default::default()
    };
    match access {
        Access::Resource {
            namespace,
            verb,
            group,
            resource,
            subresource,
            name,
        } => {
            let opt = |s: &String| (!s.is_empty()).then(|| s.clone());
            spec.resource_attributes = Some(ResourceAttributes {
                namespace: opt(namespace),
                verb: Some(verb.clone()),
                group: Some(group.clone()),
                resource: Some(resource.clone()),
                subresource: opt(subresource),
                name: opt(name),
                ..Default::default()
            });
        }
        Access::NonResource { path, verb } => {
            spec.non_resource_attributes = Some(NonResourceAttributes {
                path: Some(path.clone()),
                verb: Some(verb.clone()),
            });
        }
    }
    let review = SubjectAccessReview {
        spec,
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.map(|s| s.allowed).unwrap_or(false))
}

fn api_error(what: &str, e: kube::Error) -> Denial {
    Denial::unavailable(format!("cannot check {what}: {e}"))
}

/// Requires `access` for `creator`, or denies with `why`.
async fn require(c: &Checker<'_>, creator: &Creator, access: Access, why: &str) -> Result<(), Denial> {
    if c.allowed(creator, &access).await.map_err(|e| api_error(why, e))? {
        Ok(())
    } else {
        Err(Denial::forbidden(format!("{} may not {access}{why}", creator.user)))
    }
}

/// Checks one role binding a Terminal asks for.
pub async fn check_role_grant(
    c: &Checker<'_>,
    creator: &Creator,
    binding: &TerminalRoleBinding,
    target_namespace: &str,
) -> Result<(), Denial> {
    let (client, cluster) = (c.client, c.cluster);
    let role = &binding.role_ref;
    let (bind_ns, place) = match binding.binding_kind {
        BindingKind::RoleBinding => (
            target_namespace,
            format!("in namespace {target_namespace} of {cluster}"),
        ),
        BindingKind::ClusterRoleBinding => ("", format!("cluster-wide in {cluster}")),
    };
    let (kind, plural) = match role.kind {
        RoleKind::Role => ("Role", "roles"),
        RoleKind::ClusterRole => ("ClusterRole", "clusterroles"),
    };
    let bind = resource(bind_ns, "bind", "rbac.authorization.k8s.io", plural, &role.name);
    let what = format!("whether {} may grant {kind} {}", creator.user, role.name);
    if c.allowed(creator, &bind).await.map_err(|e| api_error(&what, e))? {
        return Ok(());
    }
    let rules = match role.kind {
        RoleKind::Role => Api::<Role>::namespaced(client.clone(), target_namespace)
            .get_opt(&role.name)
            .await
            .map(|r| r.map(|r| r.rules.unwrap_or_default())),
        RoleKind::ClusterRole => Api::<ClusterRole>::all(client.clone())
            .get_opt(&role.name)
            .await
            .map(|r| r.map(|r| r.rules.unwrap_or_default())),
    }
    .map_err(|e| api_error(&what, e))?
    .ok_or_else(|| Denial::invalid(format!("{kind} {} does not exist {place}", role.name)))?;
    let wanted = expand_rules(&rules, bind_ns);
    let answers: Vec<(Access, Result<bool, kube::Error>)> = stream::iter(wanted)
        .map(|a| async move {
            let r = c.allowed(creator, &a).await;
            (a, r)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut missing = vec![];
    for (access, answer) in answers {
        if !answer.map_err(|e| api_error(&what, e))? {
            missing.push(access.to_string());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort();
    let examples: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
    Err(Denial::forbidden(format!(
        "{} may not grant {kind} {} {place}: they lack {} of the {} permissions it holds (for example: {}) \
         and may not bind it; ask for a role within your own permissions",
        creator.user,
        role.name,
        missing.len(),
        rules_len(&rules, bind_ns),
        examples.join(", ")
    )))
}

fn rules_len(rules: &[PolicyRule], ns: &str) -> usize {
    expand_rules(rules, ns).len()
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
            require(&local, creator, resource(namespace, "get", "", "secrets", name), &why).await?;
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
            let (access, why) = match &spec.host.namespace {
                Some(ns) => (
                    resource(ns, "create", "", "pods", ""),
                    format!(" in namespace {ns}, where the terminal pod would run"),
                ),
                None => (
                    resource("", "create", "", "namespaces", ""),
                    " (spec.host.temporaryNamespace creates one)".to_string(),
                ),
            };
            require(&c, creator, access, &why).await?;
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

/// How messages name a cluster.
pub fn cluster_name(remote: &Option<String>) -> String {
    match remote {
        None => "this cluster".to_string(),
        Some(secret) => format!("the cluster of kubeconfig Secret {secret}"),
    }
}

/// The target-side checks (also run by the controller for clusters admission could not reach).
pub async fn authorize_target(
    c: &Checker<'_>,
    creator: &Creator,
    terminal: &Terminal,
    temporary: Option<&str>,
) -> Result<(), Denial> {
    let target = &terminal.spec.target;
    let ns = match (&target.namespace, temporary) {
        (Some(ns), _) => ns.clone(),
        (None, Some(t)) => {
            let why = " (spec.target.temporaryNamespace creates one)";
            require(c, creator, resource("", "create", "", "namespaces", ""), why).await?;
            t.to_string()
        }
        (None, None) => return Err(Denial::invalid("spec.target names no namespace".to_string())),
    };
    for binding in &target.role_bindings {
        check_role_grant(c, creator, binding, &ns).await?;
    }
    // A Terminal reaches only namespaces its creator has some role in: one
    // with no RoleBinding there must at least be able to read the namespace
    // itself (every role bound in a namespace, `view` upwards, allows that).
    let binds_there = target
        .role_bindings
        .iter()
        .any(|b| b.binding_kind == BindingKind::RoleBinding);
    if target.namespace.is_some() && !binds_there {
        let why = format!(
            " (spec.target.namespace): a Terminal reaches only namespaces its creator holds a role in; \
             ask for access to {ns} first"
        );
        require(c, creator, resource(&ns, "get", "", "namespaces", &ns), &why).await?;
    }
    Ok(())
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

#[cfg(test)]
mod cache_tests {
    use super::*;

    #[test]
    fn allowed_answers_are_remembered_per_cluster_user_and_question() {
        let cache = AccessCache::default();
        let alice = Creator {
            user: "alice".into(),
            groups: vec!["dev".into()],
        };
        let bob = Creator {
            user: "bob".into(),
            groups: vec!["dev".into()],
        };
        let get_pods = resource("a", "get", "", "pods", "");
        let key = AccessCache::key("this cluster", &alice, &get_pods);
        assert!(!cache.get(&key));
        cache.put(key.clone());
        assert!(cache.get(&key));
        assert!(!cache.get(&AccessCache::key("this cluster", &bob, &get_pods)));
        assert!(!cache.get(&AccessCache::key("other", &alice, &get_pods)));
        assert!(!cache.get(&AccessCache::key(
            "this cluster",
            &alice,
            &resource("b", "get", "", "pods", "")
        )));
    }
}
