//! Terminal pages: the shortcuts (verified from the configuration, unverified
//! from labelled ConfigMaps the user can read), the user's Terminals (rows
//! kept from the watch, paged), create, the terminal page, extend (a heartbeat) and delete.
//! Every read of a user's object and every write is made as the user.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
};
use minijinja::{context, value::Serde};

use super::{
    clusters,
    config::ClusterConfig,
    cookies::Session,
    csrf::SignedForm,
    logged_in::LoggedIn,
    page::Page,
    readable, rows,
    rows::Row,
    shortcuts::{self, Offered},
    state::{State, keepalive, redirect, why},
};
use crate::api::Terminal;

/// The Terminals list and form, and one Terminal's page and actions.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/terminals", web::get().to(list))
        .route("/terminals", web::post().to(create))
        .route("/terminals/several", web::post().to(create_several))
        .route("/terminals/{ns}/{name}", web::get().to(page))
        .route("/terminals/{ns}/{name}/extend", web::post().to(extend))
        .route("/terminals/{ns}/{name}/delete", web::post().to(delete));
}

/// The shortcuts the user is offered, and the problems found in shortcut
/// ConfigMaps (shown, so whoever wrote them can fix them).
async fn offered(state: &State, s: &Session, client: &Client) -> Offers {
    let mut list = shortcuts::from_config(&state.cfg.terminals.shortcuts);
    let mut problems = vec![];
    let mut namespaces: BTreeSet<String> = state.cfg.terminals.shortcut_namespaces.iter().cloned().collect();
    namespaces.extend(state.live.terminals.read().unwrap().namespaces_of(&s.user));
    namespaces.extend(state.live.deployments.read().unwrap().namespaces_of(&s.user));
    let lists = futures::future::join_all(namespaces.iter().map(|ns| async move {
        Api::<ConfigMap>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(shortcuts::LABEL))
            .await
    }))
    .await;
    // Namespaces the user may not read are skipped: RBAC decides what is offered.
    for cm in lists.into_iter().flatten().flat_map(|l| l.items) {
        match shortcuts::from_config_map(&cm) {
            Ok(found) => list.extend(found),
            Err(e) => problems.push(e),
        }
    }
    Offers {
        shortcuts: list,
        problems,
    }
}

/// What a user is offered: the shortcuts, and why some ConfigMaps offer none.
pub struct Offers {
    /// The shortcuts, from the configuration and the ConfigMaps the user may read.
    shortcuts: Vec<Offered>,
    /// Why a labelled ConfigMap's shortcuts could not be read.
    problems: Vec<String>,
}

/// Which page of the list.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListPage {
    /// The page (from 1) of [`PAGE_SIZE`](super::rows::PAGE_SIZE) rows.
    #[serde(default)]
    pub page: Option<usize>,
    /// The namespace the forms start with (a link from a Deployment's page).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Only Terminals whose namespace or name contains this (any case).
    #[serde(default)]
    pub q: Option<String>,
}

/// Whether `(namespace, name)` contains the search `q` (any case; empty: all).
pub fn matches(q: &str, (namespace, name): (&str, &str)) -> bool {
    let q = q.trim().to_lowercase();
    q.is_empty() || namespace.to_lowercase().contains(&q) || name.to_lowercase().contains(&q)
}

/// The Terminal each shortcut would create in `namespace` (its own if it
/// names one), as YAML, by shortcut id: what the user may read before
/// running it. The name's suffix is chosen at creation.
pub fn definitions(shortcuts: &[Offered], namespace: Option<&str>) -> BTreeMap<String, String> {
    shortcuts
        .iter()
        .map(|o| {
            let sc = &o.shortcut;
            let ns = sc.namespace.as_deref().or(namespace).unwrap_or("NAMESPACE");
            let t = sc.terminal(&format!("{}-XXXXXX", sc.name), ns);
            (o.id.clone(), super::kubectl::yaml_of(&t))
        })
        .collect()
}

/// The shortcuts a user was offered lately, by user and groups: the list page
/// reuses them for [`SHORTCUTS_SEEN_FOR`]; creating a Terminal reads afresh.
pub type ShortcutsSeen = super::recent::Recent<(String, Vec<String>), Arc<Offers>>;

