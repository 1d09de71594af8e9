//! The admission webhook served by the operator: `/mutate` and `/validate`
//! over HTTPS for all three kinds. This module decodes, dispatches and
//! answers; [`mutate`] and [`validate`] hold the rules all kinds share,
//! [`terminal`], [`session`] and [`deployment`] each kind's own.

pub mod decode;
pub mod deployment;
pub mod mutate;
pub mod ownership;
pub mod quota;
pub mod registration;
pub mod rotation;
pub mod session;
pub mod terminal;
pub mod tls;
pub mod validate;

use std::{sync::Arc, time::Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use k8s_openapi::jiff::Timestamp;
use kube::core::{
    DynamicObject, Status,
    admission::{AdmissionRequest, AdmissionResponse},
    response::{StatusCause, StatusDetails},
};
use tracing::{info, warn};

pub use crate::access::Denial;
use crate::{api::keys::TEMPORARY_NAMESPACE, clusters::Clusters, config::OperatorConfig, metrics::Metrics};

pub use crate::api::Kind;

fn kind_of(req: &AdmissionRequest<DynamicObject>) -> Option<Kind> {
    Kind::from_group_kind(&req.kind.group, &req.kind.kind)
}

/// An annotation of a dynamic object.
pub fn annotation<'a>(obj: &'a DynamicObject, key: &str) -> Option<&'a str> {
    obj.metadata.annotations.as_ref()?.get(key).map(String::as_str)
}

/// A string field directly under `spec`.
pub fn spec_str<'a>(obj: &'a DynamicObject, field: &str) -> Option<&'a str> {
    obj.data.get("spec")?.get(field)?.as_str()
}

/// A kind's typed spec from an admitted object (the API server has applied
/// the CRD's schema before validating webhooks run).
pub fn typed_spec<T: serde::de::DeserializeOwned>(obj: &DynamicObject) -> Result<T, Denial> {
    let spec = obj.data.get("spec").cloned().unwrap_or(serde_json::Value::Null);
    serde_json::from_value(spec).map_err(|e| Denial::invalid_field("spec", e.to_string()))
}

/// What the handlers share.
pub struct WebhookState {
    /// Operator configuration.
    pub config: OperatorConfig,
    /// This cluster and remote ones.
    pub clusters: Arc<Clusters>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The operator's own user name (from a SelfSubjectReview at start).
    pub operator_user: Option<String>,
    /// Turns at the session reservation Leases.
    pub turns: quota::Turns,
    /// The catalog's templates, from a watch.
    pub templates: crate::catalog::watch::Templates,
}

impl WebhookState {
    /// Session reservations, in Leases in the operator's namespace.
    pub(crate) fn quota(&self) -> quota::Quota<'_> {
        quota::Quota {
            client: &self.clusters.local().client,
            namespace: &self.config.leader_election.namespace,
            turns: &self.turns,
        }
    }
}

fn respond(req: &AdmissionRequest<DynamicObject>, result: Result<AdmissionResponse, Denial>) -> HttpResponse {
    let resp = match result {
        Ok(r) => r,
        Err(d) => {
            let mut r = AdmissionResponse::from(req);
            r.allowed = false;
            // A generated name is filled in before admission; the request's name is empty then.
            let name = req.object.as_ref().and_then(|o| o.metadata.name.as_deref());
            r.result = denial_status(&d, &req.kind.group, &req.kind.kind, name.unwrap_or(&req.name));
            r
        }
    };
    HttpResponse::Ok().json(resp.into_review())
}

/// The Status a refusal is answered with (pure): its code, reason and
/// message and, when it names fields, `details` with the object's kind and
/// name and one cause per field, as the API server's own validation errors
/// carry them (kubectl prints an invalid object's causes as bullets).
pub fn denial_status(d: &Denial, group: &str, kind: &str, name: &str) -> Status {
    let status = Status::failure(&d.message, d.reason()).with_code(d.code);
    if d.causes.is_empty() {
        // kubectl prints the message only when there are no details.
        return status;
    }
    status.with_details(StatusDetails {
        name: name.to_string(),
        group: group.to_string(),
        kind: kind.to_string(),
        uid: String::new(),
        causes: d
            .causes
            .iter()
            .map(|c| StatusCause {
                reason: d.cause_reason().to_string(),
                message: c.message.clone(),
                field: c.field.clone(),
            })
            .collect(),
        retry_after_seconds: 0,
    })
}

