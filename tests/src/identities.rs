//! TLS identities for tests that make endpoints themselves (not through a
//! cluster): a certificate from a test CA, held in memory.

use cairn::ca::{CertificateAuthority, Validity};
use cairn_net::tls::TlsIdentity;
use cairn_proto::identity::Role;

/// A day-long certificate for `name` in `role` from `ca`, as an identity.
pub fn identity(ca: &CertificateAuthority, role: Role, name: &str) -> TlsIdentity {
    let (cert_pem, key_pem) = ca.issue(role, name, Validity::days(1)).expect("issue");
    TlsIdentity {
        ca_pem: ca.cert_pem.clone(),
        cert_pem,
        key_pem,
        source: None,
    }
}
