//! The leader's look at the other members' disks: every second it asks
//! each member whether it is below its free-space reserve
//! ([`crate::network::ask_disk_space`]) and records the answers in the
//! [`crate::space_guard::SpaceGuard`], so that writes are refused while any
//! member is low — a follower that ran out of space appending would stop.
//! A member that does not answer within a second keeps its last answer
//! until that ages out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_net::ConnPool;
use tokio_util::sync::CancellationToken;

use crate::network::ask_disk_space;
use crate::service::MetaService;

const ASK_EVERY: Duration = Duration::from_secs(1);
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// Runs until `cancel` fires; asks only while this node is the leader.
pub async fn run(service: Arc<MetaService>, pool: ConnPool, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(ASK_EVERY) => {}
        }
        if !service.is_leader() {
            service.space.clear_peers();
            continue;
        }
        let members: Vec<(u64, String)> = {
            let m = service.raft.metrics().borrow().clone();
            m.membership_config
                .membership()
                .nodes()
                .filter(|(id, _)| **id != service.id)
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect()
        };
        let answers = futures::future::join_all(
            members
                .iter()
                .map(|(_, addr)| tokio::time::timeout(ANSWER_WITHIN, ask_disk_space(&pool, addr))),
        )
        .await;
        for ((id, _), answer) in members.iter().zip(answers) {
            match answer {
                Ok(Ok(low)) => {
                    if let Some(free) = low {
                        tracing::warn!(node = id, free, "metadata member below its disk reserve");
                    }
                    service.space.record_peer(*id, low, Instant::now());
                }
                Ok(Err(e)) => tracing::debug!(node = id, error = %e, "disk space not known"),
                Err(_) => tracing::debug!(node = id, "disk space not answered in time"),
            }
        }
    }
}