fn parse(body: &[u8]) -> Result<(AdmissionRequest<DynamicObject>, Kind), Box<HttpResponse>> {
    let req = decode::decode(body).map_err(|e| {
        let mut resp = AdmissionResponse::invalid(e.to_string());
        if let decode::DecodeError::TooDeep { uid, .. } = &e {
            // A proper answer to the API server, which shows the message to the user.
            resp.uid = uid.clone();
            resp.result = Status::failure(&e.to_string(), "Invalid").with_code(422);
            return Box::new(HttpResponse::Ok().json(resp.into_review()));
        }
        Box::new(HttpResponse::BadRequest().json(resp.into_review()))
    })?;
    match kind_of(&req) {
        Some(k) => Ok((req, k)),
        None => {
            let kind = req.kind.kind.clone();
            let denial = Denial::invalid(format!("Portico's webhook does not handle kind {kind}"));
            Err(Box::new(respond(&req, Err(denial))))
        }
    }
}

async fn mutate_handler(state: web::Data<WebhookState>, body: web::Bytes) -> HttpResponse {
    let started = Instant::now();
    let (req, kind) = match parse(&body) {
        Ok(x) => x,
        Err(resp) => return *resp,
    };
    let result = mutate::mutate(&req, kind, Timestamp::now(), &state.config, random_suffix).and_then(|ops| {
        let resp = AdmissionResponse::from(&req);
        if ops.is_empty() {
            return Ok(resp);
        }
        let patch: json_patch::Patch = serde_json::from_value(serde_json::Value::Array(ops))
            .map_err(|e| Denial::unavailable(format!("internal error building the patch: {e}")))?;
        resp.with_patch(patch)
            .map_err(|e| Denial::unavailable(format!("internal error: {e}")))
    });
    record(&state, kind, "mutate", &req, &result, started);
    respond(&req, result)
}

async fn validate_handler(state: web::Data<WebhookState>, body: web::Bytes) -> HttpResponse {
    let started = Instant::now();
    let (req, kind) = match parse(&body) {
        Ok(x) => x,
        Err(resp) => return *resp,
    };
    let result = async {
        let mut resp = AdmissionResponse::from(&req);
        let operator = state.operator_user.as_deref();
        match validate::validate(&req, kind, Timestamp::now(), &state.config, operator)? {
            Some(validate::Followup::Terminal(creator, terminal)) => {
                let ns = req.namespace.clone().unwrap_or_default();
                let temp = req.object.as_ref().and_then(|o| annotation(o, TEMPORARY_NAMESPACE));
                let warnings = terminal::authorize_terminal(&state.clusters, &ns, &creator, &terminal, temp).await?;
                // After the creator's own rights: what they may not grant at all comes first.
                terminal::check_shared_host(&terminal, &state.config.terminal.shared_host_roles)?;
                if !warnings.is_empty() {
                    resp.warnings = Some(warnings);
                }
            }
            Some(validate::Followup::Session(creator, profile)) => {
                session::reserve(&state, &req, &creator, &profile).await?;
            }
            Some(validate::Followup::Override(o)) => {
                ownership::check(&state.clusters.local().client, &o).await?;
            }
            Some(validate::Followup::Deployment {
                creator,
                applier,
                template,
                params,
                old_params,
            }) => {
                let who = (&creator, &applier);
                deployment::check(&state, who, &template, &params, old_params.as_ref()).await?;
            }
            None => {}
        }
        Ok(resp)
    }
    .await;
    let deleting = matches!(req.operation, kube::core::admission::Operation::Delete);
    if result.is_ok() && kind == Kind::SessionClaim && deleting && !req.dry_run {
        session::release(&state, &req).await;
    }
    record(&state, kind, "validate", &req, &result, started);
    respond(&req, result)
}

