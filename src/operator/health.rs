//! The plain-HTTP servers: `/metrics` (OpenMetrics; for callers the API
//! server allows to read it, [`super::metrics_auth`], unless
//! `metrics.authorize` is off), `/healthz` and `/readyz` where Prometheus
//! and the kubelet reach them, and, on a loopback
//! address of its own, `/log-level` (GET the filter, PUT a new one) to
//! change logging at runtime.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use actix_web::{App, HttpResponse, HttpServer, web};
use tokio_util::sync::CancellationToken;

use crate::{metrics::Metrics, telemetry::LogLevel};

struct State {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    log: Option<LogLevel>,
    guard: Option<super::metrics_auth::Guard>,
}

async fn get_log_level(s: web::Data<State>) -> HttpResponse {
    match &s.log {
        Some(l) => HttpResponse::Ok().body(l.get()),
        None => HttpResponse::NotFound().body("this process does not manage its log level"),
    }
}

/// `PUT /log-level` with a filter such as `debug` or `info,portico=debug` as the body.
async fn set_log_level(s: web::Data<State>, body: String) -> HttpResponse {
    let Some(l) = &s.log else {
        return HttpResponse::NotFound().body("this process does not manage its log level");
    };
    match l.set(body.trim()) {
        Ok(()) => {
            tracing::info!(filter = %body.trim(), "log level changed");
            HttpResponse::Ok().body(format!("log filter is now {}\n", body.trim()))
        }
        Err(e) => HttpResponse::BadRequest().body(format!("{e}\n")),
    }
}

async fn metrics(s: web::Data<State>, req: actix_web::HttpRequest) -> HttpResponse {
    use super::metrics_auth::Decision;
    if let Some(guard) = &s.guard {
        let header = req.headers().get("authorization").and_then(|v| v.to_str().ok());
        match guard.check(header).await {
            Decision::Allowed => {}
            Decision::Unauthenticated(why) => {
                return HttpResponse::Unauthorized()
                    .insert_header(("www-authenticate", "Bearer"))
                    .body(format!("{why}\n"));
            }
            Decision::Forbidden(why) => return HttpResponse::Forbidden().body(format!("{why}\n")),
        }
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(s.metrics.render())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

async fn readyz(s: web::Data<State>) -> HttpResponse {
    if s.ready.load(Ordering::SeqCst) {
        HttpResponse::Ok().body("ok")
    } else {
        HttpResponse::ServiceUnavailable().body("webhook server not serving yet")
    }
}

/// Binds `addr` (metrics and probes) and `admin` (the log level, loopback)
/// and serves both until `shutdown`; `/metrics` only to whom `guard` allows, if given.
pub fn serve(
    (addr, admin): (std::net::SocketAddr, std::net::SocketAddr),
    metrics_: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    log: Option<LogLevel>,
    guard: Option<super::metrics_auth::Guard>,
    shutdown: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let state = web::Data::new(State {
        metrics: metrics_,
        ready,
        log,
        guard,
    });
    let public = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(public.clone())
            .route("/metrics", web::get().to(metrics))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
    })
    .workers(1)
    .disable_signals()
    .bind(addr)?
    .run();
    let admin_server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/log-level", web::get().to(get_log_level))
            .route("/log-level", web::put().to(set_log_level))
    })
    .workers(1)
    .disable_signals()
    .bind(admin)?
    .run();
    let (handle, admin_handle) = (server.handle(), admin_server.handle());
    tokio::spawn(async move {
        shutdown.cancelled().await;
        tokio::join!(handle.stop(true), admin_handle.stop(true));
    });
    Ok(tokio::spawn(async move {
        let (a, b) = tokio::join!(server, admin_server);
        a.and(b)
    }))
}
