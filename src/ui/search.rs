//! One search over every kind (`/search?q=`): the catalog templates the
//! user's groups may use, and the Deployments and Terminals in namespaces
//! where the user may list them (as the API server answers, as the lists
//! do), each matched by namespace, name or title in any case; a few of each,
//! with a link to the list filtered by the same words.

use actix_web::{http::StatusCode, web};
use minijinja::{context, value::Serde};
use serde::Serialize;

use super::{logged_in::LoggedIn, page::Page, readable, rows::Row, state::State, terminals::matches};

/// Hits shown per kind.
pub const SHOWN: usize = 20;

/// One hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    /// What is shown: `namespace/name`, or a template's title.
    pub label: String,
    /// Its page.
    pub link: String,
    /// A second line (a template's name and description).
    pub detail: String,
}

/// The hits of one kind: at most [`SHOWN`], and how many matched in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kind {
    pub hits: Vec<Hit>,
    pub total: usize,
}

impl Kind {
    /// The first [`SHOWN`] of `hits`, counting them all (pure).
    pub fn of(hits: impl Iterator<Item = Hit>) -> Kind {
        let mut shown = Vec::new();
        let mut total = 0;
        for h in hits {
            total += 1;
            if shown.len() < SHOWN {
                shown.push(h);
            }
        }
        Kind { hits: shown, total }
    }
}

/// Whether a template matches `q` by its name, title or description (any case).
pub fn template_matches(q: &str, name: &str, title: &str, description: &str) -> bool {
    let q = q.trim().to_lowercase();
    !q.is_empty() && [name, title, description].iter().any(|t| t.to_lowercase().contains(&q))
}

/// `?q=`.
#[derive(Debug, serde::Deserialize)]
pub struct Query {
    #[serde(default)]
    q: String,
}

/// The search route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/search", web::get().to(search));
}

/// `GET /search?q=…`.
async fn search(state: State, LoggedIn(s): LoggedIn, query: web::Query<Query>) -> Page {
    let q = query.q.trim().to_string();
    if q.is_empty() {
        return Ok(state.page("search.html", &s, context! { q, searched => false }));
    }
    if q.chars().count() > 100 {
        return Err(state.refuse(
            Some(&s),
            StatusCode::BAD_REQUEST,
            "Search too long",
            "Search with at most 100 characters: part of a namespace, a name or a template's title.",
        ));
    }
    let (deployable, terminable) = (
        state
            .readable(&s, readable::DEPLOYMENTS, &state.live.deployments)
            .await?,
        state.readable(&s, readable::TERMINALS, &state.live.terminals).await?,
    );
    let templates = Kind::of(
        state
            .catalog
            .all()
            .into_iter()
            .filter(|t| t.allows(&s.groups))
            .filter(|t| template_matches(&q, &t.name, &t.template.display_name, &t.template.description))
            .map(|t| Hit {
                label: t.template.display_name.clone(),
                link: format!("/catalog/{}/new", t.name),
                detail: format!("{}: {}", t.name, t.template.description),
            }),
    );
    let object = |kind: &str, (ns, name): &(String, String)| Hit {
        label: format!("{ns}/{name}"),
        link: format!("/{kind}/{ns}/{name}"),
        detail: String::new(),
    };
    let deployments = {
        let index = state.live.deployments.read().unwrap();
        Kind::of(
            index
                .rows(None)
                .filter(|r| deployable.has(&r.key().0) && matches(&q, (&r.key().0, &r.key().1)))
                .map(|r| Hit {
                    detail: format!("template {}", r.template),
                    ..object("deployments", r.key())
                }),
        )
    };
    let terminals = {
        let index = state.live.terminals.read().unwrap();
        Kind::of(
            index
                .rows(None)
                .filter(|r| terminable.has(&r.key().0) && matches(&q, (&r.key().0, &r.key().1)))
                .map(|r| object("terminals", r.key())),
        )
    };
    Ok(state.page(
        "search.html",
        &s,
        context! {
            q, searched => true,
            templates => Serde(&templates), deployments => Serde(&deployments), terminals => Serde(&terminals),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(i: usize) -> Hit {
        Hit {
            label: format!("h{i}"),
            link: String::new(),
            detail: String::new(),
        }
    }

    #[test]
    fn a_kind_shows_the_first_hits_and_counts_them_all() {
        let k = Kind::of((0..30).map(hit));
        assert_eq!((k.hits.len(), k.total), (SHOWN, 30));
        assert_eq!(k.hits[0].label, "h0");
        let k = Kind::of((0..3).map(hit));
        assert_eq!((k.hits.len(), k.total), (3, 3));
    }

    #[test]
    fn templates_match_by_name_title_or_description_in_any_case() {
        assert!(template_matches("POSTGRES", "postgresql", "PostgreSQL", "A database"));
        assert!(template_matches("data", "postgresql", "PostgreSQL", "A database"));
        assert!(template_matches(" web ", "webapp", "Web application", ""));
        assert!(!template_matches("redis", "postgresql", "PostgreSQL", "A database"));
        assert!(
            !template_matches("  ", "postgresql", "PostgreSQL", "A database"),
            "no words: no hits"
        );
    }
}
