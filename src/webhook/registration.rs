//! The MutatingWebhookConfiguration and ValidatingWebhookConfiguration that
//! send Portico's kinds to the webhook (built purely; applied by the operator
//! when it manages them), and the `caBundle` patch the operator writes into
//! configurations the Helm chart made.

use k8s_openapi::{
    ByteString,
    api::admissionregistration::v1::{
        MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference, ValidatingWebhook,
        ValidatingWebhookConfiguration, WebhookClientConfig,
    },
};
use kube::{
    Api, Client,
    api::{ObjectMeta, Patch, PatchParams},
};

use crate::{api::rbac::RESOURCES, config::WebhookConfig, install};

/// Why the API server could not be given the webhook's CA.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// `injectCaBundle` needs configurations someone else made, and one is missing.
    #[error(
        "webhook.injectCaBundle is set, but the {kind} {name:?} does not exist: in this mode the operator only \
         writes its caBundle. Install it with the Helm chart (templates/webhook-configurations.yaml, the \
         default), or set webhook.manageConfigurations: true (and injectCaBundle: false) to let the operator \
         create both"
    )]
    Missing {
        /// `MutatingWebhookConfiguration` or `ValidatingWebhookConfiguration`.
        kind: &'static str,
        /// `webhook.configurationName`.
        name: String,
    },
    /// The API server refused the write.
    #[error("{0}")]
    Api(#[from] kube::Error),
}

/// The mutating webhook's name in its configuration.
pub const MUTATE: &str = "mutate.portico.dev";
/// The validating webhook's name in its configuration.
pub const VALIDATE: &str = "validate.portico.dev";

fn client_config(cfg: &WebhookConfig, path: &str, ca_pem: &str) -> WebhookClientConfig {
    WebhookClientConfig {
        ca_bundle: Some(ByteString(ca_pem.as_bytes().to_vec())),
        url: cfg.url.as_ref().map(|u| format!("{}{path}", u.trim_end_matches('/'))),
        service: cfg.service.as_ref().map(|s| ServiceReference {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            path: Some(path.to_string()),
            port: Some(s.port),
        }),
    }
}

/// The operations each webhook sees: validation also sees deletes (only the
/// creator or someone allowed to `override` ends a Terminal or SessionClaim).
fn rules(operations: &[&str]) -> Vec<RuleWithOperations> {
    vec![RuleWithOperations {
        api_groups: Some(vec![crate::api::GROUP.into()]),
        api_versions: Some(vec![crate::api::VERSION.into()]),
        operations: Some(operations.iter().map(|o| o.to_string()).collect()),
        resources: Some(RESOURCES.iter().map(|r| r.to_string()).collect()),
        scope: Some("Namespaced".into()),
    }]
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        labels: Some([("app.kubernetes.io/part-of".to_string(), "portico".to_string())].into()),
        ..Default::default()
    }
}

/// The mutating configuration, `failurePolicy: Fail`.
pub fn mutating(cfg: &WebhookConfig, ca_pem: &str) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: meta(&cfg.configuration_name),
        webhooks: Some(vec![MutatingWebhook {
            name: MUTATE.into(),
            client_config: client_config(cfg, "/mutate", ca_pem),
            rules: Some(rules(&["CREATE", "UPDATE"])),
            failure_policy: Some("Fail".into()),
            side_effects: "None".into(),
            admission_review_versions: vec!["v1".into()],
            match_policy: Some("Equivalent".into()),
            reinvocation_policy: Some("Never".into()),
            timeout_seconds: Some(10),
            ..Default::default()
        }]),
    }
}

/// The validating configuration, `failurePolicy: Fail`.
pub fn validating(cfg: &WebhookConfig, ca_pem: &str) -> ValidatingWebhookConfiguration {
    ValidatingWebhookConfiguration {
        metadata: meta(&cfg.configuration_name),
        webhooks: Some(vec![ValidatingWebhook {
            name: VALIDATE.into(),
            client_config: client_config(cfg, "/validate", ca_pem),
            rules: Some(rules(&["CREATE", "UPDATE", "DELETE"])),
            failure_policy: Some("Fail".into()),
            // A SessionClaim's create reserves its slot in a Lease, except in a dry run.
            side_effects: "NoneOnDryRun".into(),
            admission_review_versions: vec!["v1".into()],
            match_policy: Some("Equivalent".into()),
            timeout_seconds: Some(15),
            ..Default::default()
        }]),
    }
}

