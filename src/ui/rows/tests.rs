//! The rows index, paging and the row templates.

use std::sync::Arc;

use minijinja::context;

use super::{
    Index, PAGE_SIZE, Row, html,
    kinds::{DeploymentRow, TerminalRow},
    page_of,
};
use crate::api::{Deployment, Terminal};

fn env() -> minijinja::Environment<'static> {
    let cfg = crate::ui::config::UiConfig::from_yaml(
        "publicUrl: http://x\ndevUsers: []\nsession: {profile: p, namespace: n}\n",
    )
    .unwrap();
    crate::ui::state::pages(&cfg)
}

fn deployment(ns: &str, name: &str, creator: &str, template: &str, ready: Option<&str>) -> Deployment {
    let conditions: Vec<serde_json::Value> = ready
        .map(|r| serde_json::json!({"type": "Ready", "status": r, "reason": "R", "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"}))
        .into_iter()
        .collect();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "annotations": {
            "portico.dev/created-by": serde_json::json!({"user": creator, "groups": []}).to_string()}},
        "spec": {"template": {"name": template}},
        "status": {"conditions": conditions, "message": "<b>all good</b>"},
    }))
    .unwrap()
}

fn row(ns: &str, name: &str, creator: &str, template: &str) -> DeploymentRow {
    DeploymentRow::of(&env(), &deployment(ns, name, creator, template, None)).unwrap()
}

fn names<R: Row>(rows: impl Iterator<Item = Arc<R>>) -> Vec<String> {
    rows.map(|r| format!("{}/{}", r.key().0, r.key().1)).collect()
}

#[test]
fn a_deployment_row_is_escaped_and_shows_the_creator_only_to_admins() {
    let d = deployment("team-a", "shop", "alice", "webapp", Some("True"));
    let r = DeploymentRow::of(&env(), &d).unwrap();
    assert_eq!(
        (r.creator(), r.template.as_str(), r.ready.as_str()),
        ("alice", "webapp", "True")
    );
    let user = r.html(false);
    assert!(user.starts_with("<tr data-live=\"team-a/shop\">"), "{user}");
    assert!(
        user.contains("<td data-field=\"ready\" data-state=\"ready\">True</td>"),
        "{user}"
    );
    assert!(user.contains("&lt;b&gt;all good") && !user.contains("<b>"), "{user}");
    assert!(!user.contains("alice") && user.ends_with("</tr>"), "{user}");
    assert!(r.html(true).ends_with("<td>alice</td></tr>"), "{}", r.html(true));
}

#[test]
fn terminal_rows_come_newest_first_with_their_shortcut_and_end() {
    let t = |name: &str, created: &str| -> Terminal {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "portico.dev/v1alpha1", "kind": "Terminal",
            "metadata": {"name": name, "namespace": "team-a", "creationTimestamp": created,
                "annotations": {"portico.dev/shortcut": "Team shell",
                    "portico.dev/created-by": "{\"user\":\"alice\",\"groups\":[]}"}},
            "spec": {"host": {"namespace": "team-a", "pod": {"image": "alpine"}}, "target": {"namespace": "team-a"}},
            "status": {"expiresAt": "2030-01-01T00:00:00Z"},
        }))
        .unwrap()
    };
    let env = env();
    let index = Index::of([
        TerminalRow::of(&env, &t("old", "2025-01-01T00:00:00Z")).unwrap(),
        TerminalRow::of(&env, &t("new", "2025-02-01T00:00:00Z")).unwrap(),
    ]);
    assert_eq!(names(index.rows(Some("alice")).cloned()), ["team-a/new", "team-a/old"]);
    let html = index.rows(None).next().unwrap().html(false).to_string();
    assert!(html.contains("<td>Team shell</td>"), "{html}");
    assert!(html.contains("datetime=\"2030-01-01T00:00:00Z\""), "{html}");
}

#[test]
fn the_index_follows_upserts_and_deletes_by_creator_namespace_and_template() {
    let mut index = Index::of([
        row("team-b", "z", "bob", "webapp"),
        row("team-a", "b", "alice", "webapp"),
        row("team-a", "a", "alice", "postgresql"),
    ]);
    assert_eq!(names(index.rows(None).cloned()), ["team-a/a", "team-a/b", "team-b/z"]);
    assert_eq!(names(index.rows(Some("alice")).cloned()), ["team-a/a", "team-a/b"]);
    assert_eq!(names(index.in_namespace("team-b").cloned()), ["team-b/z"]);
    assert_eq!(index.creators().collect::<Vec<_>>(), ["alice", "bob"]);
    assert_eq!(index.facets().collect::<Vec<_>>(), ["postgresql", "webapp"]);
    assert_eq!(index.namespaces_of("alice").into_iter().collect::<Vec<_>>(), ["team-a"]);

    // A change of the same object replaces its row everywhere.
    index.upsert(row("team-a", "a", "alice", "webapp"));
    assert_eq!(index.len(), 3);
    assert_eq!(index.facets().collect::<Vec<_>>(), ["webapp"]);
    // Deleted: gone from every view; the last of a creator takes the creator with it.
    index.remove(&("team-b".into(), "z".into()));
    index.remove(&("team-b".into(), "never-there".into()));
    assert_eq!(index.creators().collect::<Vec<_>>(), ["alice"]);
    assert!(index.rows(Some("bob")).next().is_none() && index.in_namespace("team-b").next().is_none());
    assert_eq!(names(index.rows(None).cloned()), ["team-a/a", "team-a/b"]);
}

#[test]
fn pages_cover_every_row_once_and_out_of_range_pages_clamp() {
    let rows: Vec<usize> = (0..450).collect();
    let p1 = page_of(|| rows.iter().copied(), None);
    assert_eq!(
        (p1.rows.len(), p1.page, p1.pages, p1.total, p1.first),
        (200, 1, 3, 450, 1)
    );
    let p3 = page_of(|| rows.iter().copied(), Some(3));
    assert_eq!((p3.rows.len(), p3.page, p3.rows[0], p3.first), (50, 3, 400, 401));
    assert_eq!(page_of(|| rows.iter().copied(), Some(9)), p3);
    assert_eq!(page_of(|| rows.iter().copied(), Some(0)), p1);
    let empty = page_of(std::iter::empty::<usize>, Some(2));
    assert_eq!((empty.rows.len(), empty.page, empty.pages, empty.total), (0, 1, 1, 0));
    let all: Vec<usize> = (1..=3)
        .flat_map(|p| page_of(|| rows.iter().copied(), Some(p)).rows)
        .collect();
    assert_eq!(all, rows);
    assert_eq!(PAGE_SIZE, 200);
}

#[test]
fn a_list_page_writes_its_rows_as_rendered() {
    let index = Index::of((0..250).map(|i| row("team-a", &format!("d-{i:03}"), "alice", "webapp")));
    let page = page_of(|| index.rows(Some("alice")), Some(2)).map(|r| html(&r, false));
    let ctx = context! {
        session => context! { user => "alice" }, csrf => "t", admin => false,
        rows => page.rows, filter => context! {}, users => Vec::<String>::new(), templates => Vec::<String>::new(),
        total => page.total, page => page.page, pages => page.pages, first => page.first,
    };
    let out = env().get_template("deployments.html").unwrap().render(ctx).unwrap();
    assert_eq!(out.matches("<tr data-live=").count(), 50);
    assert!(
        out.contains("<tr data-live=\"team-a/d-200\">") && !out.contains("d-199"),
        "{out}"
    );
    assert!(out.contains("Rows 201–250 of 250"), "{out}");
}
