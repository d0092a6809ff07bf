//! The cluster's certificate authority, as `cairn cert` and `cairn dev`
//! run it: making the CA, and issuing each server's and client's
//! certificate with its [`Role`] in the subject's organizational unit
//! (where `cairn_net::tls::peer_identity` reads it back) and its name in
//! the common name. The only code that links rcgen: servers and clients
//! only read certificates.

use std::time::{Duration, SystemTime};

use cairn_proto::identity::{validate_cert_name, BadCertName, Role, SERVER_NAME};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

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

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("generating certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(transparent)]
    BadName(#[from] BadCertName),
}

/// The cluster CA: signs every server and client certificate.
pub struct CertificateAuthority {
    pub cert_pem: String,
    pub key_pem: String,
}

impl CertificateAuthority {
    /// Creates a new CA with a fresh key, valid for `validity`.
    pub fn generate(validity: Validity) -> Result<Self, CaError> {
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
    /// organizational unit, where the transport reads it.
    pub fn issue(
        &self,
        role: Role,
        name: &str,
        validity: Validity,
    ) -> Result<(String, String), CaError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_net::live_cert::LiveCert;
    use cairn_net::tls::{
        parse_certs, peer_identity_from_der, rustls_client_config, rustls_server_config, TlsError,
        TlsIdentity,
    };

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
            let id = peer_identity_from_der(&der).unwrap();
            assert_eq!(id.role, role);
            assert_eq!(id.name, "node-7");
        }
    }

    #[test]
    fn a_certificate_without_a_role_is_refused() {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["x".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert!(matches!(
            peer_identity_from_der(cert.der()),
            Err(TlsError::UnknownRole(_))
        ));
    }

    #[test]
    fn a_bad_name_is_not_issued() {
        let ca = CertificateAuthority::generate(Validity::days(1)).unwrap();
        for bad in ["", ".hidden", "a/b", "a b"] {
            assert!(
                matches!(
                    ca.issue(Role::Client, bad, Validity::days(1)),
                    Err(CaError::BadName(_))
                ),
                "{bad:?} was accepted"
            );
        }
    }
}