/// How long the list page reuses the shortcuts it read for a user.
pub const SHORTCUTS_SEEN_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// `GET /terminals`: the shortcuts (read as the user, reused for a few
/// seconds) and a page of the user's Terminals (admins: everyone's) in the
/// namespaces where the user may list them, newest first, from the rows the watch keeps.
pub async fn list(state: State, LoggedIn(s): LoggedIn, q: web::Query<ListPage>) -> Page {
    let client = state.as_user(&s).map_err(|e| state.unavailable(&s, &e))?;
    let (key, now) = ((s.user.clone(), s.groups.clone()), std::time::Instant::now());
    let seen = match state.shortcuts_seen.get(&key, now) {
        Some(seen) => seen,
        None => {
            let seen = Arc::new(offered(&state, &s, &client).await);
            state.shortcuts_seen.put(key, seen.clone(), now);
            seen
        }
    };
    let (shortcuts, problems) = (&seen.shortcuts, &seen.problems);
    let admin = state.is_admin(&s);
    let creator = (!admin).then_some(s.user.as_str());
    // Only where the user may list Terminals, as for kubectl.
    let readable = state.readable(&s, readable::TERMINALS, &state.live.terminals).await?;
    let namespaces = state.where_may(&s, readable::CREATE_TERMINALS).await;
    // A namespace asked for is used only where the user may open terminals.
    let asked = q.namespace.as_deref().filter(|n| !n.is_empty());
    let chosen = asked
        .filter(|n| namespaces.iter().any(|m| m == n))
        .or_else(|| (namespaces.len() == 1).then(|| namespaces[0].as_str()));
    let not_here = asked.filter(|n| Some(*n) != chosen);
    let clusters = clusters_offered(&state, &s, &client, &namespaces, now).await;
    let definitions = definitions(shortcuts, chosen);
    let page = {
        let index = state.live.terminals.read().unwrap();
        let search = q.q.clone().unwrap_or_default();
        let visible = || {
            index
                .rows(creator)
                .filter(|r| readable.has(&r.key().0))
                .filter(|r| matches(&search, (&r.key().0, &r.key().1)))
        };
        rows::page_of(visible, q.page).map(|r| rows::html(&r, admin))
    };
    let ctx = context! {
        shortcuts => Serde(shortcuts), problems => Serde(problems), offered => Serde(&namespaces),
        chosen, not_here, definitions, q => q.q.clone().unwrap_or_default(), clusters => Serde(&*clusters),
        rows => page.rows, total => page.total, page => page.page, pages => page.pages, first => page.first,
    };
    Ok(state.page("terminals.html", &s, ctx))
}

/// `POST /terminals`: a Terminal from a shortcut, created as the user.
pub async fn create(state: State, SignedForm(s, form): SignedForm<BTreeMap<String, String>>) -> Page {
    let client = state.as_user(&s).map_err(|e| state.unavailable(&s, &e))?;
    let id = form.get("shortcut").cloned().unwrap_or_default();
    let offered = offered(&state, &s, &client).await.shortcuts;
    let Some(chosen) = offered.into_iter().find(|o| o.id == id) else {
        return Err(state.refuse(
            Some(&s),
            StatusCode::NOT_FOUND,
            "No such shortcut",
            &format!("There is no shortcut {id:?} for you; pick one on the Terminals page."),
        ));
    };
    if chosen.unverified && !form.contains_key("trust") {
        return Err(state.refuse(
            Some(&s),
            StatusCode::BAD_REQUEST,
            "Not started",
            &format!(
                "The shortcut {:?} comes from a ConfigMap that anyone allowed to edit ConfigMaps in its namespace may have written; it runs image {} with your rights. Tick \u{201c}I trust this shortcut\u{201d} to use it.",
                chosen.shortcut.title, chosen.shortcut.image
            ),
        ));
    }
    let namespace = chosen.shortcut.namespace.clone().or_else(|| {
        form.get("namespace")
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
    });
    let Some(namespace) = namespace else {
        return Err(state.refuse(
            Some(&s),
            StatusCode::BAD_REQUEST,
            "Not started",
            "Name the namespace the terminal should work in.",
        ));
    };
    let placing = cluster_of(
        &state,
        form.get("cluster").map(String::as_str),
        form.get("runsIn").map(String::as_str),
    )
    .map_err(|m| state.refuse(Some(&s), StatusCode::BAD_REQUEST, "Not started", &m))?;
    if let Some((c, _)) = placing {
        offered_in(&client, c, &namespace)
            .await
            .map_err(|m| state.refuse(Some(&s), StatusCode::BAD_REQUEST, "Not started", &m))?;
    }
    let name = format!("{}-{}", chosen.shortcut.name, hex::encode(rand::random::<[u8; 3]>()));
    let mut t = chosen.shortcut.terminal(&name, &namespace);
    if let Some((c, runs)) = placing {
        clusters::place(&mut t, c, runs);
    }
    Api::<Terminal>::namespaced(client, &namespace)
        .create(&PostParams::default(), &t)
        .await
        .map_err(|e| {
            state.refuse(
                Some(&s),
                StatusCode::FORBIDDEN,
                "Not started",
                &format!("The API server refused the terminal: {}", why(&e)),
            )
        })?;
    Ok(redirect(&format!("/terminals/{namespace}/{name}")))
}

