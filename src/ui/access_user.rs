//! What one user can reach (`/access?user=…`), as the API server answers it: in every
//! namespace, a LocalSubjectAccessReview made as the viewer for the user and
//! their groups (those their sessions recorded, and any the viewer adds)
//! asks whether they may administer, edit or read there — so a namespace's
//! admins may ask about their namespaces and cluster admins everywhere, and
//! nobody learns about a namespace they may not ask about. Beside it, the
//! user's Deployments and Terminals in those namespaces and, for admins,
//! their active sessions; and their recent activity from those objects
//! ([`super::activity`]). Also as CSV and JSON.

use std::collections::BTreeSet;

use actix_web::{HttpResponse, http::StatusCode};
use futures::{StreamExt, stream};
use k8s_openapi::api::authorization::v1::{LocalSubjectAccessReview, ResourceAttributes, SubjectAccessReviewSpec};
use kube::{Api, Client, api::PostParams};
use minijinja::{context, value::Serde};
use serde::Serialize;

use super::{cookies::Session, page::Page, rows::Row, state::State};

/// Reviews in flight at once.
const AT_ONCE: usize = 8;

/// What a user may do in one namespace, from the strongest question allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Nothing asked about.
    None,
    /// List pods.
    Read,
    /// Create Deployments (apps).
    Edit,
    /// Create RoleBindings: give others access.
    Admin,
}

impl Level {
    /// In words.
    pub fn words(self) -> &'static str {
        match self {
            Level::Admin => "administers: may give others access",
            Level::Edit => "edits: may create and change workloads",
            Level::Read => "reads: may list pods",
            Level::None => "none of these",
        }
    }
}

/// The questions, strongest first.
const QUESTIONS: [(Level, &str, &str, &str); 3] = [
    (Level::Admin, "rbac.authorization.k8s.io", "rolebindings", "create"),
    (Level::Edit, "apps", "deployments", "create"),
    (Level::Read, "", "pods", "list"),
];

/// One namespace's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reach {
    /// The namespace.
    pub namespace: String,
    /// The strongest level allowed.
    pub level: Level,
    /// In words.
    pub words: &'static str,
    /// The user's Portico Deployments there.
    pub deployments: usize,
    /// The user's Terminals there.
    pub terminals: usize,
}

/// The strongest level of the answers (pure): each question's level and
/// whether it was allowed.
pub fn strongest(answers: &[(Level, bool)]) -> Level {
    answers
        .iter()
        .filter(|(_, allowed)| *allowed)
        .map(|(l, _)| *l)
        .max()
        .unwrap_or(Level::None)
}

/// The groups to ask with: those the user's sessions recorded and those
/// given (pure; comma-separated, blanks dropped).
pub fn groups_of(recorded: impl IntoIterator<Item = String>, given: Option<&str>) -> Vec<String> {
    let mut all: BTreeSet<String> = recorded.into_iter().collect();
    all.extend(
        given
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_string),
    );
    all.into_iter().collect()
}

/// What `/access?user=…` asks.
#[derive(serde::Deserialize)]
pub struct Query {
    /// The user asked about.
    pub user: Option<String>,
    /// Groups to ask with besides those their sessions recorded.
    groups: Option<String>,
    format: Option<String>,
}

