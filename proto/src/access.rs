//! Who may call what: the rule servers apply to every request, by the
//! [`Role`] in the caller's verified certificate.
//!
//! * Raft RPCs come only from metadata nodes.
//! * Registration and heartbeats come only from chunkservers, and so do
//!   chunk copies between chunkservers ([`ChunkRequest::Replicate`]) and
//!   repair's verified-copy questions ([`ChunkRequest::Confirm`]).
//! * Namespace changes and chunk uploads ([`ChunkRequest::Put`]) come only
//!   from clients and admins.
//! * Cluster administration ([`is_admin_request`]: the replication policy,
//!   draining and removing chunkservers, metadata membership, and
//!   [`ChunkRequest::Gc`]) comes only from admins: a mount's or a gateway's
//!   client certificate cannot lower the copy count or retire servers.
//! * Reads of the namespace, the ring and the status are open to every
//!   role; chunk reads to clients, admins and chunkservers.
//!
//! Pure functions of (role, request), so the whole matrix is tested here
//! and the servers only call [`check_meta`] / [`check_chunk`].

use crate::chunk_rpc::ChunkRequest;
use crate::identity::{PeerIdentity, Role};
use crate::meta_rpc::MetaRequest;
use crate::{ErrorCode, RpcError};

/// Whether `req` changes the cluster rather than the namespace: only an
/// [`Role::Admin`] certificate may send it.
pub fn is_admin_request(req: &MetaRequest) -> bool {
    matches!(req, MetaRequest::Admin(_))
}

/// Whether `role` uses the namespace and the data: clients and admins.
fn is_user(role: Role) -> bool {
    matches!(role, Role::Client | Role::Admin)
}

/// Whether `role` may send `req` to a metadata node: one rule per group.
pub fn meta_allowed(role: Role, req: &MetaRequest) -> bool {
    match req {
        MetaRequest::NsRead(_) | MetaRequest::Cluster(_) => true,
        MetaRequest::NsWrite(_) => is_user(role),
        MetaRequest::ChunkServer(_) => role == Role::ChunkServer,
        MetaRequest::Admin(_) => role == Role::Admin,
        MetaRequest::Raft { .. } => role == Role::Meta,
    }
}

/// Whether `role` may send `req` to a chunkserver.
pub fn chunk_allowed(role: Role, req: &ChunkRequest) -> bool {
    use ChunkRequest as Q;
    match req {
        Q::Put { .. } => is_user(role),
        Q::Gc { .. } => role == Role::Admin,
        Q::Replicate { .. } | Q::Confirm { .. } => role == Role::ChunkServer,
        Q::Get { .. } | Q::GetRange { .. } | Q::Have { .. } | Q::Stat | Q::ReportCorrupt { .. } => {
            is_user(role) || role == Role::ChunkServer
        }
    }
}

fn refuse(peer: &PeerIdentity, op: &str, admin_op: bool) -> RpcError {
    tracing::warn!(peer = %peer, op, "refused a request the peer's role may not make");
    let hint = if admin_op {
        "; changing the cluster needs an admin certificate (`cairn cert issue --role admin`)"
    } else {
        ""
    };
    RpcError::new(
        ErrorCode::PermissionDenied,
        format!(
            "a {} certificate may not call {op} (certificate {:?}){hint}",
            peer.role, peer.name
        ),
    )
}

/// Whether the chunkserver `peer` may speak for chunkserver `id`: only
/// the one its certificate is bound to ([`PeerIdentity::chunkserver_id`]).
pub fn acts_as(peer: &PeerIdentity, id: crate::NodeId) -> bool {
    peer.chunkserver_id() == Some(id)
}

