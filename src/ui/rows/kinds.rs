//! The row of each list (pure): what a Deployment or a Terminal shows in its
//! list, rendered from its one row template (`deployment_row.html`,
//! `terminal_row.html`) once for a user's view and once for an admin's
//! (with the creator column).

use std::cmp::Reverse;

use kube::ResourceExt;
use minijinja::{Environment, context, value::Serde};
use serde::Serialize;

use super::{ObjectKey, Row};
use crate::{
    api::{
        Deployment, Terminal,
        deployment::{Health, Operation, OperationResult},
    },
    controller::deployment::workload,
};

/// A row template failed to render.
#[derive(Debug, thiserror::Error)]
#[error("row of {kind} {namespace}/{name}: {source}")]
pub struct RowError {
    kind: &'static str,
    namespace: String,
    name: String,
    source: minijinja::Error,
}

/// A row rendered for a user (`[0]`) and for an admin (`[1]`, with the creator).
fn render<T: Serialize>(
    env: &Environment,
    template: &str,
    kind: &'static str,
    cells: &T,
    key: &ObjectKey,
) -> Result<[String; 2], RowError> {
    let one = |admin: bool| {
        env.get_template(template)
            .and_then(|t| t.render(context! { r => Serde(cells), admin }))
            .map_err(|source| RowError {
                kind,
                namespace: key.0.clone(),
                name: key.1.clone(),
                source,
            })
    };
    Ok([one(false)?, one(true)?])
}

fn key_of<K: kube::Resource>(o: &K) -> ObjectKey {
    (o.namespace().unwrap_or_default(), o.name_any())
}

/// What a Deployment's row shows.
#[derive(Debug, Serialize)]
struct DeploymentCells<'a> {
    namespace: &'a str,
    name: &'a str,
    template: &'a str,
    ready: &'a str,
    state: &'a str,
    message: &'a str,
    creator: &'a str,
}

/// A Deployment in the deployments list.
#[derive(Debug)]
pub struct DeploymentRow {
    key: ObjectKey,
    creator: String,
    /// Creation time (ns since the epoch), if known.
    pub created: Option<i128>,
    /// Its template's name.
    pub template: String,
    /// Its Ready condition's status, or empty.
    pub ready: String,
    /// `ready`, `stalled` or `progress` ([`state_of`](super::super::live::state_of)).
    pub state: &'static str,
    /// While Stalled: since when (seconds since the epoch).
    pub stalled_since: Option<i64>,
    /// While Stalled: why (its condition's reason).
    pub stalled_reason: String,
    /// Its objects that failed: `Kind name: why`.
    pub failed: Vec<String>,
    /// Why its first failed object failed ([`workload::cause`]), or empty.
    pub cause: &'static str,
    /// The creates and updates its status records: when (seconds since
    /// the epoch) and whether they succeeded.
    pub changes: Vec<(i64, bool)>,
    /// While Ready: how long after its latest create or update it turned Ready (seconds).
    pub lead_time: Option<i64>,
    /// Its status message.
    pub message: String,
    html: [String; 2],
}

impl DeploymentRow {
    /// The row of `d`.
    pub fn of(env: &Environment, d: &Deployment) -> Result<DeploymentRow, RowError> {
        let key = key_of(d);
        let creator = crate::creator::creator_name(d);
        let st = d.status.as_ref();
        let conditions = st.map(|s| s.conditions.as_slice()).unwrap_or_default();
        let ready = super::super::live::ready_of(conditions);
        let message = st.and_then(|s| s.message.as_deref()).unwrap_or_default();
        let cells = DeploymentCells {
            namespace: &key.0,
            name: &key.1,
            template: &d.spec.template.name,
            ready: &ready,
            state: super::super::live::state_of(conditions),
            message,
            creator: &creator,
        };
        let html = render(env, "deployment_row.html", "deployment", &cells, &key)?;
        let stalled = conditions.iter().find(|c| c.type_ == "Stalled" && c.status == "True");
        let history = st.map(|s| s.history.as_slice()).unwrap_or_default();
        let changes: Vec<(i64, bool)> = history
            .iter()
            .filter(|h| matches!(h.operation, Operation::Create | Operation::Update))
            .map(|h| (h.time.0.as_second(), h.result == OperationResult::Succeeded))
            .collect();
        let ready_at = conditions
            .iter()
            .find(|c| c.type_ == "Ready" && c.status == "True")
            .map(|c| c.last_transition_time.0.as_second());
        let resources = st.map(|s| s.resources.as_slice()).unwrap_or_default();
        Ok(DeploymentRow {
            cause: resources
                .iter()
                .find(|r| r.health == Health::Failed)
                .map_or("", |r| workload::cause(r.message.as_deref().unwrap_or_default())),
            stalled_reason: stalled.map(|c| c.reason.clone()).unwrap_or_default(),
            failed: resources
                .iter()
                .filter(|r| r.health == Health::Failed)
                .map(|r| format!("{} {}: {}", r.kind, r.name, r.message.as_deref().unwrap_or("failed")))
                .collect(),
            lead_time: match (ready_at, changes.iter().rev().find(|c| c.1)) {
                (Some(ready), Some((at, _))) if ready >= *at => Some(ready - at),
                _ => None,
            },
            changes,
            created: d.creation_timestamp().map(|c| c.0.as_nanosecond()),
            template: d.spec.template.name.clone(),
            state: super::super::live::state_of(conditions),
            stalled_since: stalled.map(|c| c.last_transition_time.0.as_second()),
            message: message.to_string(),
            key,
            creator,
            ready,
            html,
        })
    }
}

