//! The dashboard's `/metrics`, unauthenticated like the operator's:
//! `portico_build_info`, the `process_*` metrics and, once [`track`] wraps
//! the app, requests counted and timed by route pattern. Nothing a user sent
//! or may see becomes a label: no path, name, namespace or user.

use std::{sync::LazyLock, time::Instant};

use actix_web::{
    HttpResponse,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::Method,
    middleware::Next,
    web,
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

/// Labels of a counted request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route pattern (`/terminals/{namespace}/{name}`), or `unmatched`.
    pub route: String,
    /// The HTTP method, `other` for one the dashboard never serves.
    pub method: String,
    /// The status code.
    pub code: String,
}

/// Labels of a timed request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route pattern, or `unmatched`.
    pub route: String,
    /// The HTTP method, or `other`.
    pub method: String,
}

/// The dashboard's metrics, one set per process (every worker shares it).
pub struct UiMetrics {
    registry: Registry,
    /// Requests answered.
    pub requests: Family<RequestLabels, Counter>,
    /// Time until the response started (a stream or WebSocket counts its start only).
    pub duration: Family<RouteLabels, Histogram>,
}

impl Default for UiMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        crate::metrics::register_process_metrics(&mut registry);
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        let sub = registry.sub_registry_with_prefix("portico_dashboard");
        sub.register(
            "http_requests",
            "Dashboard requests answered, by route pattern, method and status code",
            requests.clone(),
        );
        sub.register(
            "http_request_duration_seconds",
            "Time until a dashboard response started, by route pattern and method",
            duration.clone(),
        );
        UiMetrics {
            registry,
            requests,
            duration,
        }
    }
}

impl UiMetrics {
    /// Counts one request to `route` that answered `code` after `seconds`.
    pub fn observe(&self, route: Option<&str>, method: &Method, code: u16, seconds: f64) {
        let route = route.unwrap_or("unmatched").to_string();
        let method = method_label(method).to_string();
        self.duration
            .get_or_create(&RouteLabels {
                route: route.clone(),
                method: method.clone(),
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                code: code.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("encoding metrics into a String cannot fail");
        out
    }
}

/// The process's dashboard metrics.
pub static METRICS: LazyLock<UiMetrics> = LazyLock::new(UiMetrics::default);

/// A bounded label for `m` (pure): a client may send any method name.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `/metrics`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(METRICS.render())
}

/// Middleware (`App::wrap(from_fn(track))`): counts and times every request
/// by the pattern of the route it matched.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let (started, method) = (Instant::now(), req.method().clone());
    let res = next.call(req).await?;
    METRICS.observe(
        res.request().match_pattern().as_deref(),
        &method,
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use actix_web::{App, middleware::from_fn, test};

    use super::*;

    #[actix_web::test]
    async fn metrics_name_route_patterns_never_what_the_user_sent() {
        let app = test::init_service(App::new().wrap(from_fn(track)).configure(routes).route(
            "/terminals/{namespace}/{name}",
            web::get().to(|| async { HttpResponse::Ok().finish() }),
        ))
        .await;
        for uri in ["/terminals/team-secret/alice-shell", "/no-such-page-of-bob"] {
            test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
        }
        let odd = Method::from_bytes(b"EXFILTRATE").unwrap();
        test::call_service(
            &app,
            test::TestRequest::default().method(odd).uri("/metrics").to_request(),
        )
        .await;
        let res = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
        assert!(res.status().is_success());
        assert!(
            res.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/openmetrics-text"))
        );
        let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
        for line in [
            "portico_dashboard_http_requests_total{route=\"/terminals/{namespace}/{name}\",method=\"GET\",code=\"200\"} ",
            "portico_dashboard_http_requests_total{route=\"unmatched\",method=\"GET\",code=\"404\"} ",
            "method=\"other\"",
            "portico_dashboard_http_request_duration_seconds_count{route=\"/terminals/{namespace}/{name}\",method=\"GET\"} ",
            "portico_build_info{version=",
            "process_resident_memory_bytes ",
            "process_cpu_seconds_total ",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
        for private in ["team-secret", "alice", "bob", "EXFILTRATE"] {
            assert!(!text.contains(private), "{private} leaked:\n{text}");
        }
        // The operator's own series are not the dashboard's.
        assert!(!text.contains("portico_reconciles_total"), "{text}");
    }
}
