//! Insights (`/insights`): what a platform team asks without reading logs,
//! from the live objects, in the namespaces where the viewer may list them
//! (as the lists answer): Deployments Ready, progressing and Stalled;
//! active Terminals and sessions; action items that name the objects
//! needing a change; and compliance findings over the catalog templates the
//! viewer's groups may use and the Terminals they may see
//! ([`crate::compliance`]); and, from Prometheus where configured,
//! delivery figures over a range ([`super::delivery`]) and usage per team
//! and user ([`super::usage`]). `?format=json` exports it all, `?format=csv`
//! one table (`table=findings`, `actions`, `delivery`, `usage` or `deployments`).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, http::StatusCode, web};
use minijinja::{context, value::Serde};
use serde::Serialize;

use super::{access::csv_table, logged_in::LoggedIn, page::Page, readable, rows::Row, state::State};
use crate::compliance::{self, Finding, Severity};

/// The Insights page and its exports.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/insights", web::get().to(insights));
}

/// A Deployment Stalled longer than this is an action item of its own kind.
pub const STALLED_LONG_SECONDS: i64 = 3600;

/// What the page shows of one Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentFacts {
    pub namespace: String,
    pub name: String,
    pub template: String,
    /// `ready`, `progress` or `stalled`.
    pub state: &'static str,
    /// Its Ready condition's status (`True`, `False`, `Unknown`, or empty).
    pub ready: String,
    /// While Stalled: since when (seconds since the epoch).
    pub stalled_since: Option<i64>,
    pub message: String,
}

/// Counts for the overview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Overview {
    pub ready: usize,
    pub progressing: usize,
    pub stalled: usize,
    pub terminals: usize,
    pub sessions: usize,
    /// Whether `sessions` counts everyone's (an admin) or the viewer's own.
    pub all_sessions: bool,
}

/// Something that needs a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionItem {
    pub severity: Severity,
    pub text: String,
    /// The object's page, or the section that lists them.
    pub link: String,
}

/// Everything the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Insights {
    pub overview: Overview,
    pub actions: Vec<ActionItem>,
    pub findings: Vec<Finding>,
    pub deployments: Vec<DeploymentFacts>,
    pub delivery: Delivery,
    pub usage: super::usage::Usage,
}

/// The action items (pure): Deployments Stalled (those for more than an
/// hour counted apart), templates most of whose Deployments are Stalled,
/// and the critical compliance findings; most serious first.
pub fn actions(deployments: &[DeploymentFacts], findings: &[Finding], now: i64) -> Vec<ActionItem> {
    let mut out = vec![];
    let stalled: Vec<&DeploymentFacts> = deployments.iter().filter(|d| d.state == "stalled").collect();
    let long = stalled
        .iter()
        .filter(|d| d.stalled_since.is_some_and(|t| now - t > STALLED_LONG_SECONDS))
        .count();
    if long > 0 {
        out.push(ActionItem {
            severity: Severity::Critical,
            text: format!(
                "{long} Deployment{} Stalled for more than an hour",
                if long == 1 { "" } else { "s" }
            ),
            link: "#deployments".into(),
        });
    }
    let mut by_template: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for d in deployments {
        let e = by_template.entry(&d.template).or_default();
        e.1 += 1;
        if d.state == "stalled" {
            e.0 += 1;
        }
    }
    for (template, (bad, all)) in by_template {
        if bad >= 2 && bad * 2 >= all {
            out.push(ActionItem {
                severity: Severity::Warning,
                text: format!("template {template}: {bad} of its {all} Deployments are Stalled"),
                link: format!("/deployments?template={template}"),
            });
        }
    }
    for d in stalled {
        let since = d
            .stalled_since
            .map(|t| format!(" for {}", span(now - t)))
            .unwrap_or_default();
        out.push(ActionItem {
            severity: Severity::Warning,
            text: format!("Deployment {}/{} is Stalled{since}: {}", d.namespace, d.name, d.message),
            link: format!("/deployments/{}/{}", d.namespace, d.name),
        });
    }
    let critical: Vec<&Finding> = findings.iter().filter(|f| f.severity == Severity::Critical).collect();
    for f in critical {
        out.push(ActionItem {
            severity: Severity::Critical,
            text: format!("{} {}: {}", f.kind, f.subject, f.found),
            link: match f.kind {
                "Terminal" => format!("/terminals/{}", f.subject),
                _ => "#compliance".into(),
            },
        });
    }
    out.sort_by_key(|a| a.severity);
    out
}