/// [`meta_allowed`] as a result, and a chunkserver registering or
/// heartbeating only as itself; a refusal is logged.
pub fn check_meta(peer: &PeerIdentity, req: &MetaRequest) -> Result<(), RpcError> {
    if !meta_allowed(peer.role, req) {
        return Err(refuse(peer, req.op_name(), is_admin_request(req)));
    }
    match req {
        MetaRequest::ChunkServer(report) if !acts_as(peer, report.id()) => {
            let id = report.id();
            tracing::warn!(peer = %peer, claimed = id, op = req.op_name(), "refused a chunkserver speaking for another");
            Err(RpcError::new(
                ErrorCode::PermissionDenied,
                format!(
                    "certificate {:?} may not act as chunkserver {id} (a chunkserver's certificate is named chunk-<id>)",
                    peer.name
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// [`chunk_allowed`] as a result; a refusal is logged.
pub fn check_chunk(peer: &PeerIdentity, req: &ChunkRequest) -> Result<(), RpcError> {
    if chunk_allowed(peer.role, req) {
        Ok(())
    } else {
        let admin_op = matches!(req, ChunkRequest::Gc { .. });
        Err(refuse(peer, req.op_name(), admin_op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta_rpc::{
        AdminRequest, ChunkServerReport, ClusterQuery, NsRead, NsWrite, RaftRpcKind,
    };
    use crate::{ChunkId, InodeId};

    fn mkdir() -> MetaRequest {
        MetaRequest::NsWrite(NsWrite::Mkdir {
            parent: InodeId::ROOT,
            name: "d".into(),
            owner: crate::meta_rpc::Owner {
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
        })
    }

    /// A heartbeat from chunkserver `id`, all figures zero.
    fn heartbeat(id: crate::NodeId) -> MetaRequest {
        MetaRequest::ChunkServer(ChunkServerReport::Heartbeat {
            id,
            capacity_bytes: 0,
            used_bytes: 0,
            available_bytes: 0,
            full: false,
            chunks: 0,
            under_replicated: 0,
            scrub: Default::default(),
            repair: Default::default(),
            gc: Default::default(),
        })
    }

    #[test]
    fn raft_only_from_metadata_nodes() {
        let raft = MetaRequest::Raft {
            kind: RaftRpcKind::Vote,
            payload: vec![],
        };
        assert!(meta_allowed(Role::Meta, &raft));
        assert!(!meta_allowed(Role::Client, &raft));
        assert!(!meta_allowed(Role::ChunkServer, &raft));
    }

    #[test]
    fn namespace_changes_only_from_clients_and_admins() {
        assert!(meta_allowed(Role::Client, &mkdir()));
        assert!(meta_allowed(Role::Admin, &mkdir()));
        assert!(!meta_allowed(Role::ChunkServer, &mkdir()));
        assert!(!meta_allowed(Role::Meta, &mkdir()));
    }

    #[test]
    fn cluster_changes_only_from_admins() {
        let admin_ops = [
            AdminRequest::DrainChunkServer { id: 1, drain: true },
            AdminRequest::RemoveChunkServer { id: 1 },
            AdminRequest::SetReplication {
                policy: crate::meta_rpc::ReplicationPolicy {
                    copies: 1,
                    sync_copies: 1,
                },
            },
            AdminRequest::AddMetaNode {
                id: 4,
                addr: "127.0.0.1:1".into(),
            },
            AdminRequest::PromoteMetaNode { id: 4 },
            AdminRequest::RemoveMetaNode { id: 4 },
        ]
        .map(MetaRequest::Admin);
        for req in &admin_ops {
            assert!(is_admin_request(req), "{}", req.op_name());
            for role in Role::ALL {
                assert_eq!(
                    meta_allowed(role, req),
                    role == Role::Admin,
                    "{role} sending {}",
                    req.op_name()
                );
            }
        }
        assert!(!is_admin_request(&mkdir()));
        let gc = ChunkRequest::Gc { dry_run: false };
        for role in Role::ALL {
            assert_eq!(chunk_allowed(role, &gc), role == Role::Admin, "{role} gc");
        }
    }

    #[test]
    fn heartbeats_only_from_chunkservers() {
        let beat = heartbeat(1);
        assert!(meta_allowed(Role::ChunkServer, &beat));
        assert!(!meta_allowed(Role::Client, &beat));
        assert!(!meta_allowed(Role::Meta, &beat));
    }

    #[test]
    fn reads_are_open_to_every_role() {
        for role in Role::ALL {
            assert!(meta_allowed(role, &ClusterQuery::GetRing.into()));
            assert!(meta_allowed(role, &ClusterQuery::Status.into()));
            assert!(meta_allowed(
                role,
                &NsRead::GetAttr { ino: InodeId::ROOT }.into()
            ));
        }
    }

    #[test]
    fn chunk_copies_between_servers_only_from_chunkservers() {
        let id = ChunkId::of(b"x");
        let copy = ChunkRequest::Replicate { id, len: 1 };
        let put = ChunkRequest::Put {
            id,
            len: 1,
            backups: vec![],
            async_copies: vec![],
        };
        assert!(chunk_allowed(Role::ChunkServer, &copy));
        assert!(!chunk_allowed(Role::Client, &copy));
        assert!(!chunk_allowed(Role::Meta, &copy));
        let confirm = ChunkRequest::Confirm {
            ids: vec![id],
            ring_epoch: 1,
        };
        assert!(chunk_allowed(Role::ChunkServer, &confirm));
        assert!(!chunk_allowed(Role::Client, &confirm));
        assert!(!chunk_allowed(Role::Meta, &confirm));
        assert!(chunk_allowed(Role::Client, &put));
        assert!(chunk_allowed(Role::Admin, &put));
        assert!(!chunk_allowed(Role::ChunkServer, &put));
        assert!(!chunk_allowed(Role::Meta, &put));
        let get = ChunkRequest::Get { id };
        assert!(chunk_allowed(Role::Client, &get));
        assert!(chunk_allowed(Role::ChunkServer, &get));
        assert!(!chunk_allowed(Role::Meta, &get));
    }

    #[test]
    fn a_chunkserver_speaks_only_for_the_id_its_certificate_names() {
        let beat = heartbeat;
        let register = |id| {
            MetaRequest::ChunkServer(ChunkServerReport::Register {
                id,
                addr: "127.0.0.1:1".into(),
                zone: String::new(),
                capacity_bytes: 0,
            })
        };
        let peer = |name: &str| PeerIdentity {
            role: Role::ChunkServer,
            name: name.into(),
        };
        assert!(check_meta(&peer("chunk-1"), &beat(1)).is_ok());
        assert!(check_meta(&peer("chunk-1"), &register(1)).is_ok());
        for (name, id) in [
            ("rogue", 1),
            ("chunk-2", 1),
            ("chunk-01", 1),
            ("chunk-+1", 1),
            ("chunk-", 0),
            ("chunk-1x", 1),
        ] {
            for req in [beat(id), register(id)] {
                let err = check_meta(&peer(name), &req).unwrap_err();
                assert_eq!(err.code, ErrorCode::PermissionDenied, "{name} as {id}");
            }
        }
        // The binding needs the chunkserver role, whatever the name.
        let client = PeerIdentity {
            role: Role::Client,
            name: "chunk-1".into(),
        };
        assert_eq!(client.chunkserver_id(), None);
        assert_eq!(peer("chunk-0").chunkserver_id(), Some(0));
        assert_eq!(peer("chunk-42").chunkserver_id(), Some(42));
    }

    #[test]
    fn a_refusal_names_the_role_and_the_operation() {
        let peer = PeerIdentity {
            role: Role::ChunkServer,
            name: "chunk-1".into(),
        };
        let err = check_meta(&peer, &mkdir()).unwrap_err();
        assert_eq!(err.code, ErrorCode::PermissionDenied);
        assert!(err.message.contains("chunkserver"), "{}", err.message);
        assert!(err.message.contains("Mkdir"), "{}", err.message);
    }
}