/// Applies both configurations with server-side apply.
pub async fn apply(client: &Client, cfg: &WebhookConfig, ca_pem: &str) -> Result<(), kube::Error> {
    install::apply(client, &mutating(cfg, ca_pem)).await?;
    install::apply(client, &validating(cfg, ca_pem)).await?;
    Ok(())
}

/// Makes the API server trust `ca_pem` for the webhook, as the operator's
/// mode says: applies the whole configurations (`manageConfigurations`),
/// writes only their `caBundle` (`injectCaBundle`), or nothing (someone else,
/// such as cert-manager, does). Returns what it did, for the log.
pub async fn publish_ca(client: &Client, cfg: &WebhookConfig, ca_pem: &str) -> Result<&'static str, PublishError> {
    if cfg.manage_configurations {
        apply(client, cfg, ca_pem).await?;
        Ok("webhook configurations applied")
    } else if cfg.inject_ca_bundle {
        inject_ca_bundle(client, cfg, ca_pem).await?;
        Ok("webhook configurations' caBundle written")
    } else {
        Ok("webhook configurations left to their owner")
    }
}

/// The strategic merge patch that sets `caBundle` on the webhook `hook` of a
/// configuration and changes nothing else (pure): webhooks merge by name.
pub fn ca_bundle_patch(hook: &str, ca_pem: &str) -> serde_json::Value {
    serde_json::json!({
        "webhooks": [{
            "name": hook,
            "clientConfig": {"caBundle": ByteString(ca_pem.as_bytes().to_vec())},
        }]
    })
}

/// Writes the CA into the `caBundle` of both configurations, which must
/// exist (the Helm chart makes them). A missing configuration is an error
/// naming it: the operator never creates one in this mode.
pub async fn inject_ca_bundle(client: &Client, cfg: &WebhookConfig, ca_pem: &str) -> Result<(), PublishError> {
    let name = &cfg.configuration_name;
    let params = PatchParams::default();
    let missing = |kind: &'static str| {
        move |e: kube::Error| match e {
            kube::Error::Api(s) if s.code == 404 => PublishError::Missing {
                kind,
                name: name.clone(),
            },
            other => PublishError::Api(other),
        }
    };
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    mutating
        .patch(name, &params, &Patch::Strategic(ca_bundle_patch(MUTATE, ca_pem)))
        .await
        .map_err(missing("MutatingWebhookConfiguration"))?;
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    validating
        .patch(name, &params, &Patch::Strategic(ca_bundle_patch(VALIDATE, ca_pem)))
        .await
        .map_err(missing("ValidatingWebhookConfiguration"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_service_configs_point_at_the_paths() {
        let mut cfg = WebhookConfig {
            url: Some("https://127.0.0.1:9443/".into()),
            ..Default::default()
        };
        let m = mutating(&cfg, "CA");
        let hook = &m.webhooks.as_ref().unwrap()[0];
        assert_eq!(hook.client_config.url.as_deref(), Some("https://127.0.0.1:9443/mutate"));
        assert_eq!(hook.failure_policy.as_deref(), Some("Fail"));
        cfg.url = None;
        cfg.service = Some(crate::config::ServiceRef {
            namespace: "p".into(),
            name: "w".into(),
            port: 443,
        });
        let v = validating(&cfg, "CA");
        let svc = v.webhooks.as_ref().unwrap()[0].client_config.service.clone().unwrap();
        assert_eq!(svc.path.as_deref(), Some("/validate"));
    }

    #[test]
    fn the_ca_bundle_patch_names_the_webhook_and_sets_only_its_ca() {
        let patch = ca_bundle_patch(VALIDATE, "PEM");
        assert_eq!(
            patch,
            serde_json::json!({"webhooks": [{"name": "validate.portico.dev", "clientConfig": {"caBundle": "UEVN"}}]})
        );
    }
}