/// A duration in words: `under a minute`, `3 min`, `2 h`, `4 d` (pure).
pub fn span(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 60 => "under a minute".into(),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// Delivery figures over time, or why there are none.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// The range: `7d`, `30d` or `90d`.
    pub range: String,
    /// The rows, when Prometheus answered.
    pub rows: Vec<super::delivery::Row>,
    /// Why there are no figures: not configured, or Prometheus' error.
    pub unavailable: Option<String>,
}

/// A duration for a table: `45 s`, `12 min`, `3.5 h`, `2.1 d` (pure).
pub fn duration(seconds: f64) -> String {
    match seconds.max(0.0) {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} d", s / 86_400.0),
    }
}

/// What `?` may ask for.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Query {
    /// Delivery figures over `7d` (the default), `30d` or `90d`.
    #[serde(default)]
    pub range: Option<String>,
    /// `json` or `csv`; none: the page.
    #[serde(default)]
    pub format: Option<String>,
    /// With `csv`: `findings` (the default), `actions`, `delivery`, `usage` or `deployments`.
    #[serde(default)]
    pub table: Option<String>,
}

/// Everything in the viewer's scope.
async fn gather(state: &State, s: &super::cookies::Session, range: &str) -> Result<Insights, super::page::PageError> {
    let admin = state.is_admin(s);
    let deployments_readable = state
        .readable(s, readable::DEPLOYMENTS, &state.live.deployments)
        .await?;
    let terminals_readable = state.readable(s, readable::TERMINALS, &state.live.terminals).await?;
    let deployments: Vec<DeploymentFacts> = {
        let index = state.live.deployments.read().unwrap();
        index
            .rows(None)
            .filter(|r| deployments_readable.has(&r.key().0))
            .map(|r| DeploymentFacts {
                namespace: r.key().0.clone(),
                name: r.key().1.clone(),
                template: r.template.clone(),
                state: r.state,
                ready: r.ready.clone(),
                stalled_since: r.stalled_since,
                message: r.message.clone(),
            })
            .collect()
    };
    let (terminals, mut findings) = {
        let index = state.live.terminals.read().unwrap();
        // Open ones only: an ended Terminal keeps its row until its cleanup is done.
        let visible: Vec<_> = index
            .rows(None)
            .filter(|r| terminals_readable.has(&r.key().0) && r.state != "ended")
            .collect();
        let findings: Vec<Finding> = visible.iter().flat_map(|r| r.findings.clone()).collect();
        (visible.len(), findings)
    };
    for t in state.catalog.all() {
        if t.allows(&s.groups) {
            findings.extend(compliance::template(&t.name, &t.template));
        }
    }
    findings.sort_by(|a, b| (a.severity, a.kind, &a.subject).cmp(&(b.severity, b.kind, &b.subject)));
    // Everyone's sessions for those who may list them (as the admin pages
    // ask the API server), else the viewer's own.
    let all_sessions = admin
        && state
            .may(s, readable::SESSION_CLAIMS, &state.cfg.session.namespace)
            .await;
    let now = k8s_openapi::jiff::Timestamp::now();
    let sessions = state
        .claims()
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .filter(|c| {
            c.status
                .as_ref()
                .is_none_or(|st| st.end_reason.is_none() && st.expires_at.as_ref().is_none_or(|e| e.0 > now))
        })
        .filter(|c| all_sessions || crate::creator::creator_name(&***c) == s.user)
        .count();
    let count = |state: &str| deployments.iter().filter(|d| d.state == state).count();
    let overview = Overview {
        ready: count("ready"),
        progressing: count("progress"),
        stalled: count("stalled"),
        terminals,
        sessions,
        all_sessions,
    };
    let (delivery, usage) = futures::join!(delivery(state, s, range), super::usage::gather(state, s, range));
    let now = now.as_second();
    Ok(Insights {
        delivery,
        usage,
        actions: actions(&deployments, &findings, now),
        overview,
        findings,
        deployments,
    })
}

