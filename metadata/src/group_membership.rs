//! Changing who is in the metadata Raft group, online: add a node as a
//! learner, promote it to voter once it has caught up, remove a node.
//! Each change is one openraft membership change (joint consensus), run
//! on the leader.

use std::collections::{BTreeMap, BTreeSet};

use cairn_proto::meta_rpc::MAX_PROMOTE_LAG;
use cairn_proto::{ErrorCode, NodeId, RpcError};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};

use crate::service::{forward, MetaService};

/// Longest node address accepted (`host:port`).
const MAX_ADDR_LEN: usize = 255;

fn change_err(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> RpcError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => forward(f),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
            RpcError::new(ErrorCode::FailedPrecondition, c.to_string())
        }
        RaftError::Fatal(f) => RpcError::new(ErrorCode::Unavailable, f.to_string()),
    }
}

/// Checks a node address from a user: `host:port`, bounded, printable.
pub fn validate_addr(addr: &str) -> Result<(), RpcError> {
    let bad = |why: &str| {
        Err(RpcError::new(
            ErrorCode::InvalidRequest,
            format!("node address {addr:?}: {why}"),
        ))
    };
    if addr.is_empty() || addr.len() > MAX_ADDR_LEN {
        return bad("must be 1 to 255 characters");
    }
    if addr.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain spaces or control characters");
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => bad("expected host:port"),
    }
}

impl MetaService {
    fn members(&self) -> (BTreeSet<NodeId>, BTreeMap<NodeId, BasicNode>) {
        let m = self.raft.metrics().borrow().clone();
        let mem = m.membership_config.membership();
        (
            mem.voter_ids().collect(),
            mem.nodes().map(|(id, n)| (*id, n.clone())).collect(),
        )
    }

    /// Adds `id` at `addr` as a learner. Adding it again with the same
    /// address is a no-op.
    pub async fn add_meta_node(&self, id: NodeId, addr: String) -> Result<(), RpcError> {
        self.ensure_leader()?;
        if id == 0 {
            return Err(RpcError::new(
                ErrorCode::InvalidRequest,
                "node id must be non-zero",
            ));
        }
        validate_addr(&addr)?;
        let (_, nodes) = self.members();
        if let Some(n) = nodes.get(&id) {
            if n.addr == addr {
                return Ok(());
            }
            return Err(RpcError::new(
                ErrorCode::AlreadyExists,
                format!(
                    "metadata node {id} is already a member, at {}; remove it first",
                    n.addr
                ),
            ));
        }
        if let Some((other, _)) = nodes.iter().find(|(_, n)| n.addr == addr) {
            return Err(RpcError::new(
                ErrorCode::AlreadyExists,
                format!("{addr} is already metadata node {other}"),
            ));
        }
        self.raft
            .add_learner(id, BasicNode { addr }, false)
            .await
            .map_err(change_err)?;
        tracing::info!(id, "metadata node added as a learner");
        Ok(())
    }

    /// Makes learner `id` a voter once it is within [`MAX_PROMOTE_LAG`]
    /// entries of the leader's log. A voter already: a no-op.
    pub async fn promote_meta_node(&self, id: NodeId) -> Result<(), RpcError> {
        self.ensure_leader()?;
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        if membership.voter_ids().any(|v| v == id) {
            return Ok(());
        }
        if membership.get_node(&id).is_none() {
            return Err(RpcError::new(
                ErrorCode::NotFound,
                format!("metadata node {id} is not a member; add it first"),
            ));
        }
        let matched = m
            .replication
            .as_ref()
            .and_then(|r| r.get(&id).copied().flatten())
            .map(|l| l.index);
        let lag = matched
            .zip(m.last_log_index)
            .map(|(have, last)| last.saturating_sub(have));
        match lag {
            Some(lag) if lag <= MAX_PROMOTE_LAG => {}
            Some(lag) => {
                return Err(RpcError::new(
                    ErrorCode::FailedPrecondition,
                    format!("metadata node {id} is still catching up ({lag} entries behind)"),
                ))
            }
            None => {
                return Err(RpcError::new(
                    ErrorCode::FailedPrecondition,
                    format!("metadata node {id} has not answered the leader yet"),
                ))
            }
        }
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(change_err)?;
        tracing::info!(id, "metadata node promoted to voter");
        Ok(())
    }

    /// Removes `id` from the group; refused for the last voter.
    pub async fn remove_meta_node(&self, id: NodeId) -> Result<(), RpcError> {
        self.ensure_leader()?;
        let (voters, nodes) = self.members();
        if !nodes.contains_key(&id) {
            return Err(RpcError::new(
                ErrorCode::NotFound,
                format!("metadata node {id} is not a member"),
            ));
        }
        let change = if voters.contains(&id) {
            if voters.len() == 1 {
                return Err(RpcError::new(
                    ErrorCode::FailedPrecondition,
                    format!("metadata node {id} is the only voter; the group needs one"),
                ));
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.raft
            .change_membership(change, false)
            .await
            .map_err(change_err)?;
        tracing::info!(id, "metadata node removed from the group");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        for ok in ["127.0.0.1:7000", "meta-4.example:1", "[::1]:9000"] {
            assert!(validate_addr(ok).is_ok(), "{ok}");
        }
        let long = format!("{}:1", "a".repeat(300));
        for bad in [
            "",
            "host",
            ":80",
            "h:0",
            "h:99999",
            "h :1",
            "h:\n1",
            long.as_str(),
        ] {
            assert!(validate_addr(bad).is_err(), "{bad:?} accepted");
        }
    }
}
