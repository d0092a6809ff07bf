//! Calling the metadata group: find the leader, follow `NotLeader`
//! redirects, retry through failover with bounded attempts and back-off.
//! Shared by the client library and the chunkservers.
//!
//! Every write carries a [`Session`] (this caller's random id and a fresh
//! sequence number, the same on every attempt), so a write whose answer
//! was lost — a timeout, a leader killed mid-request — is sent again
//! safely: the metadata group applies it once and answers repeats with the
//! first result.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_proto::frame::MAX_FRAME_LEN;
use cairn_proto::meta_rpc::{ClusterQuery, MetaGroup, MetaRequest, MetaResponse, Session};
use cairn_proto::{ErrorCode, RpcError};

use crate::avoid::{AvoidList, Backoff};
use crate::error::NetError;
use crate::exchange::call;
use crate::pool::ConnPool;

/// Attempts per call before giving up.
const MAX_ATTEMPTS: u32 = 12;
/// How long a call keeps waiting while the group answers but has no leader
/// (an election, slow under load) before those waits count as attempts: a
/// reachable group that is choosing a leader is waited for, not failed.
const ELECTION_PATIENCE: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_millis(800);
/// How long one attempt may wait for its answer before it is sent again
/// (writes are idempotent through their session). A commit waits for an
/// fsync on a majority; a leader that died mid-request is given up on
/// after this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// A write unanswered this long makes the caller check whether leadership
/// moved (see [`MetaCaller::call`]); a leader killed mid-request is left
/// after about an election, not after [`ATTEMPT_TIMEOUT`].
const LEADER_CHECK_AFTER: Duration = Duration::from_millis(150);
/// Then how often it checks again while the answer is still missing (one
/// small probe each): a new leader is found within this of its election.
const LEADER_CHECK_EVERY: Duration = Duration::from_millis(40);
/// How long asking every node at once who leads may take (first contact,
/// or no leader known).
const DISCOVER_TIMEOUT: Duration = Duration::from_millis(600);
/// While discovering, how soon a node that knew no leader is asked again.
const DISCOVER_REASK: Duration = Duration::from_millis(40);
/// How long one "who leads?" probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
/// How long a node that failed at the network level is asked last (and not
/// followed as a redirect) by later calls too: past an election, short of
/// a restart.
const AVOID_FOR: Duration = Duration::from_secs(2);

/// Why a metadata call failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaCallError {
    /// The metadata service answered with an error.
    #[error("{0}")]
    Rpc(#[from] RpcError),
    /// No metadata node could be reached.
    #[error("metadata service unreachable ({addrs}): {last}")]
    Unreachable { addrs: String, last: String },
}

/// A handle on the metadata group, remembering who leads.
pub struct MetaCaller {
    pool: ConnPool,
    addrs: Vec<String>,
    leader: Mutex<Option<String>>,
    /// Nodes that recently failed at the network level, until when.
    avoid: Mutex<AvoidList>,
    /// This caller's session id, and the last sequence number used.
    client: u64,
    seq: AtomicU64,
    /// Send reads that allow it to any node (see
    /// [`MetaCaller::with_follower_reads`]).
    follower_reads: bool,
    /// Where the next follower read starts, spreading them over the nodes.
    next_reader: AtomicU64,
}

/// [`cairn_proto::meta_rpc::MetaCall`] as sent, borrowing the request (the same
/// bytes on the wire).
#[derive(serde::Serialize)]
struct MetaCallRef<'a> {
    session: Option<Session>,
    req: &'a MetaRequest,
    follower_read: bool,
    request_id: u64,
}

/// A session id unlikely to collide with any other caller's.
fn random_client_id() -> u64 {
    cairn_proto::trace::random_id()
}

impl MetaCaller {
    /// `addrs`: every metadata node's `host:port` (any order).
    pub fn new(pool: ConnPool, addrs: Vec<String>) -> Self {
        MetaCaller {
            pool,
            addrs,
            leader: Mutex::new(None),
            avoid: Mutex::new(AvoidList::default()),
            client: random_client_id(),
            seq: AtomicU64::new(0),
            follower_reads: false,
            next_reader: AtomicU64::new(0),
        }
    }

    /// Opts into follower reads: lookups, attributes, listings, extents and
    /// the ring are answered by any node from its applied state, spreading
    /// load off the leader. Such a read may miss writes acknowledged in the
    /// last moments (the node's replication lag), including this caller's
    /// own; everything else stays linearizable.
    pub fn with_follower_reads(mut self, on: bool) -> Self {
        self.follower_reads = on;
        self
    }

