//! Usage figures over time for Insights, per team (namespace) and per
//! user, from Prometheus: the operator's `portico_usage_*` metrics
//! ([`crate::metrics::usage`]) over the range the viewer picks. Per team:
//! only the namespaces where the viewer may list Terminals (their figures)
//! and Deployments (operations). Per user: everyone's for an admin, else
//! the viewer's own. Every label matcher is built here from namespace and
//! user names, escaped, never from request input. The queries and the rows
//! are pure; [`query`] is the only I/O, [`gather`] asks where the viewer may look.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::delivery::Scope;

/// A PromQL string literal's content for `s` (pure).
fn quoted(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The matchers of the per-team queries (pure): Terminal figures where the
/// viewer may list Terminals, operations where they may list Deployments;
/// `None` for a scope with nothing in it.
pub fn team_matchers(terminals: &Scope, deployments: &Scope) -> (Option<String>, Option<String>) {
    let kind = |m: String, kind: &str| match m.is_empty() {
        true => format!("kind=\"{kind}\""),
        false => format!("kind=\"{kind}\",{m}"),
    };
    (
        super::delivery::matcher(terminals).map(|m| kind(m, "Terminal")),
        super::delivery::matcher(deployments),
    )
}

/// The matcher of the per-user queries (pure): everyone (`None`) or one user.
pub fn user_matcher(user: Option<&str>) -> String {
    user.map(|u| format!("user=\"{}\"", quoted(u))).unwrap_or_default()
}

pub use super::delivery::total_by as total;

/// The five queries of one table, by label `by` (`object_namespace` or
/// `user`), with the matchers of Terminals and SessionClaims (`objects`)
/// and of Deployments (`operations`); a query without a matcher is not asked (pure).
pub fn queries(objects: Option<&str>, operations: Option<&str>, range: &str, by: &str) -> [Option<String>; 5] {
    let last = "portico_usage_last_activity_timestamp_seconds";
    let latest = |m: &str, kind: Option<&str>| {
        let m = match kind {
            Some(k) if m.is_empty() => format!("kind=\"{k}\""),
            Some(k) => format!("kind=\"{k}\",{m}"),
            None => m.to_string(),
        };
        format!("max_over_time({last}{{{m}}}[{range}])")
    };
    let activity = match (objects, operations) {
        (Some(o), Some(d)) => Some(format!(
            "max by ({by}) ({} or {})",
            latest(o, None),
            latest(d, Some("Deployment"))
        )),
        (Some(o), None) => Some(format!("max by ({by}) ({})", latest(o, None))),
        (None, Some(d)) => Some(format!("max by ({by}) ({})", latest(d, Some("Deployment")))),
        (None, None) => None,
    };
    [
        objects.map(|m| total("portico_usage_opened_total", m, range, &format!("{by}, kind"))),
        objects.map(|m| total("portico_usage_lifetime_seconds_total", m, range, &format!("{by}, kind"))),
        objects.map(|m| total("portico_usage_ended_total", m, range, &format!("{by}, kind, reason"))),
        operations.map(|m| total("portico_usage_operations_total", m, range, &format!("{by}, outcome"))),
        activity,
    ]
}

/// One team's or user's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    /// The namespace (per team) or the user (per user).
    pub name: String,
    /// Deployment changes that ended, Ready or Stalled.
    pub operations: f64,
    /// Of those, the ones that turned Ready.
    pub succeeded: f64,
    /// Succeeded of all operations, 0 to 1.
    pub success_rate: Option<f64>,
    /// The latest opening, end or operation (RFC 3339).
    pub last_activity: Option<String>,
    /// Terminals that turned Ready.
    pub terminals: f64,
    /// Hours of the Terminals that ended, from creation to end.
    pub terminal_hours: f64,
    /// Terminals and sessions that ended without a heartbeat in time.
    pub idle_expirations: f64,
    /// Terminals and sessions that reached their maximum lifetime.
    pub max_lifetime_expirations: f64,
    /// Sessions started (per user only).
    pub logins: Option<f64>,
    /// Sessions deleted before they expired: logged out, revoked by an
    /// admin or deleted with kubectl (per user only).
    pub revocations: Option<f64>,
}

