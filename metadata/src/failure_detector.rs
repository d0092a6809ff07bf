//! The leader's failure detector: every few seconds, judge each registered
//! chunkserver by how long it has been silent ([`liveness::verdict`]) and
//! turn the verdict into a Raft command — mark it down, up again, or remove
//! it from the ring.
//!
//! Silence is measured from the later of its last heartbeat and the moment
//! this node became leader, so a new leader (which has heard nobody yet)
//! gives every server a full timeout before judging it. Removals wait
//! while most servers are silent at once ([`may_remove`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_proto::NodeId;
use tokio_util::sync::CancellationToken;

use crate::command::{Command, RegistryChange};
use crate::kv::{Cf, KvRead};
use crate::liveness::{may_remove, verdict, Verdict};
use crate::namespace;
use crate::schema::{decode, ServerRecord};
use crate::service::MetaService;

/// Runs until `cancel` fires; acts only while this node is the leader.
pub async fn run(service: Arc<MetaService>, cancel: CancellationToken) {
    let period = (service.down_after / 4).clamp(Duration::from_millis(250), Duration::from_secs(2));
    let mut leader_since: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        if !service.is_leader() {
            leader_since = None;
            continue;
        }
        let since = *leader_since.get_or_insert_with(Instant::now);
        match judge(&service, since, Instant::now()) {
            Ok(actions) => {
                for (id, v) in actions {
                    act(&service, id, v).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "failure detector could not read the registry"),
        }
    }
}

/// The verdicts for every registered chunkserver at `now`.
fn judge(
    service: &MetaService,
    leader_since: Instant,
    now: Instant,
) -> Result<Vec<(NodeId, Verdict)>, namespace::NsError> {
    let flags = namespace::server_flags(&service.kv)?;
    let mut out = Vec::new();
    let (mut up, mut total) = (0, 0);
    for (_, v) in service.kv.scan(Cf::Servers, &[], &[0xff; 9], usize::MAX)? {
        let s: ServerRecord = decode(&v)?;
        let heard = service
            .liveness
            .last(s.id)
            .map_or(leader_since, |b| b.at.max(leader_since));
        let down = flags.get(&s.id).is_some_and(|f| f.down);
        let silent_for = now.saturating_duration_since(heard);
        total += 1;
        if silent_for < service.down_after {
            up += 1;
        }
        if let Some(v) = verdict(down, silent_for, service.down_after, service.remove_after) {
            out.push((s.id, v));
        }
    }
    if !may_remove(up, total) && out.iter().any(|(_, v)| *v == Verdict::Remove) {
        tracing::warn!(
            up,
            total,
            "most chunkservers are silent: not removing any from the ring"
        );
        out.retain(|(_, v)| *v != Verdict::Remove);
    }
    Ok(out)
}

async fn act(service: &MetaService, id: NodeId, v: Verdict) {
    let cmd = match v {
        Verdict::MarkDown => {
            tracing::warn!(chunkserver = id, "missed heartbeats: marking it down");
            Command::Registry(RegistryChange::SetDown { id, down: true })
        }
        Verdict::MarkUp => {
            tracing::info!(chunkserver = id, "heard from again: marking it up");
            Command::Registry(RegistryChange::SetDown { id, down: false })
        }
        Verdict::Remove => {
            tracing::warn!(
                chunkserver = id,
                "silent past the removal timeout: removing it from the ring"
            );
            Command::Registry(RegistryChange::Remove { id })
        }
    };
    if let Err(e) = service.propose(cmd).await {
        tracing::warn!(chunkserver = id, error = %e, "failure detector command not applied");
    }
}