fn record(
    state: &WebhookState,
    kind: Kind,
    hook: &str,
    req: &AdmissionRequest<DynamicObject>,
    result: &Result<AdmissionResponse, Denial>,
    started: Instant,
) {
    let allowed = result.is_ok();
    let took = started.elapsed();
    state.metrics.admission(kind, hook, allowed, took);
    let took_ms = took.as_millis() as u64;
    let user = req.user_info.username.as_deref().unwrap_or_default();
    match result {
        Ok(_) => {
            info!(hook, kind = kind.name(), namespace = ?req.namespace, name = %req.name, user, operation = ?req.operation, took_ms, "admitted")
        }
        Err(d) => {
            warn!(hook, kind = kind.name(), namespace = ?req.namespace, name = %req.name, user, code = d.code, reason = %d.message, took_ms, "denied")
        }
    }
}

fn random_suffix() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..8)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}

/// Runs the HTTPS server until `shutdown` resolves.
pub async fn serve(
    state: WebhookState,
    tls: rustls::ServerConfig,
    addr: std::net::SocketAddr,
    ready: Arc<std::sync::atomic::AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
            .route("/mutate", web::post().to(mutate_handler))
            .route("/validate", web::post().to(validate_handler))
    })
    .workers(2)
    .disable_signals()
    .shutdown_timeout(5)
    .bind_rustls_0_23(addr, tls)?
    .run();
    info!(%addr, "webhook server listening");
    ready.store(true, std::sync::atomic::Ordering::SeqCst);
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown.await;
        handle.stop(true).await;
    });
    server.await
}

/// Admission requests for unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use kube::core::{DynamicObject, admission::AdmissionRequest};
    use serde_json::{Value, json};

    /// A Terminal admission request from `user` in `groups`.
    pub fn terminal_request(
        op: &str,
        user: &str,
        groups: &[&str],
        object: Value,
        old: Option<Value>,
    ) -> AdmissionRequest<DynamicObject> {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u1",
                "kind": {"group": "portico.dev", "version": "v1alpha1", "kind": "Terminal"},
                "resource": {"group": "portico.dev", "version": "v1alpha1", "resource": "terminals"},
                "namespace": "team-a", "operation": op,
                "userInfo": {"username": user, "groups": groups},
                "object": object, "oldObject": old,
            }
        });
        let review: kube::core::admission::AdmissionReview<DynamicObject> = serde_json::from_value(review).unwrap();
        review.try_into().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_refusal_naming_fields_answers_one_cause_each_with_the_objects_kind_and_name() {
        let d = Denial::invalid("spec.idleTimeout 9h is too long; spec.maxLifetime 99h is too long".into())
            .with_cause("spec.idleTimeout", "9h is too long")
            .with_cause("spec.maxLifetime", "99h is too long");
        let status = denial_status(&d, "portico.dev", "Terminal", "t");
        let req = testing::terminal_request("CREATE", "alice", &[], json!({"metadata": {"name": "t"}}), None);
        let mut resp = AdmissionResponse::from(&req);
        resp.allowed = false;
        resp.result = status;
        // As the API server reads it from the AdmissionReview.
        let review = serde_json::to_value(resp.into_review()).unwrap();
        assert_eq!(
            review["response"]["status"],
            json!({
                "status": "Failure", "code": 422, "reason": "Invalid",
                "message": "spec.idleTimeout 9h is too long; spec.maxLifetime 99h is too long",
                "details": {"name": "t", "group": "portico.dev", "kind": "Terminal", "causes": [
                    {"reason": "FieldValueInvalid", "field": "spec.idleTimeout", "message": "9h is too long"},
                    {"reason": "FieldValueInvalid", "field": "spec.maxLifetime", "message": "99h is too long"},
                ]},
            })
        );
        let forbidden = Denial::forbidden_field("spec.host.pod.privileged", "needs a group");
        assert_eq!(forbidden.message, "spec.host.pod.privileged: needs a group");
        let status = denial_status(&forbidden, "portico.dev", "Terminal", "t");
        assert_eq!(status.details.unwrap().causes[0].reason, "FieldValueForbidden");
    }

    #[test]
    fn a_refusal_without_fields_has_no_details_so_kubectl_prints_its_message() {
        let d = Denial::invalid("this Terminal is too big".into());
        let status = denial_status(&d, "portico.dev", "Terminal", "t");
        assert_eq!((status.code, status.details), (422, None));
        // A check that could not run is about no field, even when asked to be.
        assert!(
            Denial::unavailable("cannot check".into())
                .on("spec.profile")
                .causes
                .is_empty()
        );
    }
}
