//! The dashboard's HTTP server: each feature module registers its own
//! routes; every response gets the security headers, and no
//! `Impersonate-*` header from a browser ever reaches a handler.

use std::sync::Arc;

use actix_web::{
    App, HttpResponse, HttpServer,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{self, HeaderName, HeaderValue},
    middleware::{Next, from_fn},
    web,
};
use minijinja::context;

use super::{
    logged_in::LoggedIn,
    state::{State, UiState},
};

/// The Content-Security-Policies: every page's, and the terminal page's
/// (xterm.js styles its rows with a `<style>` element; scripts stay `'self'`
/// only). Forms post to this dashboard only — and, where logout goes on to
/// the provider's end-session endpoint, the redirect of the logout form to
/// that origin (browsers apply `form-action` to a form's redirects).
pub struct Csp {
    pub(super) page: HeaderValue,
    pub(super) terminal: HeaderValue,
}

impl Csp {
    /// The policies, with `logout_origin` allowed as a form's destination.
    pub fn new(logout_origin: Option<&str>) -> Csp {
        let forms = match logout_origin {
            Some(o) => format!("form-action 'self' {o}"),
            None => "form-action 'self'".into(),
        };
        let value = |styles: &str| {
            HeaderValue::from_str(&format!(
                "default-src 'self';{styles} img-src 'self' data: https:; frame-ancestors 'none'; {forms}"
            ))
            .expect("an origin is a valid header value")
        };
        Csp {
            page: value(""),
            terminal: value(" style-src 'self' 'unsafe-inline';"),
        }
    }
}

async fn catalog_page(state: State, LoggedIn(s): LoggedIn) -> HttpResponse {
    state.heartbeat(&s);
    let templates: Vec<minijinja::Value> = state
        .catalog
        .all()
        .iter()
        .filter(|t| t.allows(&s.groups))
        .map(|t| t.card.clone())
        .collect();
    state.page("catalog.html", &s, context! { templates })
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

/// Security headers on every response; `Impersonate-*` headers from a browser
/// are removed before any handler sees the request.
async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let banned: Vec<HeaderName> = req
        .headers()
        .keys()
        .filter(|k| k.as_str().starts_with("impersonate-"))
        .cloned()
        .collect();
    for h in banned {
        req.headers_mut().remove(h);
    }
    let csp = req.app_data::<State>().map(|s| s.csp.page.clone());
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    if let Some(csp) = csp
        && !h.contains_key(header::CONTENT_SECURITY_POLICY)
    {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    for (k, v) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ] {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    Ok(res)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    state: Arc<UiState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (addr, workers) = (state.cfg.listen, state.cfg.worker_count());
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(from_fn(guard))
            .wrap(from_fn(super::provider_session::keep))
            .wrap(from_fn(super::metrics::track))
            .route("/", web::get().to(catalog_page))
            .route("/healthz", web::get().to(healthz))
            .configure(super::login::routes)
            .configure(super::admin::routes)
            .configure(super::deployments::routes)
            .configure(super::deployment_detail::routes)
            .configure(super::account::routes)
            .configure(super::access::routes)
            .configure(super::search::routes)
            .configure(super::insights::routes)
            .configure(super::terminals::routes)
            .configure(super::attach::routes)
            .configure(super::assets::routes)
            .configure(super::live::routes)
            .configure(super::metrics::routes)
    })
    .workers(workers)
    .disable_signals()
    .bind(addr)?
    .run();
    tracing::info!(%addr, workers, "dashboard listening");
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown.await;
        handle.stop(true).await;
    });
    server.await
}