/// The form field that picks a shortcut for [`create_several`].
const PICK: &str = "pick:";

/// `POST /terminals/several`: one Terminal of each picked shortcut
/// (`pick:<id>`, in the order picked) in one namespace, created as the
/// user — the verified shortcuts only, each in its own namespace if it
/// names one. All or nothing: when the API server refuses one, those
/// already made are deleted again and the page says which was refused.
pub async fn create_several(state: State, SignedForm(s, fields): SignedForm<Vec<(String, String)>>) -> Page {
    let client = state.as_user(&s).map_err(|e| state.unavailable(&s, &e))?;
    let refuse = |code, text: String| Err(state.refuse(Some(&s), code, "Not started", &text));
    let picked: Vec<&str> = fields.iter().filter_map(|(k, _)| k.strip_prefix(PICK)).collect();
    let form: BTreeMap<&str, &str> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if picked.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "Pick at least one shortcut.".into());
    }
    let offered = offered(&state, &s, &client).await.shortcuts;
    let mut chosen = vec![];
    for id in &picked {
        if chosen.iter().any(|c: &Offered| c.id == *id) {
            continue; // picked twice: opened once
        }
        match offered.iter().find(|o| o.id == *id && !o.unverified) {
            Some(o) => chosen.push(o.clone()),
            None => {
                return refuse(
                    StatusCode::NOT_FOUND,
                    format!(
                        "There is no verified shortcut {id:?} for you; unverified ones open one at a time, each trusted."
                    ),
                );
            }
        }
    }
    let typed = form
        .get("namespace")
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let placing = match cluster_of(&state, form.get("cluster").copied(), form.get("runsIn").copied()) {
        Ok(c) => c,
        Err(m) => return refuse(StatusCode::BAD_REQUEST, m),
    };
    let mut made: Vec<(String, String)> = vec![];
    for o in &chosen {
        let Some(namespace) = o.shortcut.namespace.clone().or_else(|| typed.clone()) else {
            undo(&client, &made).await;
            return refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "Name the namespace the terminals should work in ({} needs one).",
                    o.shortcut.title
                ),
            );
        };
        if let Some((c, _)) = placing
            && let Err(m) = offered_in(&client, c, &namespace).await
        {
            undo(&client, &made).await;
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("{m} None of the picked terminals was kept."),
            );
        }
        let name = format!("{}-{}", o.shortcut.name, hex::encode(rand::random::<[u8; 3]>()));
        let mut t = o.shortcut.terminal(&name, &namespace);
        if let Some((c, runs)) = placing {
            clusters::place(&mut t, c, runs);
        }
        if let Err(e) = Api::<Terminal>::namespaced(client.clone(), &namespace)
            .create(&PostParams::default(), &t)
            .await
        {
            undo(&client, &made).await;
            return refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "The API server refused {} in {namespace}: {}. None of the picked terminals was kept.",
                    o.shortcut.title,
                    why(&e)
                ),
            );
        }
        made.push((namespace, name));
    }
    Ok(redirect("/terminals"))
}

/// The cluster a form picked (`cluster`: none or empty for this one, else
/// one the configuration names) and where the terminal runs (`runsIn`).
fn cluster_of<'a>(
    state: &'a State,
    picked: Option<&str>,
    runs_in: Option<&str>,
) -> Result<Option<(&'a ClusterConfig, clusters::RunsIn)>, String> {
    let runs = clusters::RunsIn::of(runs_in)?;
    match picked.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(name) => state
            .clusters
            .named(name)
            .map(|k| Some((&k.config, runs)))
            .ok_or_else(|| {
                format!("There is no cluster {name:?} here; pick one the Terminals page offers, or this cluster.")
            }),
    }
}

/// Whether cluster `c` is offered in `namespace` now, asked as the user:
/// its Secret is there and theirs to read; else what to do.
async fn offered_in(client: &Client, c: &ClusterConfig, namespace: &str) -> Result<(), String> {
    match clusters::secret_readable(client, namespace, &c.secret_name).await {
        true => Ok(()),
        false => Err(format!(
            "{} is not offered in namespace {namespace}: its Secret {} is not there, or you may not read it. Pick a namespace where the Terminals page offers it.",
            c.title, c.secret_name
        )),
    }
}

