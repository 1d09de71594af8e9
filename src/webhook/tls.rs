//! The webhook's TLS material: from a certificate directory, or generated
//! (a CA and a serving certificate) and kept in a Secret that every replica
//! shares, so they all present the same CA to the API server; and the pure
//! rules of its renewal (when, the CA bundle meanwhile, the Secret's patch).
//! [`super::rotation`] keeps what is served current.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use rustls::pki_types::{CertificateDer, pem::PemObject};

use crate::{config::WebhookConfig, pki::Ca};

/// Getting TLS material failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file in the certificate directory.
    #[error("webhook certificate {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The shared Secret.
    #[error("webhook certificate Secret {namespace}/{name}: {reason}")]
    Secret {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Serving certificate, key, and the CA bundle the API server must trust.
pub struct TlsMaterial {
    /// Certificate chain, PEM.
    pub cert_pem: String,
    /// Private key, PEM.
    pub key_pem: String,
    /// CA bundle, PEM.
    pub ca_pem: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("key_pem", &"(redacted)")
            .finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// A rustls server configuration for this material.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        super::rotation::Reloadable::new(self)?.server_config()
    }
}

/// Reads `tls.crt`, `tls.key` and (if present) `ca.crt` from `cfg.cert_dir`,
/// or gets/creates the shared Secret.
pub async fn load(client: &Client, cfg: &WebhookConfig) -> Result<TlsMaterial, TlsError> {
    if let Some(dir) = &cfg.cert_dir {
        return load_dir(dir);
    }
    let s = &cfg.cert_secret;
    let err = |reason: String| TlsError::Secret {
        namespace: s.namespace.clone(),
        name: s.name.clone(),
        reason,
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), &s.namespace);
    if let Some(existing) = api.get_opt(&s.name).await.map_err(|e| err(e.to_string()))? {
        return from_secret(&existing)
            .ok_or_else(|| err("lacks tls.crt, tls.key or ca.crt; delete it to regenerate".into()));
    }
    let generated = generate(&hosts(cfg)).map_err(|e| err(e.to_string()))?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(s.name.clone()),
            namespace: Some(s.namespace.clone()),
            labels: Some(BTreeMap::from([("app.kubernetes.io/part-of".into(), "portico".into())])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.crt".into(), ByteString(generated.cert_pem.clone().into_bytes())),
            ("tls.key".into(), ByteString(generated.key_pem.clone().into_bytes())),
            ("ca.crt".into(), ByteString(generated.ca_pem.clone().into_bytes())),
        ])),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(generated),
        // Another replica was first: use its certificate.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let existing = api.get(&s.name).await.map_err(|e| err(e.to_string()))?;
            from_secret(&existing).ok_or_else(|| err("incomplete".into()))
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// Reads `tls.crt`, `tls.key` and (if present, else the certificate itself) `ca.crt`,
/// and checks that they make a server configuration.
pub fn load_dir(dir: &std::path::Path) -> Result<TlsMaterial, TlsError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| TlsError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    };
    let cert_pem = read("tls.crt")?;
    let key_pem = read("tls.key")?;
    let ca_pem = read("ca.crt").unwrap_or_else(|_| cert_pem.clone());
    let m = TlsMaterial {
        cert_pem,
        key_pem,
        ca_pem,
    };
    m.server_config().map_err(|e| TlsError::File {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(m)
}

/// The material in a Secret made by [`load`] (or by an admin, the same keys).
pub fn from_secret(s: &Secret) -> Option<TlsMaterial> {
    let data = s.data.as_ref()?;
    let get = |k: &str| data.get(k).and_then(|b| String::from_utf8(b.0.clone()).ok());
    Some(TlsMaterial {
        cert_pem: get("tls.crt")?,
        key_pem: get("tls.key")?,
        ca_pem: get("ca.crt")?,
    })
}

/// The names the serving certificate must cover.
pub fn hosts(cfg: &WebhookConfig) -> Vec<String> {
    let mut out = cfg.hosts.clone();
    if let Some(url) = &cfg.url
        && let Ok(u) = url.parse::<http::Uri>()
        && let Some(h) = u.host()
    {
        out.push(h.trim_matches(['[', ']']).to_string());
    }
    if let Some(svc) = &cfg.service {
        out.push(format!("{}.{}.svc", svc.name, svc.namespace));
        out.push(format!("{}.{}.svc.cluster.local", svc.name, svc.namespace));
    }
    out.sort();
    out.dedup();
    out
}

/// A new CA and a serving certificate for `hosts`.
pub fn generate(hosts: &[String]) -> Result<TlsMaterial, crate::pki::PkiError> {
    let ca = Ca::new("portico-webhook-ca")?;
    let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let pair = ca.server("portico-webhook", &refs)?;
    Ok(TlsMaterial {
        cert_pem: pair.cert_pem,
        key_pem: pair.key_pem,
        ca_pem: ca.cert_pem,
    })
}

/// When the first certificate in `cert_pem` starts and stops being valid.
pub fn validity(cert_pem: &str) -> Result<(SystemTime, SystemTime), String> {
    let der = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .next()
        .ok_or("no certificate")?
        .map_err(|e| e.to_string())?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| e.to_string())?;
    let at = |t: x509_parser::time::ASN1Time| UNIX_EPOCH + Duration::from_secs(t.timestamp().max(0) as u64);
    Ok((at(cert.validity().not_before), at(cert.validity().not_after)))
}