    fn avoid(&self) -> std::sync::MutexGuard<'_, AvoidList> {
        // Plain values replaced whole; a poisoned list is still valid.
        self.avoid.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn avoided(&self) -> Vec<String> {
        self.avoid().current(Instant::now())
    }

    fn mark_failed(&self, addr: &str) {
        self.avoid().mark(addr, Instant::now(), AVOID_FOR);
    }

    fn mark_ok(&self, addr: &str) {
        self.avoid().clear(addr);
    }

    pub fn pool(&self) -> &ConnPool {
        &self.pool
    }

    fn hint(&self) -> Option<String> {
        self.leader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_hint(&self, addr: Option<String>) {
        *self.leader.lock().unwrap_or_else(|p| p.into_inner()) = addr;
    }

    /// Sends `req` (of any group) and answers that group's reply; a reply
    /// of another group is an `Internal` error, not a guess.
    pub async fn ask<G: MetaGroup>(&self, req: G) -> Result<G::Reply, MetaCallError> {
        let req: MetaRequest = req.into();
        let answer = self.call(&req).await?;
        let got = answer.group_name();
        G::reply(answer).ok_or_else(|| MetaCallError::Rpc(wrong_reply(&req, got)))
    }

    /// Sends `req` to the leader (as far as known), following redirects.
    pub async fn call(&self, req: &MetaRequest) -> Result<MetaResponse, MetaCallError> {
        if self.follower_reads && req.serves_follower_reads() {
            if let Some(answer) = self.follower_read(req).await {
                return answer;
            }
        }
        let call = MetaCallRef {
            follower_read: false,
            request_id: cairn_proto::trace::current(),
            session: (!req.is_read_only()).then(|| Session {
                client: self.client,
                seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            }),
            req,
        };
        let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        let mut last = String::from("no address configured");
        let mut next_addr = 0usize;
        // Nodes that failed at the network level lately: asked last, and
        // never followed as a redirect (a follower may still name a leader
        // that just died).
        let mut failed: Vec<String> = self.avoided();
        let started = Instant::now();
        let mut attempts = 0u32;
        while attempts < MAX_ATTEMPTS {
            attempts += 1;
            if self.addrs.len() > 1 && self.hint().is_none_or(|h| failed.contains(&h)) {
                let (leader, silent) = self.discover(&failed).await;
                for a in silent {
                    if !failed.contains(&a) {
                        failed.push(a);
                    }
                }
                if let Some(leader) = leader {
                    self.set_hint(Some(leader));
                }
            }
            let Some(addr) = next_node(self.hint(), &failed, &self.addrs, &mut next_addr) else {
                break;
            };
            match self.call_one(&addr, &call).await {
                Ok(Ok(resp)) => {
                    self.mark_ok(&addr);
                    self.set_hint(Some(addr));
                    return Ok(resp);
                }
                Ok(Err(e)) if e.code == ErrorCode::NotLeader => {
                    let redirect = e.leader.as_ref().map(|(_, a)| a.clone());
                    last = format!("{addr}: not the leader");
                    let dead = redirect.as_ref().is_some_and(|r| failed.contains(r));
                    if redirect.is_none() || redirect.as_deref() == Some(addr.as_str()) || dead {
                        // Election in progress: wait, then ask around.
                        if started.elapsed() < ELECTION_PATIENCE {
                            attempts -= 1;
                        }
                        self.set_hint(None);
                        tokio::time::sleep(backoff.next_wait()).await;
                        // After a wait, a node that failed may have come
                        // back or been slow only once (a timed-out leader
                        // stays the leader): ask everyone again rather
                        // than wait on the one node still answering.
                        failed.clear();
                    } else {
                        self.set_hint(redirect);
                    }
                }
                Ok(Err(e)) if e.code == ErrorCode::Unavailable => {
                    last = format!("{addr}: {}", e.message);
                    if started.elapsed() < ELECTION_PATIENCE {
                        attempts -= 1;
                    }
                    self.set_hint(None);
                    tokio::time::sleep(backoff.next_wait()).await;
                    failed.clear();
                }
                Ok(Err(e)) => return Err(MetaCallError::Rpc(e)),
                Err(e @ NetError::Timeout(_)) => {
                    // Resend under the same session: to the new leader if
                    // leadership moved while waiting (the hint names it),
                    // else to the same, slow node on a fresh connection (a
                    // dead one then fails to connect and is passed over).
                    last = format!("{addr}: {e}");
                    self.pool.forget(&addr);
                    if self.hint().as_deref() != Some(addr.as_str()) && !failed.contains(&addr) {
                        failed.push(addr.clone());
                    }
                }
                Err(e) => {
                    last = format!("{addr}: {e}");
                    self.pool.forget(&addr);
                    self.set_hint(None);
                    self.mark_failed(&addr);
                    if !failed.contains(&addr) {
                        failed.push(addr.clone());
                    }
                    // With one node there is nobody else to try: fail fast
                    // rather than spend the whole budget on a dead address.
                    if self.addrs.len() <= 1 && e.is_unreachable() {
                        break;
                    }
                    tokio::time::sleep(backoff.next_wait()).await;
                }
            }
        }
        Err(MetaCallError::Unreachable {
            addrs: self.addrs.join(", "),
            last,
        })
    }

    /// One follower read: each node once, from a rotating start, skipping
    /// recently failed ones. `None` when no node could answer (the caller
    /// then goes through the leader).
    async fn follower_read(
        &self,
        req: &MetaRequest,
    ) -> Option<Result<MetaResponse, MetaCallError>> {
        let call = MetaCallRef {
            session: None,
            req,
            follower_read: true,
            request_id: cairn_proto::trace::current(),
        };
        let n = self.addrs.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) as usize;
        let avoided = self.avoided();
        for k in 0..n {
            let addr = &self.addrs[(start + k) % n];
            if avoided.contains(addr) {
                continue;
            }
            match self.call_one(addr, &call).await {
                Ok(Ok(resp)) => return Some(Ok(resp)),
                Ok(Err(e))
                    if e.code == ErrorCode::Unavailable || e.code == ErrorCode::NotLeader => {}
                Ok(Err(e)) => return Some(Err(MetaCallError::Rpc(e))),
                Err(_) => {
                    self.pool.forget(addr);
                    self.mark_failed(addr);
                }
            }
        }
        None
    }

