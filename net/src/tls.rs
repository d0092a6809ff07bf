//! Cluster certificates on the wire: reading them from files, the rustls
//! configurations built from them, and what a verified peer's certificate
//! says.
//!
//! Every Cairn endpoint presents a certificate signed by the cluster CA and
//! verifies its peer's against the same CA (mutual TLS): nothing is served
//! to a peer without a certificate from this cluster, and an expired one is
//! refused like a forged one. Server certificates carry the DNS name
//! [`SERVER_NAME`], which clients verify, so a client reaches servers by IP
//! address and still authenticates them.
//!
//! A certificate names its holder's [`Role`] in the subject's
//! organizational unit; the CA signs it, so a server reads the role of a
//! verified peer ([`peer_identity`]) and decides what it may call
//! (`cairn_proto::access`). Issuing certificates is the CLI's job (`cairn
//! cert`), not a library's.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cairn_proto::identity::{BadCertName, PeerIdentity, Role};
use cairn_proto::ALPN;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use cairn_proto::identity::SERVER_NAME;

/// Why certificates could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{what}: no PEM {expected} found")]
    NoPem {
        what: String,
        expected: &'static str,
    },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("QUIC crypto configuration: {0}")]
    Quic(String),
    #[error(transparent)]
    BadName(#[from] BadCertName),
    #[error("the peer presented no certificate")]
    NoPeerCertificate,
    #[error("unreadable peer certificate: {0}")]
    BadPeerCertificate(String),
    #[error("the peer's certificate names no known role (organizational unit {0:?})")]
    UnknownRole(String),
    #[error("certificate refused: {0}")]
    Rejected(String),
}

/// A subject attribute's text ("" when missing or not a string).
fn attr_text(attr: Option<&x509_parser::x509::AttributeTypeAndValue<'_>>) -> String {
    attr.and_then(|a| a.as_str().ok()).unwrap_or("").to_string()
}

/// Reads a peer's identity from a leaf certificate (DER) that TLS has
/// already verified against the cluster CA.
pub fn peer_identity_from_der(der: &[u8]) -> Result<PeerIdentity, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| TlsError::BadPeerCertificate(e.to_string()))?;
    let subject = cert.subject();
    let ou = attr_text(subject.iter_organizational_unit().next());
    let role = Role::parse(&ou).ok_or(TlsError::UnknownRole(ou))?;
    let name = attr_text(subject.iter_common_name().next());
    Ok(PeerIdentity { role, name })
}

/// The identity of the peer of an established QUIC connection.
pub fn peer_identity(conn: &quinn::Connection) -> Result<PeerIdentity, TlsError> {
    peer_identity_from_der(&peer_leaf(conn)?)
}

/// The leaf certificate the peer of `conn` presented.
fn peer_leaf(conn: &quinn::Connection) -> Result<CertificateDer<'static>, TlsError> {
    let certs = conn
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or(TlsError::NoPeerCertificate)?;
    certs.first().cloned().ok_or(TlsError::NoPeerCertificate)
}

/// When the certificate the peer of `conn` presented stops being valid.
pub fn peer_not_after(conn: &quinn::Connection) -> Result<SystemTime, TlsError> {
    let leaf = peer_leaf(conn)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf)
        .map_err(|e| TlsError::BadPeerCertificate(e.to_string()))?;
    let secs = cert.validity().not_after.timestamp();
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

/// What a certificate says about itself, for `cairn cert show`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CertInfo {
    /// The role in its organizational unit, if it names one.
    pub role: Option<Role>,
    pub name: String,
    pub issuer: String,
    /// Validity, in seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    /// Whether the given CA's key signed it (`None`: no CA given).
    pub signed_by_ca: Option<bool>,
}

impl CertInfo {
    /// Reads the first certificate in `pem`; checks its signature against
    /// the first certificate in `ca_pem` when given.
    pub fn read(pem: &str, ca_pem: Option<&str>) -> Result<Self, TlsError> {
        let der = parse_certs(pem, "certificate")?.remove(0);
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| TlsError::BadPeerCertificate(e.to_string()))?;
        let signed_by_ca = match ca_pem {
            None => None,
            Some(ca_pem) => {
                let ca_der = parse_certs(ca_pem, "CA certificate")?.remove(0);
                let (_, ca) = x509_parser::parse_x509_certificate(&ca_der)
                    .map_err(|e| TlsError::BadPeerCertificate(e.to_string()))?;
                Some(cert.verify_signature(Some(ca.public_key())).is_ok())
            }
        };
        let subject = cert.subject();
        let role = Role::parse(&attr_text(subject.iter_organizational_unit().next()));
        let name = attr_text(subject.iter_common_name().next());
        Ok(CertInfo {
            role,
            name,
            issuer: cert.issuer().to_string(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            is_ca: cert.is_ca(),
            signed_by_ca,
        })
    }
}