/// Whether the certificate should be replaced at `now` (pure): a third of
/// its life or less is left (four months of a year), or it is not valid.
pub fn renewal_due(cert_pem: &str, now: SystemTime) -> Result<bool, String> {
    let (from, until) = validity(cert_pem)?;
    let life = until.duration_since(from).unwrap_or_default();
    Ok(match until.duration_since(now) {
        Ok(left) => now < from || left < life / 3,
        Err(_) => true,
    })
}

/// The CA bundle after a renewal (pure): the new CA, then the newest CA
/// the old bundle held (replicas may still serve a certificate it signed);
/// older ones are dropped.
pub fn rotated_bundle(new_ca: &str, old_bundle: &str) -> String {
    let newest_old = old_bundle
        .split_inclusive("-----END CERTIFICATE-----")
        .map(str::trim)
        .find(|c| c.contains("BEGIN CERTIFICATE"))
        .unwrap_or_default();
    format!("{}\n{newest_old}\n", new_ca.trim())
}

/// A merge patch that puts `m` with `bundle` into the Secret, applied only
/// while the Secret is at `resource_version` (pure).
pub fn secret_patch(m: &TlsMaterial, bundle: &str, resource_version: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"resourceVersion": resource_version},
        "data": {
            "tls.crt": ByteString(m.cert_pem.clone().into_bytes()),
            "tls.key": ByteString(m.key_pem.clone().into_bytes()),
            "ca.crt": ByteString(bundle.as_bytes().to_vec()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_directory_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let m = generate(&["127.0.0.1".into(), "portico-webhook.portico-system.svc".into()]).unwrap();
        std::fs::write(dir.path().join("tls.crt"), &m.cert_pem).unwrap();
        std::fs::write(dir.path().join("tls.key"), &m.key_pem).unwrap();
        std::fs::write(dir.path().join("ca.crt"), &m.ca_pem).unwrap();
        let loaded = load_dir(dir.path()).unwrap();
        assert_eq!(loaded.ca_pem, m.ca_pem);
        std::fs::write(dir.path().join("tls.key"), "not a key").unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        std::fs::remove_file(dir.path().join("tls.crt")).unwrap();
        assert!(load_dir(dir.path()).unwrap_err().to_string().contains("tls.crt"));
    }

    #[test]
    fn generated_certificates_live_a_year_and_are_renewed_with_a_third_left() {
        let m = generate(&["w.p.svc".into()]).unwrap();
        let (from, until) = validity(&m.cert_pem).unwrap();
        let life = until.duration_since(from).unwrap();
        assert!(
            life > Duration::from_secs(364 * 86400) && life < Duration::from_secs(367 * 86400),
            "{life:?}"
        );
        let (_, ca_until) = validity(&m.ca_pem).unwrap();
        assert!(ca_until > until, "the CA outlives what it signs");
        let day = Duration::from_secs(86400);
        assert!(!renewal_due(&m.cert_pem, SystemTime::now()).unwrap());
        assert!(!renewal_due(&m.cert_pem, from + day * 200).unwrap());
        assert!(renewal_due(&m.cert_pem, from + day * 250).unwrap());
        assert!(renewal_due(&m.cert_pem, until + day).unwrap(), "expired");
        assert!(renewal_due(&m.cert_pem, from - day).unwrap(), "not yet valid");
        assert!(renewal_due("not a certificate", SystemTime::now()).is_err());
    }

    #[test]
    fn a_renewed_bundle_holds_the_new_ca_and_the_newest_old_one() {
        let (a, b, c) = (generate(&[]).unwrap(), generate(&[]).unwrap(), generate(&[]).unwrap());
        let once = rotated_bundle(&b.ca_pem, &a.ca_pem);
        assert_eq!(once, format!("{}\n{}\n", b.ca_pem.trim(), a.ca_pem.trim()));
        let twice = rotated_bundle(&c.ca_pem, &once);
        assert_eq!(
            twice,
            format!("{}\n{}\n", c.ca_pem.trim(), b.ca_pem.trim()),
            "a is dropped"
        );
    }

    #[test]
    fn the_renewal_patch_is_conditional_on_the_version_read() {
        let m = generate(&[]).unwrap();
        let p = secret_patch(&m, "BUNDLE", Some("42"));
        assert_eq!(p["metadata"]["resourceVersion"], "42");
        assert_eq!(p["data"]["ca.crt"], "QlVORExF");
        assert!(p["data"]["tls.key"].as_str().is_some_and(|k| !k.is_empty()));
    }

    #[test]
    fn hosts_cover_the_url_and_the_service() {
        let cfg = WebhookConfig {
            url: Some("https://127.0.0.1:9443".into()),
            service: Some(crate::config::ServiceRef {
                namespace: "p".into(),
                name: "w".into(),
                port: 443,
            }),
            ..Default::default()
        };
        assert_eq!(hosts(&cfg), ["127.0.0.1", "w.p.svc", "w.p.svc.cluster.local"]);
    }
}