    async fn call_one(
        &self,
        addr: &str,
        req: &MetaCallRef<'_>,
    ) -> Result<Result<MetaResponse, RpcError>, NetError> {
        let conn = self.pool.get(addr).await?;
        let attempt = call(&conn, req, &[], MAX_FRAME_LEN);
        tokio::pin!(attempt);
        let deadline = tokio::time::sleep(ATTEMPT_TIMEOUT);
        tokio::pin!(deadline);
        let mut check = Box::pin(tokio::time::sleep(LEADER_CHECK_AFTER));
        loop {
            tokio::select! {
                r = &mut attempt => return Ok(r?.0),
                _ = &mut deadline => return Err(NetError::Timeout(ATTEMPT_TIMEOUT)),
                _ = &mut check => {
                    // A slow answer: has another node become leader (this
                    // one died or was deposed)? Then stop waiting on it.
                    if let Some(now) = self.leader_elsewhere(addr).await {
                        self.mark_ok(&now);
                        self.set_hint(Some(now));
                        return Err(NetError::Timeout(LEADER_CHECK_AFTER));
                    }
                    check = Box::pin(tokio::time::sleep(LEADER_CHECK_EVERY));
                }
            }
        }
    }

    /// Asks the other nodes, briefly, who leads; `Some(addr)` if one of
    /// them names (or is) a leader other than `waiting_on`.
    async fn leader_elsewhere(&self, waiting_on: &str) -> Option<String> {
        for other in self.addrs.iter().filter(|a| *a != waiting_on) {
            match ask_leader(&self.pool, other, PROBE_TIMEOUT).await.flatten() {
                Some(l) if l != waiting_on => return Some(l),
                Some(_) => return None, // still the leader: keep waiting
                None => {}
            }
        }
        None
    }

    /// Asks every node but `skip` at once, for at most [`DISCOVER_TIMEOUT`],
    /// who leads; a node that answers without being the leader (an
    /// election is on) is asked again every [`DISCOVER_REASK`]. Returns as
    /// soon as a node answers as the leader itself (a follower's word is
    /// not taken: right after a crash it still names the dead leader), with
    /// the nodes that did not answer at all.
    async fn discover(&self, skip: &[String]) -> (Option<String>, Vec<String>) {
        let mut asks = tokio::task::JoinSet::new();
        let mut silent: Vec<String> = Vec::new();
        let started = Instant::now();
        let ask = |asks: &mut tokio::task::JoinSet<_>, addr: String, after: Duration| {
            let pool = self.pool.clone();
            let limit = DISCOVER_TIMEOUT.saturating_sub(started.elapsed() + after);
            asks.spawn(async move {
                tokio::time::sleep(after).await;
                let heard = ask_leader(&pool, &addr, limit).await;
                (addr, heard)
            });
        };
        for addr in self.addrs.iter().filter(|a| !skip.contains(a)) {
            silent.push(addr.clone());
            ask(&mut asks, addr.clone(), Duration::ZERO);
        }
        let deadline = tokio::time::sleep(DISCOVER_TIMEOUT);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = asks.join_next() => match next {
                    None => break,
                    Some(Ok((addr, Some(named)))) => {
                        silent.retain(|a| *a != addr);
                        if named.as_deref() == Some(addr.as_str()) {
                            return (Some(addr), silent);
                        }
                        if started.elapsed() + DISCOVER_REASK < DISCOVER_TIMEOUT {
                            ask(&mut asks, addr, DISCOVER_REASK);
                        }
                    }
                    Some(_) => {}
                },
                _ = &mut deadline => break,
            }
        }
        (None, silent)
    }
}

