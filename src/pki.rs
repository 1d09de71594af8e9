//! A small certificate authority: issues serving and client certificates
//! (ECDSA P-256) for the local control plane and the webhook server. Every
//! certificate has a real validity period: [`CA_VALIDITY`] for the CA,
//! [`LEAF_VALIDITY`] for what it issues, both from an hour ago (clocks
//! differ a little).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};

/// How long a CA is valid.
pub const CA_VALIDITY: std::time::Duration = std::time::Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a serving or client certificate is valid.
pub const LEAF_VALIDITY: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// Sets `params` valid from an hour ago for `validity`.
fn valid_for(params: &mut CertificateParams, validity: std::time::Duration) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + validity;
}

/// What can go wrong making a certificate.
#[derive(Debug, thiserror::Error)]
#[error("cannot generate {what}: {source}")]
pub struct PkiError {
    what: String,
    #[source]
    source: rcgen::Error,
}

fn ctx(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> PkiError {
    let what = what.into();
    move |source| PkiError { what, source }
}

/// A certificate and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct CertPair {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM.
    pub key_pem: String,
}

/// A self-signed certificate authority that issues leaf certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM: what clients and servers trust.
    pub cert_pem: String,
}

impl Ca {
    /// A new CA named `common_name`.
    pub fn new(common_name: &str) -> Result<Self, PkiError> {
        let key = KeyPair::generate().map_err(ctx("CA key"))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(ctx("CA params"))?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        valid_for(&mut params, CA_VALIDITY);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(ctx("CA certificate"))?;
        Ok(Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A serving certificate for the given DNS names and IP addresses.
    pub fn server(&self, common_name: &str, hosts: &[&str]) -> Result<CertPair, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(ctx("server params"))?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        for host in hosts {
            params.subject_alt_names.push(match host.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*host).try_into().map_err(ctx(format!("SAN {host}")))?),
            });
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params, common_name)
    }

    /// A client certificate: Kubernetes reads the user from the common name
    /// and the groups from the organisations.
    pub fn client(&self, user: &str, groups: &[&str]) -> Result<CertPair, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(ctx("client params"))?;
        params.distinguished_name.push(DnType::CommonName, user);
        for group in groups {
            params.distinguished_name.push(DnType::OrganizationName, *group);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, user)
    }

    fn sign(&self, mut params: CertificateParams, name: &str) -> Result<CertPair, PkiError> {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        valid_for(&mut params, LEAF_VALIDITY);
        let key = KeyPair::generate().map_err(ctx(format!("key for {name}")))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(ctx(format!("certificate for {name}")))?;
        Ok(CertPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A fresh ECDSA P-256 key pair for signing service-account tokens:
/// the PKCS#8 private key and the public key, both PEM.
pub fn signing_key_pem() -> Result<CertPair, PkiError> {
    let key = KeyPair::generate().map_err(ctx("signing key"))?;
    Ok(CertPair {
        cert_pem: key.public_key_pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_pem_certificates_for_servers_and_clients() {
        let ca = Ca::new("test-ca").unwrap();
        assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let server = ca.server("apiserver", &["127.0.0.1", "localhost"]).unwrap();
        assert!(server.cert_pem.contains("BEGIN CERTIFICATE"));
        assert!(server.key_pem.contains("BEGIN PRIVATE KEY"));
        let client = ca.client("alice", &["developers"]).unwrap();
        assert_ne!(client.cert_pem, server.cert_pem);
    }
}
