//! Cluster certificates and the rustls configurations built from them.
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
//! verified peer ([`PeerIdentity`]) and decides what it may call
//! ([`crate::access`]).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::live_cert::LiveCert;
use crate::ALPN;

/// The DNS name every server certificate carries and every client checks.
pub const SERVER_NAME: &str = "cairn-server";

/// What a certificate's holder is allowed to be.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A metadata node: Raft RPCs, and reads.
    Meta,
    /// A chunkserver: registration, heartbeats, chunk copies between
    /// servers, and reads.
    ChunkServer,
    /// A user, the mount or a gateway: the namespace, chunk uploads and
    /// reads; no cluster administration.
    Client,
    /// An operator: everything a client may do, plus changing the cluster
    /// (replication policy, draining and removing chunkservers, metadata
    /// membership, `cairn gc`).
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Meta, Role::ChunkServer, Role::Client, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Meta => "meta",
            Role::ChunkServer => "chunkserver",
            Role::Client => "client",
            Role::Admin => "admin",
        }
    }

    /// The role named `s` (as [`Role::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s)
            .ok_or_else(|| format!("unknown role {s:?} (meta, chunkserver, client or admin)"))
    }
}

const CHUNKSERVER_NAME_PREFIX: &str = "chunk-";

/// The certificate name of chunkserver `id`: `chunk-<id>`. A chunkserver
/// may register, heartbeat and be asked as an owner only as the id its
/// certificate's name carries ([`PeerIdentity::chunkserver_id`]).
pub fn chunkserver_cert_name(id: crate::NodeId) -> String {
    format!("{CHUNKSERVER_NAME_PREFIX}{id}")
}

/// The longest certificate name accepted (it names files too).
pub const MAX_CERT_NAME: usize = 64;

/// Checks a certificate holder's name: 1 to [`MAX_CERT_NAME`] bytes of
/// ASCII letters, digits, `.`, `_` and `-`, not starting with `.` (it
/// becomes a file name).
pub fn validate_cert_name(name: &str) -> Result<(), TlsError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_CERT_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(TlsError::BadName(name.to_string()))
    }
}

/// When a certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Validity {
    /// Valid from an hour ago (for clocks a little behind this one) for
    /// `days` days from now.
    pub fn days(days: u32) -> Self {
        let now = SystemTime::now();
        Validity {
            not_before: now - Duration::from_secs(3600),
            not_after: now + Duration::from_secs(u64::from(days) * 86_400),
        }
    }
}

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
    #[error("generating certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("QUIC crypto configuration: {0}")]
    Quic(String),
    #[error(
        "bad certificate name {0:?}: use 1 to {MAX_CERT_NAME} letters, digits, '.', '_' or '-'"
    )]
    BadName(String),
    #[error("the peer presented no certificate")]
    NoPeerCertificate,
    #[error("unreadable peer certificate: {0}")]
    BadPeerCertificate(String),
    #[error("the peer's certificate names no known role (organizational unit {0:?})")]
    UnknownRole(String),
    #[error("certificate refused: {0}")]
    Rejected(String),
}

/// The cluster CA: signs every server and client certificate.
pub struct CertificateAuthority {
    pub cert_pem: String,
    pub key_pem: String,
}

impl CertificateAuthority {
    /// Creates a new CA with a fresh key, valid for `validity`.
    pub fn generate(validity: Validity) -> Result<Self, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "cairn cluster CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = validity.not_before.into();
        params.not_after = validity.not_after.into();
        let cert = params.self_signed(&key)?;
        Ok(CertificateAuthority {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a certificate for `name` in `role`, valid for `validity`;
    /// returns (cert, key) PEM. The role goes in the subject's
    /// organizational unit, where [`PeerIdentity`] reads it.
    pub fn issue(
        &self,
        role: Role,
        name: &str,
        validity: Validity,
    ) -> Result<(String, String), TlsError> {
        validate_cert_name(name)?;
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)?;
        let key = KeyPair::generate()?;
        let sans = match role {
            Role::Meta | Role::ChunkServer => vec![SERVER_NAME.to_string()],
            Role::Client | Role::Admin => vec!["cairn-client".to_string()],
        };
        let mut params = CertificateParams::new(sans)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationalUnitName, role.as_str());
        params.distinguished_name = dn;
        params.extended_key_usages = match role {
            Role::Client | Role::Admin => vec![ExtendedKeyUsagePurpose::ClientAuth],
            // Servers also dial each other (Raft, registration), so they are clients too.
            Role::Meta | Role::ChunkServer => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        params.not_before = validity.not_before.into();
        params.not_after = validity.not_after.into();
        let cert = params.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// A subject attribute's text ("" when missing or not a string).
fn attr_text(attr: Option<&x509_parser::x509::AttributeTypeAndValue<'_>>) -> String {
    attr.and_then(|a| a.as_str().ok()).unwrap_or("").to_string()
}

/// Who is at the other end of a verified connection, as its certificate
/// says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    pub role: Role,
    /// The certificate's common name (`meta-1`, `client`, ...).
    pub name: String,
}

impl PeerIdentity {
    /// Reads the identity from a leaf certificate (DER) that TLS has
    /// already verified against the cluster CA.
    pub fn from_cert_der(der: &[u8]) -> Result<Self, TlsError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| TlsError::BadPeerCertificate(e.to_string()))?;
        let subject = cert.subject();
        let ou = attr_text(subject.iter_organizational_unit().next());
        let role = Role::parse(&ou).ok_or(TlsError::UnknownRole(ou))?;
        let name = attr_text(subject.iter_common_name().next());
        Ok(PeerIdentity { role, name })
    }

