//! Who has access to a namespace, and how: every RoleBinding there and
//! every ClusterRoleBinding (which reaches every namespace), each subject
//! with its role in plain words, and the bindings Portico made for a
//! Terminal or a session, linked to it with its creator and end. Everything
//! is read as the viewer, so a namespace's admins see their namespace and
//! nobody sees more than RBAC lets them list; also as CSV and JSON.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, http::StatusCode, web};
use futures::{StreamExt, stream};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::{Api, Client, ResourceExt};
use minijinja::{context, value::Serde};
use serde::Serialize;

use super::{
    logged_in::LoggedIn,
    page::Page,
    readable,
    state::{State, why},
};
use crate::api::{SessionClaim, Terminal, keys};

/// The access routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/access", web::get().to(index))
        .route("/access/{ns}", web::get().to(namespace));
}

/// Who a binding names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessRow {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: String,
    /// The subject (`namespace/name` for a service account).
    pub subject: String,
    /// `Role/x` or `ClusterRole/x`.
    pub role: String,
    /// What the role allows, in words.
    pub allows: String,
    /// The binding.
    pub binding: String,
    /// Whether the binding is a ClusterRoleBinding (every namespace).
    pub cluster_wide: bool,
    /// The Portico object the binding was made for, if any.
    pub granted_by: Option<Grant>,
}

/// A Terminal or SessionClaim a binding was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// `Terminal` or `SessionClaim`.
    pub kind: &'static str,
    /// `namespace/name`.
    pub object: String,
    /// Its creator, if the viewer may read it.
    pub creator: Option<String>,
    /// When it ends (RFC 3339), if known.
    pub ends: Option<String>,
    /// Where its page is, if the dashboard has one.
    pub link: Option<String>,
    /// Why it is not shown in full.
    pub note: Option<String>,
}

/// A ClusterRole the API server ships, in words.
fn built_in(name: &str) -> Option<&'static str> {
    Some(match name {
        "cluster-admin" => "everything, everywhere it is bound",
        "admin" => "administer: read and change everything, including roles and bindings",
        "edit" => "edit: read and change most objects, not roles or bindings",
        "view" => "read: see most objects, not Secrets",
        _ => return None,
    })
}