/// The samples of a query's answer by the values of `labels` (pure).
pub fn samples(answer: Option<&Value>, labels: &[&str]) -> BTreeMap<Vec<String>, f64> {
    let mut out = BTreeMap::new();
    for r in answer
        .and_then(|a| a.pointer("/data/result"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = labels
            .iter()
            .map(|k| r["metric"][*k].as_str().unwrap_or_default().to_string())
            .collect();
        let value = r["value"][1].as_str().and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = value.filter(|v| v.is_finite()) {
            out.insert(key, v);
        }
    }
    out
}

/// The rows from the five answers of [`queries`] by `by` (pure); `users`:
/// whether they are per user (with logins and revocations). One row per
/// name with any figure in the range.
pub fn rows(answers: &[Option<Value>; 5], by: &str, users: bool) -> Vec<Row> {
    let opened = samples(answers[0].as_ref(), &[by, "kind"]);
    let lived = samples(answers[1].as_ref(), &[by, "kind"]);
    let ended = samples(answers[2].as_ref(), &[by, "kind", "reason"]);
    let operations = samples(answers[3].as_ref(), &[by, "outcome"]);
    let activity = samples(answers[4].as_ref(), &[by]);
    let names: BTreeSet<&String> = [&opened, &lived, &operations, &activity]
        .into_iter()
        .flat_map(|m| m.keys())
        .chain(ended.keys())
        .map(|k| &k[0])
        .collect();
    let get = |m: &BTreeMap<Vec<String>, f64>, key: &[&str]| {
        let key: Vec<String> = key.iter().map(|s| s.to_string()).collect();
        m.get(&key).copied().unwrap_or(0.0)
    };
    names
        .into_iter()
        .filter(|n| !n.is_empty())
        .filter_map(|n| {
            let count = |m: &BTreeMap<Vec<String>, f64>, key: &[&str]| get(m, key).round();
            let ends = |reason: &str| {
                count(&ended, &[n, "Terminal", reason])
                    + if users {
                        count(&ended, &[n, "SessionClaim", reason])
                    } else {
                        0.0
                    }
            };
            let (ready, stalled) = (count(&operations, &[n, "ready"]), count(&operations, &[n, "stalled"]));
            let last_activity = activity
                .get(&vec![n.clone()])
                .and_then(|t| k8s_openapi::jiff::Timestamp::from_millisecond((t * 1000.0) as i64).ok())
                .map(|t| t.round(k8s_openapi::jiff::Unit::Second).unwrap_or(t).to_string());
            let row = Row {
                name: n.clone(),
                operations: ready + stalled,
                succeeded: ready,
                success_rate: (ready + stalled > 0.0).then(|| ready / (ready + stalled)),
                last_activity,
                terminals: count(&opened, &[n, "Terminal"]),
                terminal_hours: get(&lived, &[n, "Terminal"]) / 3600.0,
                idle_expirations: ends("IdleTimeout"),
                max_lifetime_expirations: ends("MaxLifetime"),
                logins: users.then(|| count(&opened, &[n, "SessionClaim"])),
                revocations: users.then(|| count(&ended, &[n, "SessionClaim", "Deleted"])),
            };
            let any = row.operations
                + row.terminals
                + row.terminal_hours
                + row.idle_expirations
                + row.max_lifetime_expirations
                + row.logins.unwrap_or(0.0)
                + row.revocations.unwrap_or(0.0)
                > 0.0;
            (any || row.last_activity.is_some()).then_some(row)
        })
        .collect()
}

/// Usage over a range, or why there is none.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    /// The range: `7d`, `30d` or `90d`.
    pub range: String,
    /// Per namespace where the viewer may look.
    pub teams: Vec<Row>,
    /// Per user: everyone's for an admin, else the viewer's own.
    pub users: Vec<Row>,
    /// Whether `users` is everyone's.
    pub all_users: bool,
    /// Why there are no figures: not configured, or Prometheus' error.
    pub unavailable: Option<String>,
}

/// The usage as CSV, one line per team and per user (pure).
pub fn csv(u: &Usage) -> String {
    let n = |v: f64| format!("{v}");
    let opt = |v: Option<f64>, p: usize| v.map(|v| format!("{v:.p$}")).unwrap_or_default();
    super::access::csv_table(
        &[
            "per",
            "name",
            "operations",
            "succeeded",
            "success_rate",
            "last_activity",
            "terminals_opened",
            "terminal_hours",
            "idle_expirations",
            "max_lifetime_expirations",
            "logins",
            "revocations",
        ],
        [("team", &u.teams), ("user", &u.users)]
            .into_iter()
            .flat_map(|(per, rows)| {
                rows.iter().map(move |r| {
                    vec![
                        per.to_string(),
                        r.name.clone(),
                        n(r.operations),
                        n(r.succeeded),
                        opt(r.success_rate, 3),
                        r.last_activity.clone().unwrap_or_default(),
                        n(r.terminals),
                        format!("{:.3}", r.terminal_hours),
                        n(r.idle_expirations),
                        n(r.max_lifetime_expirations),
                        opt(r.logins, 0),
                        opt(r.revocations, 0),
                    ]
                })
            }),
    )
}

