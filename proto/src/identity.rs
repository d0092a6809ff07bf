//! Who a peer is: the [`Role`] and name its certificate carries, as the
//! access matrix ([`crate::access`]) reads them. Pure: reading them out of
//! a verified certificate is the transport's job (`cairn-net`'s `tls`),
//! issuing certificates the CLI's.
//!
//! A certificate names its holder's role in the subject's organizational
//! unit and its name in the common name; the cluster CA signs it, so a
//! server trusts both once TLS has verified the chain.

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
pub fn validate_cert_name(name: &str) -> Result<(), BadCertName> {
    let ok = !name.is_empty()
        && name.len() <= MAX_CERT_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(BadCertName(name.to_string()))
    }
}

/// A certificate name [`validate_cert_name`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad certificate name {0:?}: use 1 to {MAX_CERT_NAME} letters, digits, '.', '_' or '-'")]
pub struct BadCertName(pub String);

/// Who is at the other end of a verified connection, as its certificate
/// says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    pub role: Role,
    /// The certificate's common name (`meta-1`, `client`, ...).
    pub name: String,
}

impl PeerIdentity {
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
}

impl std::fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.role, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_names_are_checked() {
        for bad in [
            "",
            ".hidden",
            "a/b",
            "a b",
            "x\0",
            &"n".repeat(MAX_CERT_NAME + 1),
        ] {
            assert!(validate_cert_name(bad).is_err(), "{bad:?} was accepted");
        }
        for good in ["client", "meta-1", "chunk_2.example"] {
            validate_cert_name(good).unwrap();
        }
        assert_eq!("chunkserver".parse::<Role>(), Ok(Role::ChunkServer));
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
    }
}