/// A role's rules in words: each rule's verbs on its resources.
pub fn rules_in_words(rules: &[PolicyRule]) -> String {
    if rules.is_empty() {
        return "nothing (no rules)".into();
    }
    rules
        .iter()
        .map(|r| {
            let verbs = r.verbs.join(", ");
            let on: Vec<String> = match (&r.resources, &r.non_resource_urls) {
                (Some(res), _) if !res.is_empty() => {
                    let groups = r.api_groups.clone().unwrap_or_default();
                    res.iter()
                        .map(|x| match groups.iter().find(|g| !g.is_empty()) {
                            Some(g) => format!("{x}.{g}"),
                            None => x.clone(),
                        })
                        .collect()
                }
                (_, Some(urls)) => urls.clone(),
                _ => vec![],
            };
            let names = r
                .resource_names
                .as_ref()
                .filter(|n| !n.is_empty())
                .map(|n| format!(" named {}", n.join(", ")))
                .unwrap_or_default();
            format!("{verbs} on {}{names}", on.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A bound role's rules as the viewer could read them.
#[derive(Debug, Clone, PartialEq)]
pub enum Rules {
    /// Read.
    Read(Vec<PolicyRule>),
    /// The role does not exist: the binding grants nothing.
    Missing,
    /// The viewer may not read it.
    Refused,
}

fn role_words(r: &RoleRef, rules: &BTreeMap<String, Rules>) -> String {
    if r.kind == "ClusterRole"
        && let Some(w) = built_in(&r.name)
    {
        return w.into();
    }
    match rules.get(&role_key(r)) {
        Some(Rules::Read(rs)) => format!("custom: {}", rules_in_words(rs)),
        Some(Rules::Missing) => "nothing: the role does not exist".into(),
        _ => "custom (its rules are not readable to you)".into(),
    }
}

fn role_key(r: &RoleRef) -> String {
    format!("{}/{}", r.kind, r.name)
}

fn subject_name(s: &Subject) -> String {
    match (&s.kind[..], &s.namespace) {
        ("ServiceAccount", Some(ns)) => format!("{ns}/{}", s.name),
        _ => s.name.clone(),
    }
}

/// One row per subject of every binding (pure); `grants` by binding
/// (`namespace/name` or the ClusterRoleBinding's name), `rules` by role.
pub fn rows(
    bindings: &[RoleBinding],
    cluster: &[ClusterRoleBinding],
    rules: &BTreeMap<String, Rules>,
    grants: &BTreeMap<String, Grant>,
) -> Vec<AccessRow> {
    let local = bindings.iter().map(|b| (b.name_any(), &b.role_ref, &b.subjects, false));
    let wide = cluster.iter().map(|b| (b.name_any(), &b.role_ref, &b.subjects, true));
    let mut out: Vec<AccessRow> = local
        .chain(wide)
        .flat_map(|(name, role, subjects, cluster_wide)| {
            subjects.iter().flatten().map(move |s| AccessRow {
                kind: s.kind.clone(),
                subject: subject_name(s),
                role: role_key(role),
                allows: role_words(role, rules),
                binding: name.clone(),
                cluster_wide,
                granted_by: grants.get(&name).cloned(),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.kind, &a.subject, &a.binding).cmp(&(&b.kind, &b.subject, &b.binding)));
    out
}

/// `GET /access`: the namespaces where the viewer may see who has access,
/// and a form asking what one user can reach; `?user=…` is that answer.
async fn index(state: State, LoggedIn(s): LoggedIn, q: web::Query<super::access_user::Query>) -> Page {
    state.heartbeat(&s);
    let q = q.into_inner();
    if q.user.is_some() {
        return super::access_user::user(state, s, q).await;
    }
    let namespaces = state.where_may(&s, readable::ROLE_BINDINGS).await;
    Ok(state.page("access_index.html", &s, context! { namespaces }))
}

#[derive(serde::Deserialize)]
struct Format {
    format: Option<String>,
    /// Also Kubernetes' own bindings (names beginning with `system:`).
    system: Option<String>,
}

/// Whether a row is one of Kubernetes' own bindings (its name or its
/// role's begins with `system:`), hidden unless asked for.
pub fn is_system(r: &AccessRow) -> bool {
    r.binding.starts_with("system:") || r.role.split_once('/').is_some_and(|(_, n)| n.starts_with("system:"))
}

/// `GET /access/{ns}[?format=csv|json]`: who has access to `ns`.
async fn namespace(state: State, LoggedIn(s): LoggedIn, path: web::Path<String>, q: web::Query<Format>) -> Page {
    state.heartbeat(&s);
    let ns = path.into_inner();
    let client = state.as_user(&s).map_err(|e| state.unavailable(&s, &e))?;
    let bindings = match Api::<RoleBinding>::namespaced(client.clone(), &ns)
        .list(&Default::default())
        .await
    {
        Ok(l) => l.items,
        Err(e) => {
            let code = match &e {
                kube::Error::Api(a) if a.code == 403 => StatusCode::FORBIDDEN,
                kube::Error::Api(a) if a.code == 404 => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_GATEWAY,
            };
            return Err(state.refuse(
                Some(&s),
                code,
                "No access view",
                &format!(
                    "You may not see who has access to {ns}: listing its RoleBindings was refused ({}). \
                     A namespace's admins may; ask one of them.",
                    why(&e)
                ),
            ));
        }
    };
    let (cluster, cluster_note) = match Api::<ClusterRoleBinding>::all(client.clone())
        .list(&Default::default())
        .await
    {
        Ok(l) => (l.items, None),
        Err(e) => (
            vec![],
            Some(format!(
                "Bindings made cluster-wide (ClusterRoleBindings) reach {ns} too, and you may not list them: {}",
                why(&e)
            )),
        ),
    };
    let (rules, grants) = futures::join!(
        read_rules(&client, &ns, &bindings, &cluster),
        read_grants(&client, &bindings, &cluster)
    );
    let mut rows = rows(&bindings, &cluster, &rules, &grants);
    let with_system = q.system.is_some();
    let system = rows.iter().filter(|r| is_system(r)).count();
    if !with_system {
        rows.retain(|r| !is_system(r));
    }
    match q.format.as_deref() {
        Some("json") => Ok(HttpResponse::Ok().json(&rows)),
        Some("csv") => Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "content-disposition",
                format!("attachment; filename=\"access-{ns}.csv\""),
            ))
            .body(csv(&rows))),
        Some(other) => Err(state.refuse(
            Some(&s),
            StatusCode::BAD_REQUEST,
            "Unknown format",
            &format!("There is no format {other:?}: use csv or json, or none for the page."),
        )),
        None => Ok(state.page(
            "access.html",
            &s,
            context! { namespace => ns, rows => Serde(&rows), cluster_note, system, with_system },
        )),
    }
}

/// The rules of every custom role bound, read as the viewer.
async fn read_rules(
    client: &Client,
    ns: &str,
    bindings: &[RoleBinding],
    cluster: &[ClusterRoleBinding],
) -> BTreeMap<String, Rules> {
    let refs: std::collections::BTreeSet<(String, String)> = bindings
        .iter()
        .map(|b| &b.role_ref)
        .chain(cluster.iter().map(|b| &b.role_ref))
        .filter(|r| !(r.kind == "ClusterRole" && built_in(&r.name).is_some()))
        .map(|r| (r.kind.clone(), r.name.clone()))
        .collect();
    stream::iter(refs)
        .map(|(kind, name)| async move {
            let read = match &kind[..] {
                "Role" => Api::<Role>::namespaced(client.clone(), ns)
                    .get_opt(&name)
                    .await
                    .map(|r| r.map(|r| r.rules.unwrap_or_default())),
                _ => Api::<ClusterRole>::all(client.clone())
                    .get_opt(&name)
                    .await
                    .map(|r| r.map(|r| r.rules.unwrap_or_default())),
            };
            let rules = match read {
                Ok(Some(rs)) => Rules::Read(rs),
                Ok(None) => Rules::Missing,
                Err(_) => Rules::Refused,
            };
            (format!("{kind}/{name}"), rules)
        })
        .buffer_unordered(8)
        .collect()
        .await
}

/// The Terminal or SessionClaim each Portico-labelled binding was made for,
/// read as the viewer and checked by UID (a label alone proves nothing).
async fn read_grants(
    client: &Client,
    bindings: &[RoleBinding],
    cluster: &[ClusterRoleBinding],
) -> BTreeMap<String, Grant> {
    let marked: Vec<(String, &'static str, String, String)> = bindings
        .iter()
        .map(|b| &b.metadata)
        .chain(cluster.iter().map(|b| &b.metadata))
        .filter_map(|m| {
            let labels = m.labels.as_ref()?;
            let annotations = m.annotations.as_ref()?;
            let name = m.name.clone()?;
            if let (Some(uid), Some(owner)) = (
                labels.get(keys::TERMINAL_UID_LABEL),
                annotations.get(keys::TERMINAL_OWNER_ANNOTATION),
            ) {
                return Some((name, "Terminal", uid.clone(), owner.clone()));
            }
            let (uid, owner) = (
                labels.get(keys::SESSION_UID_LABEL)?,
                annotations.get(keys::SESSION_OWNER_ANNOTATION)?,
            );
            Some((name, "SessionClaim", uid.clone(), owner.clone()))
        })
        .collect();
    stream::iter(marked)
        .map(|(binding, kind, uid, owner)| async move {
            let (ns, name) = owner.split_once('/').unwrap_or_default();
            let read = match kind {
                "Terminal" => {
                    read_owner::<Terminal>(client, ns, name, |t| {
                        let st = t.status.clone().unwrap_or_default();
                        (st.creator, st.expires_at)
                    })
                    .await
                }
                _ => {
                    read_owner::<SessionClaim>(client, ns, name, |c| {
                        let st = c.status.clone().unwrap_or_default();
                        (st.user, st.expires_at)
                    })
                    .await
                }
            };
            let mut grant = Grant {
                kind,
                object: owner.clone(),
                creator: None,
                ends: None,
                link: None,
                note: None,
            };
            match read {
                Ok(Some((Some(u), creator, ends))) if u == uid => {
                    grant.creator = creator;
                    grant.ends = ends;
                    grant.link = (kind == "Terminal").then(|| format!("/terminals/{owner}"));
                }
                Ok(_) => grant.note = Some(format!("no {kind} {owner} with this binding's UID exists")),
                Err(e) => grant.note = Some(format!("not readable to you: {}", why(&e))),
            }
            (binding, grant)
        })
        .buffer_unordered(8)
        .collect()
        .await
}

/// A Terminal or SessionClaim as the viewer reads it: its UID, creator and
/// end (`creator_and_end` picks the last two from its status).
async fn read_owner<K>(
    client: &Client,
    ns: &str,
    name: &str,
    creator_and_end: impl Fn(
        &K,
    ) -> (
        Option<String>,
        Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    ),
) -> Result<Option<(Option<String>, Option<String>, Option<String>)>, kube::Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let found = Api::<K>::namespaced(client.clone(), ns).get_opt(name).await?;
    Ok(found.map(|o| {
        let (creator, end) = creator_and_end(&o);
        (o.uid(), creator, end.map(|e| e.0.to_string()))
    }))
}

/// A table as CSV (RFC 4180 quoting). A cell a spreadsheet would take for
/// a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return) gets a `'` in front, so opening the file runs nothing.
pub fn csv_table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let field = |v: &str| {
        let v = match v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            true => format!("'{v}"),
            false => v.to_string(),
        };
        match v.contains([',', '"', '\n', '\r']) {
            true => format!("\"{}\"", v.replace('"', "\"\"")),
            false => v,
        }
    };
    let mut out = header.join(",");
    out.push('\n');
    for cells in rows {
        out.push_str(&cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// The rows as CSV.
pub fn csv(rows: &[AccessRow]) -> String {
    csv_table(
        &[
            "kind",
            "subject",
            "role",
            "allows",
            "binding",
            "cluster_wide",
            "granted_by",
            "creator",
            "ends",
        ],
        rows.iter().map(|r| {
            let g = r.granted_by.as_ref();
            vec![
                r.kind.clone(),
                r.subject.clone(),
                r.role.clone(),
                r.allows.clone(),
                r.binding.clone(),
                r.cluster_wide.to_string(),
                g.map(|g| format!("{} {}", g.kind, g.object)).unwrap_or_default(),
                g.and_then(|g| g.creator.clone()).unwrap_or_default(),
                g.and_then(|g| g.ends.clone()).unwrap_or_default(),
            ]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rb(name: &str, role: (&str, &str), subjects: serde_json::Value) -> RoleBinding {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "team-a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role.0, "name": role.1},
            "subjects": subjects,
        }))
        .unwrap()
    }

    #[test]
    fn every_subject_gets_a_row_with_its_role_in_words() {
        let bindings = [
            rb(
                "alice-edit",
                ("ClusterRole", "edit"),
                json!([{"kind": "User", "name": "alice"}]),
            ),
            rb(
                "readers",
                ("Role", "pod-reader"),
                json!([{"kind": "Group", "name": "qa"}, {"kind": "ServiceAccount", "name": "ci", "namespace": "build"}]),
            ),
            rb("secret", ("Role", "hidden"), json!([{"kind": "User", "name": "zed"}])),
            rb("stale", ("Role", "gone"), json!([{"kind": "User", "name": "yan"}])),
        ];
        let cluster: ClusterRoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "admins"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "Group", "name": "portico-admins"}],
        }))
        .unwrap();
        let rule: PolicyRule = serde_json::from_value(
            json!({"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}),
        )
        .unwrap();
        let rules = BTreeMap::from([
            ("Role/pod-reader".to_string(), Rules::Read(vec![rule])),
            ("Role/hidden".to_string(), Rules::Refused),
            ("Role/gone".to_string(), Rules::Missing),
        ]);
        let grant = Grant {
            kind: "Terminal",
            object: "team-a/t".into(),
            creator: Some("alice".into()),
            ends: None,
            link: Some("/terminals/team-a/t".into()),
            note: None,
        };
        let grants = BTreeMap::from([("alice-edit".to_string(), grant.clone())]);
        let rows = rows(&bindings, &[cluster], &rules, &grants);
        let seen: Vec<(&str, &str, &str, bool)> = rows
            .iter()
            .map(|r| (r.kind.as_str(), r.subject.as_str(), r.allows.as_str(), r.cluster_wide))
            .collect();
        assert_eq!(
            seen,
            [
                ("Group", "portico-admins", built_in("admin").unwrap(), true),
                ("Group", "qa", "custom: get, list on pods, pods/log", false),
                (
                    "ServiceAccount",
                    "build/ci",
                    "custom: get, list on pods, pods/log",
                    false
                ),
                ("User", "alice", built_in("edit").unwrap(), false),
                ("User", "yan", "nothing: the role does not exist", false),
                ("User", "zed", "custom (its rules are not readable to you)", false),
            ]
        );
        assert_eq!(rows[3].granted_by, Some(grant));
    }

    #[test]
    fn rules_name_groups_resource_names_and_urls() {
        let rules: Vec<PolicyRule> = serde_json::from_value(json!([
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"], "resourceNames": ["web"]},
            {"nonResourceURLs": ["/healthz"], "verbs": ["get"]},
        ]))
        .unwrap();
        assert_eq!(
            rules_in_words(&rules),
            "patch on deployments.apps named web; get on /healthz"
        );
        assert_eq!(rules_in_words(&[]), "nothing (no rules)");
    }

    #[test]
    fn csv_cells_a_spreadsheet_would_run_are_defused() {
        let csv = csv_table(
            &["a", "b"],
            [
                vec!["=HYPERLINK(\"x\")".to_string(), "-1+2".to_string()],
                vec!["ok".into(), "@x".into()],
            ],
        );
        assert_eq!(
            csv.lines().collect::<Vec<_>>(),
            ["a,b", "\"'=HYPERLINK(\"\"x\"\")\",'-1+2", "ok,'@x"]
        );
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let row = AccessRow {
            kind: "User".into(),
            subject: "a,b".into(),
            role: "ClusterRole/x".into(),
            allows: "say \"hi\"".into(),
            binding: "b".into(),
            cluster_wide: false,
            granted_by: None,
        };
        assert_eq!(
            csv(&[row]).lines().nth(1).unwrap(),
            "User,\"a,b\",ClusterRole/x,\"say \"\"hi\"\"\",b,false,,,"
        );
    }
}
