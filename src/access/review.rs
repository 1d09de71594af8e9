//! Asking a cluster about a creator's access, and the checks a Terminal and
//! a session grant must pass: never more than the creator holds. A
//! namespaced question is answered from the rules the creator holds in that
//! namespace — one SelfSubjectRulesReview made as the creator, shared by
//! every question about that namespace for a few seconds — and, only where
//! the API server marks that list incomplete, by a SubjectAccessReview;
//! cluster-wide questions are SubjectAccessReviews.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::{StreamExt, stream};
use k8s_openapi::api::{
    authorization::v1::{
        NonResourceAttributes, ResourceAttributes, SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
        SubjectAccessReview, SubjectAccessReviewSpec,
    },
    rbac::v1::{ClusterRole, PolicyRule, Role},
};
use kube::{Api, Client, api::PostParams};

use super::{ACCESS_CACHE_TTL, Access, AccessCache, Denial, expand_rules, resource, rules::HeldRules};
use crate::{
    api::{
        common::{BindingKind, RoleKind, RoleRef},
        terminal::Terminal,
    },
    creator::Creator,
};

/// SubjectAccessReviews in flight at once for one check.
const CONCURRENCY: usize = 16;

/// How old a list of held rules may be for a refusal: one made for the
/// Terminals created in the same burst, not one from before a grant.
const FRESH: Duration = Duration::from_secs(1);

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
        Ok(self.lacking(creator, vec![access.clone()]).await?.is_empty())
    }

    /// Of `wanted`, what `creator` may not do. Namespaced questions are
    /// answered from one list of the rules the creator holds in each
    /// namespace; what that list does not cover is a refusal only when a
    /// fresh list does not cover it either and is complete; the rest (and
    /// cluster-wide questions) are asked one SubjectAccessReview each.
    pub async fn lacking(
        &self,
        creator: &Creator,
        wanted: impl IntoIterator<Item = Access>,
    ) -> Result<Vec<Access>, kube::Error> {
        let mut by_namespace: BTreeMap<String, Vec<Access>> = BTreeMap::new();
        let mut ask = vec![];
        for access in wanted {
            match &access {
                Access::Resource { namespace, .. } if !namespace.is_empty() => {
                    by_namespace.entry(namespace.clone()).or_default().push(access)
                }
                _ => ask.push(access),
            }
        }
        let mut lacking = vec![];
        for (namespace, accesses) in by_namespace {
            let mut held = self.held(creator, &namespace, ACCESS_CACHE_TTL).await?;
            let mut uncovered: Vec<Access> = accesses.into_iter().filter(|a| !held.covers(a)).collect();
            if !uncovered.is_empty() {
                // A refusal is never from an old answer: rights granted a
                // moment ago count.
                held = self.held(creator, &namespace, FRESH).await?;
                uncovered.retain(|a| !held.covers(a));
            }
            if held.incomplete {
                ask.extend(uncovered);
            } else {
                lacking.extend(uncovered);
            }
        }
        let answers: Vec<(Access, Result<bool, kube::Error>)> = stream::iter(ask)
            .map(|a| async move {
                let r = self.reviewed(creator, &a).await;
                (a, r)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for (access, answer) in answers {
            if !answer? {
                lacking.push(access);
            }
        }
        Ok(lacking)
    }

    /// One SubjectAccessReview, or a recent allowed answer to the same question.
    async fn reviewed(&self, creator: &Creator, access: &Access) -> Result<bool, kube::Error> {
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

impl Checker<'_> {
    /// The rules `creator` holds in `namespace`, as listed at most `max_age` ago.
    async fn held(&self, creator: &Creator, namespace: &str, max_age: Duration) -> Result<Arc<HeldRules>, kube::Error> {
        let key = AccessCache::user_key(self.cluster, creator, namespace);
        self.cache
            .held
            .get_within(key, max_age, || async {
                rules_review(self.client, creator, namespace).await.map(Arc::new)
            })
            .await
    }

    /// The rules of a role (`None`: it does not exist).
    async fn role_rules(
        &self,
        kind: RoleKind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Vec<PolicyRule>>, kube::Error> {
        let key = format!("{}\u{0}{kind:?}\u{0}{namespace}\u{0}{name}", self.cluster);
        let client = self.client.clone();
        self.cache
            .roles
            .get(key, || async move {
                match kind {
                    RoleKind::Role => Api::<Role>::namespaced(client, namespace)
                        .get_opt(name)
                        .await
                        .map(|r| r.map(|r| r.rules.unwrap_or_default())),
                    RoleKind::ClusterRole => Api::<ClusterRole>::all(client)
                        .get_opt(name)
                        .await
                        .map(|r| r.map(|r| r.rules.unwrap_or_default())),
                }
            })
            .await
    }
}

/// One SelfSubjectRulesReview made as `creator` (by impersonation, with the
/// operator's connection): every rule they hold in `namespace`.
pub async fn rules_review(client: &Client, creator: &Creator, namespace: &str) -> Result<HeldRules, kube::Error> {
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some(namespace.to_string()),
        },
        ..Default::default()
    };
    let body = serde_json::to_vec(&review).map_err(kube::Error::SerdeError)?;
    let mut req = http::Request::post("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews")
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("Impersonate-User", &creator.user);
    for group in &creator.groups {
        req = req.header("Impersonate-Group", group);
    }
    let req = req.body(body).map_err(kube::Error::HttpError)?;
    let answer: SelfSubjectRulesReview = client.request(req).await?;
    Ok(answer.status.map(HeldRules::from).unwrap_or(HeldRules {
        incomplete: true,
        ..Default::default()
    }))
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
pub async fn require(c: &Checker<'_>, creator: &Creator, access: Access, why: &str) -> Result<(), Denial> {
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
    role: &RoleRef,
    binding_kind: BindingKind,
    target_namespace: &str,
) -> Result<(), Denial> {
    let cluster = c.cluster;
    let (bind_ns, place) = match binding_kind {
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
    let rules = c
        .role_rules(role.kind, target_namespace, &role.name)
        .await
        .map_err(|e| api_error(&what, e))?
        .ok_or_else(|| Denial::invalid(format!("{kind} {} does not exist {place}", role.name)))?;
    let wanted = expand_rules(&rules, bind_ns);
    let held = wanted.len();
    let lacking = c.lacking(creator, wanted).await.map_err(|e| api_error(&what, e))?;
    let mut missing: Vec<String> = lacking.iter().map(Access::to_string).collect();
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
        held,
        examples.join(", ")
    )))
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
            require(c, creator, resource("", "create", "", "namespaces", ""), why)
                .await
                .map_err(|d| d.on("spec.target.temporaryNamespace"))?;
            t.to_string()
        }
        (None, None) => return Err(Denial::invalid_field("spec.target", "names no namespace")),
    };
    for (i, binding) in target.role_bindings.iter().enumerate() {
        check_role_grant(c, creator, &binding.role_ref, binding.binding_kind, &ns)
            .await
            .map_err(|d| d.on(format!("spec.target.roleBindings[{i}]")))?;
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
        require(c, creator, resource(&ns, "get", "", "namespaces", &ns), &why)
            .await
            .map_err(|d| d.on("spec.target.namespace"))?;
    }
    Ok(())
}