/// Asks one namespace; `None` when the viewer may not ask there.
async fn ask(client: &Client, ns: &str, user: &str, groups: &[String]) -> Option<Level> {
    let api: Api<LocalSubjectAccessReview> = Api::namespaced(client.clone(), ns);
    let mut answers = Vec::new();
    for (level, group, resource, verb) in QUESTIONS {
        let review = LocalSubjectAccessReview {
            metadata: kube::api::ObjectMeta {
                namespace: Some(ns.to_string()),
                ..Default::default()
            },
            spec: SubjectAccessReviewSpec {
                user: Some(user.to_string()),
                groups: Some(groups.to_vec()),
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(ns.to_string()),
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    verb: Some(verb.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            status: None,
        };
        let answer = api.create(&PostParams::default(), &review).await.ok()?;
        let allowed = answer.status.is_some_and(|s| s.allowed);
        answers.push((level, allowed));
        if allowed {
            break; // the strongest allowed is found
        }
    }
    Some(strongest(&answers))
}

/// `GET /access?user=U[&groups=a,b][&format=csv|json]`.
pub async fn user(state: State, s: Session, q: Query) -> Page {
    let Some(name) = q.user.as_deref().map(str::trim).filter(|n| !n.is_empty()) else {
        return Err(state.refuse(
            Some(&s),
            StatusCode::BAD_REQUEST,
            "Which user?",
            "Name the user (their Kubernetes user name, as the login provider names them).",
        ));
    };
    let sessions: Vec<_> = state
        .claims()
        .into_iter()
        .filter(|c| c.status.as_ref().and_then(|st| st.user.as_deref()) == Some(name))
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .collect();
    let groups = groups_of(
        sessions
            .iter()
            .flat_map(|c| c.status.as_ref().map(|st| st.groups.clone()).unwrap_or_default()),
        q.groups.as_deref(),
    );
    let client = state.as_user(&s).map_err(|e| state.unavailable(&s, &e))?;
    let namespaces: Vec<String> = state.namespace_names();
    let answers: Vec<(String, Option<Level>)> = stream::iter(namespaces)
        .map(|ns| {
            let (client, groups) = (&client, &groups);
            async move {
                let level = ask(client, &ns, name, groups).await;
                (ns, level)
            }
        })
        .buffered(AT_ONCE)
        .collect()
        .await;
    let refused = answers.iter().filter(|(_, l)| l.is_none()).count();
    if refused == answers.len() {
        return Err(state.refuse(
            Some(&s),
            StatusCode::FORBIDDEN,
            "Not yours to ask",
            &format!(
                "You may not ask the API server what {name} may do in any namespace (creating \
                 LocalSubjectAccessReviews was refused everywhere); a namespace's admins may ask about it."
            ),
        ));
    }
    // The activity shows objects by name: only where the viewer may list them.
    let may_list = (
        state
            .readable(&s, super::readable::DEPLOYMENTS, &state.live.deployments)
            .await?,
        state
            .readable(&s, super::readable::TERMINALS, &state.live.terminals)
            .await?,
    );
    let (deployments, terminals) = (
        state.live.deployments.read().unwrap(),
        state.live.terminals.read().unwrap(),
    );
    let reach: Vec<Reach> = answers
        .into_iter()
        .filter_map(|(ns, l)| l.map(|l| (ns, l)))
        .map(|(ns, level)| Reach {
            deployments: deployments.rows(Some(name)).filter(|r| r.key().0 == ns).count(),
            terminals: terminals.rows(Some(name)).filter(|r| r.key().0 == ns).count(),
            namespace: ns,
            level,
            words: level.words(),
        })
        .collect();
    let reached: Vec<&Reach> = reach.iter().filter(|r| r.level != Level::None).collect();
    // What the user did lately, in the namespaces they reach where the
    // viewer may list the objects (and their sessions for admins, who see
    // those).
    let shown =
        |ns: &str, listable: &super::readable::Readable| listable.has(ns) && reached.iter().any(|r| r.namespace == ns);
    let admin = state.is_admin(&s);
    let activity = super::activity::entries(
        deployments
            .rows(Some(name))
            .filter(|r| shown(&r.key().0, &may_list.0))
            .map(|r| super::activity::Seen {
                kind: "Deployment",
                namespace: &r.key().0,
                name: &r.key().1,
                created: r.created,
                heartbeat: None,
            })
            .chain(
                terminals
                    .rows(Some(name))
                    .filter(|r| shown(&r.key().0, &may_list.1))
                    .map(|r| super::activity::Seen {
                        kind: "Terminal",
                        namespace: &r.key().0,
                        name: &r.key().1,
                        created: r.created,
                        heartbeat: r.heartbeat.as_deref(),
                    }),
            )
            .chain(sessions.iter().filter(|_| admin).map(|c| {
                super::activity::Seen {
                    kind: "SessionClaim",
                    namespace: c.metadata.namespace.as_deref().unwrap_or_default(),
                    name: c.metadata.name.as_deref().unwrap_or_default(),
                    created: c.metadata.creation_timestamp.as_ref().map(|t| t.0.as_nanosecond()),
                    heartbeat: c
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(crate::api::keys::LAST_HEARTBEAT_AT))
                        .map(String::as_str),
                }
            })),
    );
    drop((deployments, terminals));
    let rows = || {
        reached.iter().map(|r| {
            vec![
                r.namespace.clone(),
                format!("{:?}", r.level).to_lowercase(),
                r.words.to_string(),
                r.deployments.to_string(),
                r.terminals.to_string(),
            ]
        })
    };
    match q.format.as_deref() {
        Some("json") => Ok(HttpResponse::Ok().json(serde_json::json!({
            "user": name, "groups": groups, "namespaces": reached, "activity": activity,
        }))),
        Some("csv") => Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "content-disposition",
                format!("attachment; filename=\"access-user-{name}.csv\""),
            ))
            .body(super::access::csv_table(
                &["namespace", "level", "allows", "deployments", "terminals"],
                rows(),
            ))),
        Some(other) => Err(state.refuse(
            Some(&s),
            StatusCode::BAD_REQUEST,
            "Unknown format",
            &format!("There is no format {other:?}: use csv or json, or none for the page."),
        )),
        None => {
            let sessions: Vec<minijinja::Value> = match state.is_admin(&s) {
                true => sessions
                    .iter()
                    .map(|c| {
                        let st = c.status.clone().unwrap_or_default();
                        context! {
                            name => kube::ResourceExt::name_any(c.as_ref()),
                            profile => c.spec.profile.clone(),
                            ends => st.expires_at.map(|e| e.0.to_string()),
                        }
                    })
                    .collect(),
                false => vec![],
            };
            let elsewhere = reach.len() - reached.len();
            Ok(state.page(
                "access_user.html",
                &s,
                context! {
                    user => name, groups, given => q.groups.clone().unwrap_or_default(),
                    reach => Serde(&reached), elsewhere, refused,
                    sessions, show_sessions => state.is_admin(&s), activity => Serde(&activity),
                },
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strongest_allowed_answer_counts() {
        assert_eq!(strongest(&[(Level::Admin, false), (Level::Edit, true)]), Level::Edit);
        assert_eq!(
            strongest(&[(Level::Admin, false), (Level::Edit, false), (Level::Read, false)]),
            Level::None
        );
        assert_eq!(strongest(&[]), Level::None);
    }

    #[test]
    fn groups_come_from_sessions_and_the_viewer_without_blanks_or_repeats() {
        let g = groups_of(["developers".to_string()], Some(" ops, ,developers,"));
        assert_eq!(g, ["developers", "ops"]);
        assert!(groups_of(Vec::new(), None).is_empty());
    }
}