/// Asks Prometheus at `base` each of `queries` (none for a `None`).
pub async fn query(
    http: &openidconnect::reqwest::Client,
    base: &str,
    queries: [Option<String>; 5],
) -> Result<[Option<Value>; 5], String> {
    let ask = |q: Option<String>| async move {
        match q {
            Some(q) => super::delivery::ask(http, base, q).await.map(Some),
            None => Ok(None),
        }
    };
    let [a, b, c, d, e] = queries;
    let (a, b, c, d, e) = futures::try_join!(ask(a), ask(b), ask(c), ask(d), ask(e))?;
    Ok([a, b, c, d, e])
}

/// The usage over `range` that `s` may see.
pub async fn gather(state: &super::state::State, s: &super::cookies::Session, range: &str) -> Usage {
    let all_users = state.is_admin(s);
    let answer = |unavailable: String| Usage {
        range: range.to_string(),
        all_users,
        unavailable: Some(unavailable),
        ..Usage::default()
    };
    let Some(prometheus) = &state.prometheus else {
        return answer("Usage figures over time come from a Prometheus that scrapes the operator: set prometheus.url in the dashboard's configuration (the chart's dashboard.prometheus.url).".into());
    };
    // Everywhere for a cluster-wide grant (deleted namespaces' history too),
    // else the namespaces where the API server says the viewer may list them.
    let scope = |q: super::readable::Question| async move {
        match state.readable_for(s, q, Default::default()).await {
            Ok(r) if *r == super::readable::Readable::All => Ok(Scope::All),
            Ok(_) => Ok(Scope::In(state.where_may(s, q).await)),
            Err(e) => Err(format!(
                "The API server could not be asked where you may look: {}",
                super::state::why(&e)
            )),
        }
    };
    let (terminals, deployments) = match (
        scope(super::readable::TERMINALS).await,
        scope(super::readable::DEPLOYMENTS).await,
    ) {
        (Ok(t), Ok(d)) => (t, d),
        (Err(e), _) | (_, Err(e)) => return answer(e),
    };
    // Only the operator's series ([`super::delivery::Prometheus::source`]).
    let from = |m: Option<String>| m.map(|m| super::delivery::both(&m, &prometheus.source));
    let (objects, operations) = team_matchers(&terminals, &deployments);
    let (objects, operations) = (from(objects), from(operations));
    let teams = queries(objects.as_deref(), operations.as_deref(), range, "object_namespace");
    let users = if all_users {
        // Everyone's, where the admin may look: Terminals' namespaces (and
        // the sessions' where they may list SessionClaims), Deployments'.
        let mut places = terminals.clone();
        if let Scope::In(ns) = &mut places
            && state
                .may(s, super::readable::SESSION_CLAIMS, &state.cfg.session.namespace)
                .await
        {
            ns.push(state.cfg.session.namespace.clone());
        }
        let (objects, operations) = (
            from(super::delivery::matcher(&places)),
            from(super::delivery::matcher(&deployments)),
        );
        queries(objects.as_deref(), operations.as_deref(), range, "user")
    } else {
        // One's own, wherever it was.
        let me = from(Some(user_matcher(Some(s.user.as_str())))).unwrap_or_default();
        queries(Some(&me), Some(&me), range, "user")
    };
    let (http, url) = (&prometheus.http, prometheus.url.as_str());
    match futures::try_join!(query(http, url, teams), query(http, url, users)) {
        Ok((teams, users)) => Usage {
            range: range.to_string(),
            teams: rows(&teams, "object_namespace", false),
            users: rows(&users, "user", true),
            all_users,
            unavailable: None,
        },
        Err(e) => answer(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matchers_are_built_from_escaped_names() {
        let (t, d) = team_matchers(&Scope::In(vec!["team-a".into()]), &Scope::All);
        assert_eq!(t.as_deref(), Some(r#"kind="Terminal",object_namespace=~"team\\-a""#));
        assert_eq!(d.as_deref(), Some(""));
        assert_eq!(team_matchers(&Scope::In(vec![]), &Scope::In(vec![])), (None, None));
        assert_eq!(user_matcher(None), "");
        assert_eq!(user_matcher(Some(r#"a"b\c"#)), r#"user="a\"b\\c""#);
    }

    #[test]
    fn totals_count_series_born_in_the_range_and_gone_whole() {
        assert_eq!(
            total("x_total", "user=\"a\"", "7d", "user, kind"),
            "sum by (user, kind) ((increase(x_total{user=\"a\"}[7d]) and x_total{user=\"a\"} offset 7d) or (last_over_time(x_total{user=\"a\"}[7d]) unless x_total{user=\"a\"} offset 7d))"
        );
        let [_, _, _, ops, activity] = queries(Some("kind=\"Terminal\""), None, "30d", "object_namespace");
        assert_eq!(ops, None, "no operations where Deployments may not be listed");
        assert_eq!(
            activity.as_deref(),
            Some(
                "max by (object_namespace) (max_over_time(portico_usage_last_activity_timestamp_seconds{kind=\"Terminal\"}[30d]))"
            )
        );
        let [.., activity] = queries(Some(""), Some(""), "7d", "user");
        assert_eq!(
            activity.as_deref(),
            Some(
                "max by (user) (max_over_time(portico_usage_last_activity_timestamp_seconds{}[7d]) or max_over_time(portico_usage_last_activity_timestamp_seconds{kind=\"Deployment\"}[7d]))"
            )
        );
        assert!(queries(None, None, "7d", "user").iter().all(Option::is_none));
    }

    fn answer(series: Vec<(Vec<(&str, &str)>, &str)>) -> Option<Value> {
        Some(
            json!({"status": "success", "data": {"result": series.iter().map(|(labels, v)| {
            let metric: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            json!({"metric": metric, "value": [0, v]})
        }).collect::<Vec<_>>()}}),
        )
    }

    #[test]
    fn rows_give_each_users_figures() {
        let answers = [
            answer(vec![
                (vec![("user", "alice"), ("kind", "Terminal")], "1.9999"),
                (vec![("user", "alice"), ("kind", "SessionClaim")], "3"),
                (vec![("user", "carol"), ("kind", "Terminal")], "0"),
            ]),
            answer(vec![(vec![("user", "alice"), ("kind", "Terminal")], "5400")]),
            answer(vec![
                (
                    vec![("user", "alice"), ("kind", "Terminal"), ("reason", "IdleTimeout")],
                    "1",
                ),
                (
                    vec![("user", "alice"), ("kind", "SessionClaim"), ("reason", "IdleTimeout")],
                    "1",
                ),
                (
                    vec![("user", "alice"), ("kind", "SessionClaim"), ("reason", "Deleted")],
                    "2",
                ),
                (
                    vec![("user", "alice"), ("kind", "Terminal"), ("reason", "MaxLifetime")],
                    "1",
                ),
            ]),
            answer(vec![
                (vec![("user", "alice"), ("outcome", "ready")], "3"),
                (vec![("user", "alice"), ("outcome", "stalled")], "1"),
            ]),
            answer(vec![(vec![("user", "alice")], "1767225600.4")]),
        ];
        let r = rows(&answers, "user", true);
        assert_eq!(
            r,
            [Row {
                name: "alice".into(),
                operations: 4.0,
                succeeded: 3.0,
                success_rate: Some(0.75),
                last_activity: Some("2026-01-01T00:00:00Z".into()),
                terminals: 2.0,
                terminal_hours: 1.5,
                idle_expirations: 2.0,
                max_lifetime_expirations: 1.0,
                logins: Some(3.0),
                revocations: Some(2.0),
            }],
            "carol did nothing in the range"
        );
        let teams = rows(&answers, "user", false);
        assert_eq!(
            (teams[0].idle_expirations, teams[0].logins, teams[0].revocations),
            (1.0, None, None),
            "per team: Terminals only"
        );
        let csv = csv(&Usage {
            users: r,
            ..Usage::default()
        });
        assert_eq!(
            csv.lines().nth(1),
            Some("user,alice,4,3,0.750,2026-01-01T00:00:00Z,2,1.500,2,1,3,2")
        );
    }
}