/// Where an endpoint's PEM files are, as configs name them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsPaths {
    /// The cluster CA certificate to trust.
    pub ca: std::path::PathBuf,
    /// This endpoint's certificate, signed by the CA.
    pub cert: std::path::PathBuf,
    /// This endpoint's private key (keep it 0600).
    pub key: std::path::PathBuf,
}

impl TlsPaths {
    /// Reads the three files; an endpoint made from the result reloads its
    /// certificate and key from them when they change
    /// (the `live_cert` module).
    pub fn load(&self) -> Result<TlsIdentity, TlsError> {
        let mut id = TlsIdentity::load(&self.ca, &self.cert, &self.key)?;
        id.source = Some(self.clone());
        Ok(id)
    }
}

/// The PEM material an endpoint needs: the CA to trust, and its own
/// certificate and key.
#[derive(Clone)]
pub struct TlsIdentity {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// The files it was read from, if any: endpoints watch them for a
    /// replacement certificate.
    pub source: Option<TlsPaths>,
}

impl TlsIdentity {
    /// Reads the three PEM files.
    pub fn load(ca: &Path, cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| TlsError::Read {
                path: p.display().to_string(),
                source,
            })
        };
        Ok(TlsIdentity {
            ca_pem: read(ca)?,
            cert_pem: read(cert)?,
            key_pem: read(key)?,
            source: None,
        })
    }

    fn roots(&self) -> Result<rustls::RootCertStore, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in parse_certs(&self.ca_pem, "CA certificate")? {
            roots.add(cert)?;
        }
        Ok(roots)
    }

    pub(crate) fn chain(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let certs = parse_certs(&self.cert_pem, "certificate")?;
        let key = rustls_pemfile::private_key(&mut self.key_pem.as_bytes())
            .ok()
            .flatten()
            .ok_or(TlsError::NoPem {
                what: "key".into(),
                expected: "private key",
            })?;
        Ok((certs, key))
    }
}

/// The certificates in `pem` (at least one); `what` names it in errors.
pub fn parse_certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_bytes())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoPem {
            what: what.into(),
            expected: "certificate",
        });
    }
    Ok(certs)
}

/// ring's provider with AES-128-GCM preferred: every byte of every hop is
/// sealed, and 128-bit AES does 10 rounds where AES-256 does 14 (both
/// sides use this list, so it is what every connection negotiates).
/// TLS 1.3 suites only: QUIC has no other.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::cipher_suite;
    Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ],
        ..rustls::crypto::ring::default_provider()
    })
}

/// rustls server configuration: `cert` presented (an endpoint's
/// `LiveCert`), client certificates
/// required and verified against `id`'s cluster CA, ALPN [`ALPN`].
pub fn rustls_server_config(
    id: &TlsIdentity,
    cert: Arc<dyn rustls::server::ResolvesServerCert>,
) -> Result<rustls::ServerConfig, TlsError> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(id.roots()?),
        provider(),
    )
    .build()?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(cert);
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    Ok(cfg)
}

/// rustls client configuration: servers verified against `id`'s cluster
/// CA, `cert` presented, ALPN [`ALPN`].
pub fn rustls_client_config(
    id: &TlsIdentity,
    cert: Arc<dyn rustls::client::ResolvesClientCert>,
) -> Result<rustls::ClientConfig, TlsError> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(id.roots()?)
        .with_client_cert_resolver(cert);
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_peer_certificate_is_a_clear_error() {
        assert!(matches!(
            peer_identity_from_der(b"not a certificate"),
            Err(TlsError::BadPeerCertificate(_))
        ));
        assert!(matches!(
            parse_certs("nope", "CA certificate"),
            Err(TlsError::NoPem { .. })
        ));
    }
}