/// The other clusters offered to the user among `namespaces` (where they
/// may open terminals), asked as the user and reused for a few seconds.
async fn clusters_offered(
    state: &State,
    s: &Session,
    client: &Client,
    namespaces: &[String],
    now: std::time::Instant,
) -> Arc<Vec<clusters::Offered>> {
    if state.clusters.is_empty() {
        return Arc::default();
    }
    let key = (s.user.clone(), s.groups.clone());
    if let Some(seen) = state.clusters_seen.get(&key, now) {
        return seen;
    }
    let seen = Arc::new(state.clusters.offered(client, namespaces).await);
    state.clusters_seen.put(key, seen.clone(), now);
    seen
}

/// The clusters a user was offered lately, by user and groups.
pub type ClustersSeen = super::recent::Recent<(String, Vec<String>), Arc<Vec<clusters::Offered>>>;

/// Deletes, as the user, the Terminals a refused [`create_several`] made.
async fn undo(client: &Client, made: &[(String, String)]) {
    for (ns, name) in made {
        if let Err(e) = Api::<Terminal>::namespaced(client.clone(), ns)
            .delete(name, &Default::default())
            .await
        {
            tracing::warn!(terminal = %format!("{ns}/{name}"), error = %e, "a terminal of a refused group was not deleted");
        }
    }
}

/// `GET /terminals/{ns}/{name}`: the terminal page.
pub async fn page(state: State, LoggedIn(s): LoggedIn, path: web::Path<(String, String)>) -> Page {
    let (ns, name) = path.into_inner();
    let missing = format!("There is no terminal {ns}/{name}; it may have ended.");
    let t: Terminal = state.get_as_user(&s, &ns, &name, &missing).await?;
    let st = t.status.clone().unwrap_or_default();
    let (max_end, capped) = super::format::max_end(
        &t.metadata,
        t.spec.idle_timeout.as_deref(),
        t.spec.max_lifetime.as_deref(),
        st.expires_at.as_ref().map(|e| e.0),
    );
    let ended = st.end_reason.is_some() || t.metadata.deletion_timestamp.is_some();
    let ctx = context! {
        max_end, capped,
        t => Serde(&t),
        title => rows::kinds::title_of(&t),
        ready => super::live::ready_of(&st.conditions),
        state => super::live::state_of(&st.conditions),
        expires => st.expires_at.map(|x| x.0.to_string()).unwrap_or_default(),
        cluster => state.clusters.title_of(t.spec.host.cluster.as_ref()),
        reaches => (t.spec.target.cluster != t.spec.host.cluster)
            .then(|| state.clusters.title_of(t.spec.target.cluster.as_ref()))
            .flatten(),
        ended,
        kubectl => Serde(super::kubectl::snippets("terminals.portico.dev", &ns, &name, !ended, true)),
        yaml => super::kubectl::yaml_of(&t),
    };
    let mut r = state.page("terminal.html", &s, ctx);
    // xterm.js styles its rows with a <style> element; scripts stay 'self' only.
    r.headers_mut().insert(
        actix_web::http::header::CONTENT_SECURITY_POLICY,
        state.csp.terminal.clone(),
    );
    Ok(r)
}

/// `POST /terminals/{ns}/{name}/extend`: a heartbeat as the user. Forms get
/// the page again; the page's script (`Accept: application/json`) gets 204.
pub async fn extend(
    state: State,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    SignedForm(s, _): SignedForm<BTreeMap<String, String>>,
) -> Page {
    let (ns, name) = path.into_inner();
    let api = Api::<Terminal>::namespaced(state.as_user(&s).map_err(|e| state.unavailable(&s, &e))?, &ns);
    keepalive(&api, &name)
        .await
        .map_err(|e| state.refuse(Some(&s), StatusCode::FORBIDDEN, "Not extended", &why(&e)))?;
    let script = req
        .headers()
        .get("accept")
        .is_some_and(|a| a.to_str().unwrap_or_default().contains("application/json"));
    Ok(if script {
        HttpResponse::NoContent().finish()
    } else {
        redirect(&format!("/terminals/{ns}/{name}"))
    })
}

/// `POST /terminals/{ns}/{name}/delete`: deletes the Terminal as the user.
pub async fn delete(
    state: State,
    path: web::Path<(String, String)>,
    SignedForm(s, _): SignedForm<BTreeMap<String, String>>,
) -> Page {
    let (ns, name) = path.into_inner();
    state.delete_as_user::<Terminal>(&s, &ns, &name).await?;
    Ok(redirect("/terminals"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_matches_namespace_or_name_in_any_case() {
        assert!(matches(" Shell ", ("team-a", "shell-1a2b3c")));
        assert!(matches("TEAM", ("team-a", "x")));
        assert!(!matches("db", ("team-a", "shell-1a2b3c")));
        assert!(matches("", ("team-a", "x")));
    }
}