/// The delivery figures over `range` where the viewer may list Deployments.
async fn delivery(state: &State, s: &super::cookies::Session, range: &str) -> Delivery {
    let answer = |rows, unavailable| Delivery {
        range: range.to_string(),
        rows,
        unavailable,
    };
    let Some((url, http)) = &state.prometheus else {
        return answer(
            vec![],
            Some(
                "Delivery figures over time come from a Prometheus that scrapes the operator: set prometheus.url in the dashboard's configuration (the chart's dashboard.prometheus.url).".into(),
            ),
        );
    };
    // Everywhere for a cluster-wide grant (deleted namespaces' history too),
    // else the namespaces where the API server says the viewer may list them.
    let scope = match state.readable_for(s, readable::DEPLOYMENTS, Default::default()).await {
        Ok(r) if *r == super::readable::Readable::All => super::delivery::Scope::All,
        Ok(_) => super::delivery::Scope::In(state.where_may(s, readable::DEPLOYMENTS).await),
        Err(e) => {
            return answer(
                vec![],
                Some(format!(
                    "The API server could not be asked where you may look: {}",
                    super::state::why(&e)
                )),
            );
        }
    };
    match super::delivery::query(http, url, &scope, range).await {
        Ok(rows) => answer(rows, None),
        Err(e) => answer(vec![], Some(e)),
    }
}

/// `GET /insights[?range=7d|30d|90d][&format=json|csv[&table=…]]`.
async fn insights(state: State, LoggedIn(s): LoggedIn, q: web::Query<Query>) -> Page {
    state.heartbeat(&s);
    let range = q.range.as_deref().unwrap_or("7d");
    if !super::delivery::RANGES.iter().any(|(r, _)| *r == range) {
        return Err(state.refuse(
            Some(&s),
            StatusCode::BAD_REQUEST,
            "Unknown range",
            &format!("There is no range {range:?}: use 7d, 30d or 90d."),
        ));
    }
    let insights = gather(&state, &s, range).await?;
    let refuse = |text: String| Err(state.refuse(Some(&s), StatusCode::BAD_REQUEST, "Unknown export", &text));
    match (q.format.as_deref(), q.table.as_deref()) {
        (None, _) => Ok(state.page(
            "insights.html",
            &s,
            context! {
                i => Serde(&insights),
                generated => k8s_openapi::jiff::Timestamp::now().to_string(),
            },
        )),
        (Some("json"), _) => Ok(HttpResponse::Ok().json(&insights)),
        (Some("csv"), table) => {
            let (name, body) = match table.unwrap_or("findings") {
                "findings" => ("findings", findings_csv(&insights.findings)),
                "actions" => (
                    "actions",
                    csv_table(
                        &["severity", "action", "link"],
                        insights
                            .actions
                            .iter()
                            .map(|a| vec![severity(a.severity), a.text.clone(), a.link.clone()]),
                    ),
                ),
                "delivery" => (
                    "delivery",
                    csv_table(
                        &[
                            "namespace",
                            "template",
                            "ready",
                            "stalled",
                            "per_day",
                            "failure_rate",
                            "lead_time_seconds",
                            "restore_seconds",
                        ],
                        insights.delivery.rows.iter().map(|r| {
                            let opt = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
                            vec![
                                r.namespace.clone(),
                                r.template.clone(),
                                r.ready.to_string(),
                                r.stalled.to_string(),
                                format!("{:.3}", r.per_day),
                                opt(r.failure_rate),
                                opt(r.lead_time),
                                opt(r.restore),
                            ]
                        }),
                    ),
                ),
                "usage" => ("usage", super::usage::csv(&insights.usage)),
                "deployments" => (
                    "deployments",
                    csv_table(
                        &["namespace", "name", "template", "state", "stalled_since", "message"],
                        insights.deployments.iter().map(|d| {
                            vec![
                                d.namespace.clone(),
                                d.name.clone(),
                                d.template.clone(),
                                d.state.to_string(),
                                d.stalled_since.map(|t| t.to_string()).unwrap_or_default(),
                                d.message.clone(),
                            ]
                        }),
                    ),
                ),
                other => {
                    return refuse(format!(
                        "There is no table {other:?} to export: use findings, actions, delivery, usage or deployments."
                    ));
                }
            };
            Ok(HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .insert_header((
                    "content-disposition",
                    format!("attachment; filename=\"insights-{name}.csv\""),
                ))
                .body(body))
        }
        (Some(other), _) => refuse(format!(
            "There is no format {other:?}: use csv or json, or none for the page."
        )),
    }
}

