//! Raft RPCs between metadata nodes, over our QUIC framing.
//!
//! openraft's request is postcard-encoded into [`MetaRequest::Raft`]; the
//! answer carries postcard of `Result<Response, RaftError>`.

use cairn_net::{call, ConnPool, NetError};
use cairn_proto::frame::MAX_FRAME_LEN;
use cairn_proto::meta_rpc::{MetaCall, MetaRequest, MetaResponse, RaftRpcKind};
use cairn_proto::RpcError;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::raft_types::{NodeId, TypeConfig};
use crate::space_guard::SpaceGuard;

/// Limit on Raft frames (a batch of entries can carry large commits).
pub const MAX_RAFT_FRAME: usize = 4 * MAX_FRAME_LEN;

/// Makes one [`QuicPeer`] per target node, sharing connections.
pub struct QuicNetwork {
    pub pool: ConnPool,
}

pub struct QuicPeer {
    pool: ConnPool,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for QuicNetwork {
    type Network = QuicPeer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> QuicPeer {
        QuicPeer {
            pool: self.pool.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

/// A failure of the remote side outside Raft (bad frame, wrong reply).
#[derive(Debug, thiserror::Error)]
#[error("raft rpc to node {target}: {message}")]
struct PeerError {
    target: NodeId,
    message: String,
}

impl QuicPeer {
    async fn send<Q, R, E>(
        &mut self,
        kind: RaftRpcKind,
        req: &Q,
    ) -> Result<R, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Q: Serialize,
        R: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let payload =
            postcard::to_allocvec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let conn = self
            .pool
            .get(&self.addr)
            .await
            .map_err(|e| self.net_err(e))?;
        let msg = MetaCall {
            session: None,
            req: MetaRequest::Raft { kind, payload },
            follower_read: false,
            request_id: cairn_proto::trace::current(),
        };
        let (resp, _) = call::<_, MetaResponse>(&conn, &msg, &[], MAX_RAFT_FRAME)
            .await
            .map_err(|e| self.net_err(e))?;
        let bytes = match resp {
            Ok(MetaResponse::Raft(b)) => b,
            Ok(other) => return Err(self.peer_err(format!("unexpected reply {other:?}"))),
            Err(RpcError { message, .. }) => return Err(self.peer_err(message)),
        };
        let res: Result<R, RaftError<NodeId, E>> = postcard::from_bytes(&bytes)
            .map_err(|e| self.peer_err(format!("undecodable reply: {e}")))?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    fn net_err<E: std::error::Error>(
        &self,
        e: NetError,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        if e.is_unreachable() {
            self.pool.forget(&self.addr);
            RPCError::Unreachable(Unreachable::new(&e))
        } else {
            RPCError::Network(NetworkError::new(&e))
        }
    }

    fn peer_err<E: std::error::Error>(
        &self,
        message: String,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        RPCError::Network(NetworkError::new(&PeerError {
            target: self.target,
            message,
        }))
    }
}

impl RaftNetwork<TypeConfig> for QuicPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.send(RaftRpcKind::AppendEntries, &rpc).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send(RaftRpcKind::InstallSnapshot, &rpc).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.send(RaftRpcKind::Vote, &rpc).await
    }
}

/// Asks the member at `addr` whether its disk is below its free-space
/// reserve ([`RaftRpcKind::DiskSpace`]): its free bytes if so.
pub async fn ask_disk_space(pool: &ConnPool, addr: &str) -> Result<Option<u64>, String> {
    let conn = pool.get(addr).await.map_err(|e| {
        if e.is_unreachable() {
            pool.forget(addr);
        }
        e.to_string()
    })?;
    let msg = MetaCall {
        session: None,
        req: MetaRequest::Raft {
            kind: RaftRpcKind::DiskSpace,
            payload: Vec::new(),
        },
        follower_read: false,
        request_id: cairn_proto::trace::current(),
    };
    let (resp, _) = call::<_, MetaResponse>(&conn, &msg, &[], MAX_FRAME_LEN)
        .await
        .map_err(|e| e.to_string())?;
    match resp {
        Ok(MetaResponse::Raft(b)) => {
            postcard::from_bytes(&b).map_err(|e| format!("undecodable disk space: {e}"))
        }
        Ok(other) => Err(format!("unexpected reply {other:?}")),
        Err(e) => Err(e.message),
    }
}

/// Serves one Raft RPC from a peer: decodes, hands it to openraft, encodes
/// the result. [`RaftRpcKind::DiskSpace`] is answered from `space`.
pub async fn handle_raft(
    raft: &crate::raft_types::Raft,
    space: &SpaceGuard,
    kind: RaftRpcKind,
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
        postcard::to_allocvec(v).map_err(|e| e.to_string())
    }
    let bad = |e: postcard::Error| format!("undecodable {kind:?}: {e}");
    match kind {
        RaftRpcKind::AppendEntries => enc(&raft
            .append_entries(postcard::from_bytes(payload).map_err(bad)?)
            .await),
        RaftRpcKind::Vote => enc(&raft.vote(postcard::from_bytes(payload).map_err(bad)?).await),
        RaftRpcKind::InstallSnapshot => enc(&raft
            .install_snapshot(postcard::from_bytes(payload).map_err(bad)?)
            .await),
        RaftRpcKind::DiskSpace => enc(&space.low()),
    }
}