    /// The chunkserver id this certificate is bound to: a chunkserver
    /// certificate named `chunk-<id>` ([`chunkserver_cert_name`]) acts as
    /// chunkserver `id` and no other; any other name binds to none.
    pub fn chunkserver_id(&self) -> Option<crate::NodeId> {
        if self.role != Role::ChunkServer {
            return None;
        }
        let digits = self.name.strip_prefix(CHUNKSERVER_NAME_PREFIX)?;
        // One spelling per id: no sign, no leading zeros.
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        canonical.then(|| digits.parse().ok()).flatten()
    }

    /// The identity of the peer of an established QUIC connection.
    pub fn of_connection(conn: &quinn::Connection) -> Result<Self, TlsError> {
        Self::from_cert_der(&peer_leaf(conn)?)
    }
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

impl std::fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.role, self.name)
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
    /// ([`crate::live_cert`]).
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

fn parse_certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
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

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// rustls server configuration: `cert` presented, client certificates
/// required and verified against `id`'s cluster CA, ALPN [`ALPN`].
pub fn rustls_server_config(
    id: &TlsIdentity,
    cert: Arc<LiveCert>,
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
    cert: Arc<LiveCert>,
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
    fn issue_and_build_configs() {
        let ca = CertificateAuthority::generate(Validity::days(1)).unwrap();
        let (cert, key) = ca.issue(Role::Meta, "meta-1", Validity::days(1)).unwrap();
        let id = TlsIdentity {
            ca_pem: ca.cert_pem.clone(),
            cert_pem: cert,
            key_pem: key,
            source: None,
        };
        let cert = LiveCert::new(&id).unwrap();
        rustls_server_config(&id, cert.clone()).unwrap();
        rustls_client_config(&id, cert).unwrap();
    }

    #[test]
    fn the_role_and_name_are_read_back_from_the_certificate() {
        let ca = CertificateAuthority::generate(Validity::days(1)).unwrap();
        for role in Role::ALL {
            let (cert, _) = ca.issue(role, "node-7", Validity::days(1)).unwrap();
            let der = parse_certs(&cert, "cert").unwrap().remove(0);
            let id = PeerIdentity::from_cert_der(&der).unwrap();
            assert_eq!(id.role, role);
            assert_eq!(id.name, "node-7");
        }
        assert!(matches!(
            PeerIdentity::from_cert_der(b"not a certificate"),
            Err(TlsError::BadPeerCertificate(_))
        ));
    }

    #[test]
    fn a_certificate_without_a_role_is_refused() {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["x".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert!(matches!(
            PeerIdentity::from_cert_der(cert.der()),
            Err(TlsError::UnknownRole(_))
        ));
    }

    #[test]
    fn certificate_names_are_checked() {
        let ca = CertificateAuthority::generate(Validity::days(1)).unwrap();
        for bad in [
            "",
            ".hidden",
            "a/b",
            "a b",
            "x\0",
            &"n".repeat(MAX_CERT_NAME + 1),
        ] {
            assert!(
                ca.issue(Role::Client, bad, Validity::days(1)).is_err(),
                "{bad:?} was accepted"
            );
        }
        for good in ["client", "meta-1", "chunk_2.example"] {
            validate_cert_name(good).unwrap();
        }
        assert_eq!("chunkserver".parse::<Role>(), Ok(Role::ChunkServer));
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn garbage_pem_is_a_clear_error() {
        let id = TlsIdentity {
            ca_pem: "nope".into(),
            cert_pem: "nope".into(),
            key_pem: "nope".into(),
            source: None,
        };
        let err = LiveCert::new(&id).err().unwrap();
        assert!(err.to_string().contains("no PEM"), "{err}");
    }
}