fn severity(s: Severity) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The findings as CSV (pure).
pub fn findings_csv(findings: &[Finding]) -> String {
    csv_table(
        &["kind", "subject", "check", "severity", "found", "fix"],
        findings.iter().map(|f| {
            vec![
                f.kind.to_string(),
                f.subject.clone(),
                f.check.to_string(),
                severity(f.severity),
                f.found.clone(),
                f.fix.clone(),
            ]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(name: &str, template: &str, state: &'static str, since: Option<i64>) -> DeploymentFacts {
        DeploymentFacts {
            namespace: "team-a".into(),
            name: name.into(),
            template: template.into(),
            state,
            ready: String::new(),
            stalled_since: since,
            message: format!("{name} says why"),
        }
    }

    #[test]
    fn action_items_name_stalled_deployments_failing_templates_and_critical_findings() {
        let now = 10_000;
        let ds = [
            deployment("a", "postgresql", "stalled", Some(now - 7200)),
            deployment("b", "postgresql", "stalled", Some(now - 60)),
            deployment("c", "postgresql", "ready", None),
            deployment("d", "webapp", "stalled", Some(now - 120)),
            deployment("e", "webapp", "ready", None),
            deployment("f", "webapp", "progress", None),
        ];
        let critical = Finding {
            kind: "Terminal",
            subject: "team-a/ops".into(),
            check: "privileged-terminal",
            severity: Severity::Critical,
            found: "its pod runs privileged".into(),
            fix: "end it".into(),
        };
        let notice = Finding {
            severity: Severity::Notice,
            ..critical.clone()
        };
        let items = actions(&ds, &[critical, notice], now);
        let texts: Vec<&str> = items.iter().map(|a| a.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "1 Deployment Stalled for more than an hour",
                "Terminal team-a/ops: its pod runs privileged",
                "template postgresql: 2 of its 3 Deployments are Stalled",
                "Deployment team-a/a is Stalled for 2 h: a says why",
                "Deployment team-a/b is Stalled for 1 min: b says why",
                "Deployment team-a/d is Stalled for 2 min: d says why",
            ]
        );
        assert_eq!(items[1].link, "/terminals/team-a/ops");
        assert_eq!(items[3].link, "/deployments/team-a/a");
        assert!(actions(&ds[2..3], &[], now).is_empty(), "nothing to do");
    }

    #[test]
    fn findings_export_as_csv_with_quoting() {
        let f = Finding {
            kind: "Template",
            subject: "webapp".into(),
            check: "non-root",
            severity: Severity::Warning,
            found: "Deployment x, container app may run as root".into(),
            fix: "set \"runAsNonRoot\"".into(),
        };
        let csv = findings_csv(&[f]);
        assert_eq!(
            csv.lines().collect::<Vec<_>>(),
            [
                "kind,subject,check,severity,found,fix",
                "Template,webapp,non-root,warning,\"Deployment x, container app may run as root\",\"set \"\"runAsNonRoot\"\"\"",
            ]
        );
        assert_eq!(span(59), "under a minute");
        assert_eq!(
            [0.4, 119.0, 600.0, 12_600.0, 259_200.0].map(duration),
            ["0 s", "119 s", "10 min", "3.5 h", "3.0 d"]
        );
        assert_eq!(span(3 * 86_400 + 5), "3 d");
    }
}
