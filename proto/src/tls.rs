//! Cluster certificates and the rustls configurations built from them.
//!
//! Every Cairn endpoint presents a certificate signed by the cluster CA and
//! verifies its peer's against the same CA (mutual TLS): nothing is served
//! to a peer without a certificate from this cluster. Server certificates
//! carry the DNS name [`SERVER_NAME`], which clients verify, so a client
//! reaches servers by IP address and still authenticates them.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::ALPN;

/// The DNS name every server certificate carries and every client checks.
pub const SERVER_NAME: &str = "cairn-server";

/// What a certificate's holder is allowed to be.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Meta,
    ChunkServer,
    Client,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Meta => "meta",
            Role::ChunkServer => "chunkserver",
            Role::Client => "client",
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
}

/// The cluster CA: signs every server and client certificate.
pub struct CertificateAuthority {
    pub cert_pem: String,
    pub key_pem: String,
}

impl CertificateAuthority {
    /// The CA's parameters. Every cluster's CA has the same name; what makes
    /// it this cluster's is its key. Signing rebuilds the issuer from these
    /// and the key, so they must not change.
    fn params() -> Result<CertificateParams, TlsError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "cairn cluster CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(params)
    }

    /// Creates a new CA with a fresh key.
    pub fn generate() -> Result<Self, TlsError> {
        let key = KeyPair::generate()?;
        let cert = Self::params()?.self_signed(&key)?;
        Ok(CertificateAuthority {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a certificate for `name` in `role`; returns (cert, key) PEM.
    pub fn issue(&self, role: Role, name: &str) -> Result<(String, String), TlsError> {
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::new(Self::params()?, ca_key);
        let key = KeyPair::generate()?;
        let sans = match role {
            Role::Meta | Role::ChunkServer => vec![SERVER_NAME.to_string()],
            Role::Client => vec!["cairn-client".to_string()],
        };
        let mut params = CertificateParams::new(sans)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationalUnitName, role.as_str());
        params.distinguished_name = dn;
        params.extended_key_usages = match role {
            Role::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            // Servers also dial each other (Raft, registration), so they are clients too.
            Role::Meta | Role::ChunkServer => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        let cert = params.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
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
    pub fn load(&self) -> Result<TlsIdentity, TlsError> {
        TlsIdentity::load(&self.ca, &self.cert, &self.key)
    }
}

/// The PEM material an endpoint needs: the CA to trust, and its own
/// certificate and key.
#[derive(Clone)]
pub struct TlsIdentity {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
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
        })
    }

    fn roots(&self) -> Result<rustls::RootCertStore, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in parse_certs(&self.ca_pem, "CA certificate")? {
            roots.add(cert)?;
        }
        Ok(roots)
    }

    fn chain(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
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

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// rustls server configuration: our certificate, client certificates
/// required and verified against the cluster CA, ALPN [`ALPN`].
pub fn rustls_server_config(id: &TlsIdentity) -> Result<rustls::ServerConfig, TlsError> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(id.roots()?),
        provider(),
    )
    .build()?;
    let (certs, key) = id.chain()?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    Ok(cfg)
}

/// rustls client configuration: servers verified against the cluster CA,
/// our certificate presented, ALPN [`ALPN`].
pub fn rustls_client_config(id: &TlsIdentity) -> Result<rustls::ClientConfig, TlsError> {
    let (certs, key) = id.chain()?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(id.roots()?)
        .with_client_auth_cert(certs, key)?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_and_build_configs() {
        let ca = CertificateAuthority::generate().unwrap();
        let (cert, key) = ca.issue(Role::Meta, "meta-1").unwrap();
        let id = TlsIdentity {
            ca_pem: ca.cert_pem.clone(),
            cert_pem: cert,
            key_pem: key,
        };
        rustls_server_config(&id).unwrap();
        rustls_client_config(&id).unwrap();
    }

    #[test]
    fn garbage_pem_is_a_clear_error() {
        let id = TlsIdentity {
            ca_pem: "nope".into(),
            cert_pem: "nope".into(),
            key_pem: "nope".into(),
        };
        let err = rustls_server_config(&id).err().unwrap();
        assert!(err.to_string().contains("no PEM"), "{err}");
    }
}