/// Which node to ask next: the leader as far as known (`hint`) unless it
/// failed during this call; else the first configured address from
/// `*next` on that has not failed (any, if all have), `*next` moving past
/// it so that the next pick tries the one after. `None`: no address.
fn next_node(
    hint: Option<String>,
    failed: &[String],
    addrs: &[String],
    next: &mut usize,
) -> Option<String> {
    if let Some(a) = hint.filter(|a| !failed.contains(a)) {
        return Some(a);
    }
    let n = addrs.len();
    if n == 0 {
        return None;
    }
    let pick = (0..n)
        .map(|k| &addrs[(*next + k) % n])
        .find(|a| !failed.contains(a))
        .unwrap_or(&addrs[*next % n])
        .clone();
    *next = addrs.iter().position(|a| *a == pick).unwrap_or(0) + 1;
    Some(pick)
}

/// The error for `req` answered with a reply of another group.
pub fn wrong_reply(req: &MetaRequest, got: &str) -> RpcError {
    RpcError::new(
        ErrorCode::Internal,
        format!("metadata answered {} with a {got} reply", req.op_name()),
    )
}

/// Asks `addr` who leads. `None`: no answer within `limit`. `Some(None)`:
/// it answered but knows no leader (an election). `Some(Some(l))`: `l`
/// leads — `addr` itself when it answered a linearizable read.
async fn ask_leader(pool: &ConnPool, addr: &str, limit: Duration) -> Option<Option<String>> {
    let probe = MetaCallRef {
        session: None,
        req: &MetaRequest::Cluster(ClusterQuery::GetRing),
        follower_read: false,
        request_id: cairn_proto::trace::current(),
    };
    let asked = tokio::time::timeout(limit, async {
        let conn = pool.get(addr).await.ok()?;
        call::<_, MetaResponse>(&conn, &probe, &[], MAX_FRAME_LEN)
            .await
            .ok()
            .map(|(r, _)| r)
    })
    .await;
    match asked {
        Ok(Some(Ok(_))) => Some(Some(addr.to_string())),
        Ok(Some(Err(e))) if e.code == ErrorCode::NotLeader => Some(e.leader.map(|(_, a)| a)),
        Ok(Some(Err(_))) => Some(None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_proto::meta_rpc::{MetaCall, NsWrite, Owner};

    #[test]
    fn the_borrowed_call_decodes_as_a_meta_call() {
        let req = MetaRequest::NsWrite(NsWrite::Mkdir {
            parent: cairn_proto::InodeId::ROOT,
            name: "x".into(),
            owner: Owner {
                mode: 0o755,
                uid: 1,
                gid: 2,
            },
        });
        let session = Some(Session { client: 9, seq: 3 });
        let bytes = postcard::to_allocvec(&MetaCallRef {
            session,
            req: &req,
            follower_read: true,
            request_id: 77,
        })
        .expect("encodes");
        let decoded: MetaCall = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(
            decoded,
            MetaCall {
                session,
                req,
                follower_read: true,
                request_id: 77,
            }
        );
    }

    #[test]
    fn the_leader_is_asked_first_then_the_others_in_turn() {
        let addrs: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let mut next = 0;
        let pick = |hint: Option<&str>, failed: &[&str], next: &mut usize| {
            let failed: Vec<String> = failed.iter().map(|f| f.to_string()).collect();
            next_node(hint.map(String::from), &failed, &addrs, next)
        };
        assert_eq!(pick(Some("b"), &[], &mut next).as_deref(), Some("b"));
        assert_eq!(next, 0, "following the leader moves no turn");
        assert_eq!(pick(Some("b"), &["b"], &mut next).as_deref(), Some("a"));
        assert_eq!(pick(None, &["b"], &mut next).as_deref(), Some("c"));
        assert_eq!(pick(None, &[], &mut next).as_deref(), Some("a"));
        // Every node failed: ask one anyway, in turn.
        assert_eq!(
            pick(None, &["a", "b", "c"], &mut next).as_deref(),
            Some("b")
        );
        assert_eq!(next_node(None, &[], &[], &mut next), None);
    }

    #[test]
    fn client_ids_differ() {
        assert_ne!(random_client_id(), random_client_id());
    }
}