impl Row for DeploymentRow {
    /// By namespace, then name.
    type Order = ObjectKey;
    fn key(&self) -> &ObjectKey {
        &self.key
    }
    fn order(&self) -> ObjectKey {
        self.key.clone()
    }
    fn creator(&self) -> &str {
        &self.creator
    }
    fn facet(&self) -> Option<&str> {
        Some(&self.template)
    }
    fn html(&self, admin: bool) -> &str {
        &self.html[usize::from(admin)]
    }
}

/// What a Terminal's row shows.
#[derive(Debug, Serialize)]
struct TerminalCells<'a> {
    namespace: &'a str,
    name: &'a str,
    title: &'a str,
    ready: &'a str,
    state: &'a str,
    message: &'a str,
    expires: &'a str,
    creator: &'a str,
    /// The Secret naming the cluster its pod runs in, else the one its
    /// kubeconfig reaches; none: this cluster.
    cluster: Option<&'a str>,
}

/// What a Terminal is called on the pages: its shortcut's title, or its image.
pub fn title_of(t: &Terminal) -> String {
    t.annotations()
        .get(crate::api::keys::SHORTCUT)
        .cloned()
        .unwrap_or_else(|| t.spec.host.pod.image.clone())
}

/// A Terminal in the terminals list.
#[derive(Debug)]
pub struct TerminalRow {
    key: ObjectKey,
    /// Creation time (ns since the epoch), if known.
    pub created: Option<i128>,
    /// Its last heartbeat (RFC 3339), if any.
    pub heartbeat: Option<String>,
    creator: String,
    /// What the compliance checks find in it.
    pub findings: Vec<crate::compliance::Finding>,
    /// `ready`, `progress`, `stalled` or `ended` ([`state_of`](super::super::live::state_of)).
    pub state: &'static str,
    html: [String; 2],
}

impl TerminalRow {
    /// The row of `t`.
    pub fn of(env: &Environment, t: &Terminal) -> Result<TerminalRow, RowError> {
        let key = key_of(t);
        let creator = crate::creator::creator_name(t);
        let st = t.status.as_ref();
        let conditions = st.map(|s| s.conditions.as_slice()).unwrap_or_default();
        let ready = super::super::live::ready_of(conditions);
        let expires = st
            .and_then(|s| s.expires_at.as_ref())
            .map(|x| x.0.to_string())
            .unwrap_or_default();
        let cells = TerminalCells {
            namespace: &key.0,
            name: &key.1,
            title: &title_of(t),
            ready: &ready,
            state: super::super::live::state_of(conditions),
            message: st.and_then(|s| s.message.as_deref()).unwrap_or_default(),
            expires: &expires,
            creator: &creator,
            cluster: (t.spec.host.cluster.as_ref())
                .or(t.spec.target.cluster.as_ref())
                .map(|c| c.kubeconfig_secret_ref.name.as_str()),
        };
        let html = render(env, "terminal_row.html", "terminal", &cells, &key)?;
        Ok(TerminalRow {
            created: t.creation_timestamp().map(|c| c.0.as_nanosecond()),
            heartbeat: t.annotations().get(crate::api::keys::LAST_HEARTBEAT_AT).cloned(),
            findings: crate::compliance::terminal(t),
            state: match t.metadata.deletion_timestamp {
                Some(_) => "ended",
                None => super::super::live::state_of(conditions),
            },
            key,
            creator,
            html,
        })
    }
}

impl Row for TerminalRow {
    /// Newest first (no creation time: last), then namespace and name.
    type Order = (Reverse<Option<i128>>, ObjectKey);
    fn key(&self) -> &ObjectKey {
        &self.key
    }
    fn order(&self) -> Self::Order {
        (Reverse(self.created), self.key.clone())
    }
    fn creator(&self) -> &str {
        &self.creator
    }
    fn html(&self, admin: bool) -> &str {
        &self.html[usize::from(admin)]
    }
}
