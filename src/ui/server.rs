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

/// The Content-Security-Policy of every page.
const CSP: &str = "default-src 'self'; img-src 'self' data: https:; frame-ancestors 'none'; form-action 'self'";
/// The terminal page's: xterm.js styles its rows with a `<style>` element; scripts stay `'self'` only.
pub(super) const TERMINAL_CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; frame-ancestors 'none'; form-action 'self'";

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
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
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
            .wrap(from_fn(super::metrics::track))
            .route("/", web::get().to(catalog_page))
            .route("/healthz", web::get().to(healthz))
            .configure(super::login::routes)
            .configure(super::admin::routes)
            .configure(super::deployments::routes)
            .configure(super::deployment_detail::routes)
            .configure(super::account::routes)
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
