//! The certificate an endpoint presents, replaced without a restart.
//!
//! Every endpoint presents its certificate through one [`LiveCert`], as
//! both server and client (rustls' `ResolvesServerCert` and
//! `ResolvesClientCert`). When the endpoint was loaded from files, a
//! watcher task re-reads them every [`RELOAD_EVERY`]; a new pair is taken
//! only if its key matches its certificate, the cluster CA signed it and it
//! is valid now — else it is refused, logged, and the old one kept, so a
//! mistaken copy never cuts a server off. New handshakes present the new
//! certificate; connections already open keep the old one until they end
//! (or it expires, when the peer closes them).
//!
//! The CA itself is not reloaded: trusting a new CA means restarting.

use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use rustls::sign::CertifiedKey;

use crate::tls::{CertInfo, TlsError, TlsIdentity, TlsPaths};

/// How often the watcher looks at the certificate files.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// The certificate an endpoint presents now.
#[derive(Debug)]
pub struct LiveCert {
    current: RwLock<Arc<CertifiedKey>>,
    /// The CA the replacement must be signed by.
    ca_pem: String,
}

impl LiveCert {
    /// The certificate and key of `id`.
    pub fn new(id: &TlsIdentity) -> Result<Arc<Self>, TlsError> {
        Ok(Arc::new(LiveCert {
            current: RwLock::new(Arc::new(certified(id)?)),
            ca_pem: id.ca_pem.clone(),
        }))
    }

    /// The certificate presented now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Takes `cert_pem` and `key_pem` if they are a certificate the CA
    /// signed, valid now, with its key; else refuses and keeps the current
    /// one. Returns whether the certificate changed.
    pub fn replace(&self, cert_pem: &str, key_pem: &str) -> Result<bool, TlsError> {
        let info = CertInfo::read(cert_pem, Some(&self.ca_pem))?;
        if info.signed_by_ca != Some(true) {
            return Err(TlsError::Rejected(format!(
                "{:?} is not signed by the cluster CA",
                info.name
            )));
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if now < info.not_before || now > info.not_after {
            return Err(TlsError::Rejected(format!(
                "{:?} is not valid now (valid from {} to {}, seconds since the epoch)",
                info.name, info.not_before, info.not_after
            )));
        }
        let next = certified(&TlsIdentity {
            ca_pem: self.ca_pem.clone(),
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            source: None,
        })?;
        let mut current = match self.current.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if current.cert == next.cert {
            return Ok(false);
        }
        *current = Arc::new(next);
        Ok(true)
    }

    /// Re-reads the certificate and key `files` names every
    /// [`RELOAD_EVERY`] until this certificate is dropped (its endpoint
    /// closed); a change is logged, and so is a refused replacement (once
    /// per content).
    pub fn watch(self: &Arc<Self>, files: TlsPaths) {
        let weak: Weak<LiveCert> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut last_refused: Option<(String, String)> = None;
            loop {
                tokio::time::sleep(RELOAD_EVERY).await;
                let Some(live) = weak.upgrade() else { return };
                let read = |p: &PathBuf| std::fs::read_to_string(p);
                let (cert, key) = match (read(&files.cert), read(&files.key)) {
                    (Ok(c), Ok(k)) => (c, k),
                    // Mid-copy or briefly missing: try again next time.
                    _ => continue,
                };
                if last_refused.as_ref() == Some(&(cert.clone(), key.clone())) {
                    continue;
                }
                match live.replace(&cert, &key) {
                    Ok(true) => {
                        last_refused = None;
                        tracing::info!(cert = %files.cert.display(), "reloaded the certificate; new connections present it");
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(cert = %files.cert.display(), error = %e, "refused the replacement certificate; keeping the current one");
                        last_refused = Some((cert, key));
                    }
                }
            }
        });
    }
}

impl rustls::server::ResolvesServerCert for LiveCert {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl rustls::client::ResolvesClientCert for LiveCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// `id`'s chain and key, the key checked against the certificate.
fn certified(id: &TlsIdentity) -> Result<CertifiedKey, TlsError> {
    let (certs, key) = id.chain()?;
    Ok(CertifiedKey::from_der(certs, key, &crate::tls::provider())?)
}

#[cfg(test)]
mod tests {
    use super::*;

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
