//! Calling the metadata group: find the leader, follow `NotLeader`
//! redirects, retry through failover with bounded attempts and back-off.
//! Shared by the client library and the chunkservers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::frame::MAX_FRAME_LEN;
use crate::meta_rpc::{MetaRequest, MetaResponse};
use crate::net::{call, ConnPool, NetError};
use crate::{ErrorCode, RpcError};

/// Attempts per call before giving up.
const MAX_ATTEMPTS: u32 = 12;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_millis(800);
/// How long one attempt may wait for its answer. Generous: a commit waits
/// for an fsync on a majority.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node that failed at the network level is asked last (and not
/// followed as a redirect) by later calls too.
const AVOID_FOR: Duration = Duration::from_secs(10);

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
    avoid: Mutex<HashMap<String, Instant>>,
}

impl MetaCaller {
    /// `addrs`: every metadata node's `host:port` (any order).
    pub fn new(pool: ConnPool, addrs: Vec<String>) -> Self {
        MetaCaller {
            pool,
            addrs,
            leader: Mutex::new(None),
            avoid: Mutex::new(HashMap::new()),
        }
    }

    fn avoided(&self) -> Vec<String> {
        let now = Instant::now();
        let mut map = self.avoid.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, until| *until > now);
        map.keys().cloned().collect()
    }

    fn mark_failed(&self, addr: &str) {
        self.avoid
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(addr.to_string(), Instant::now() + AVOID_FOR);
    }

    fn mark_ok(&self, addr: &str) {
        self.avoid
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(addr);
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

    /// Sends `req` to the leader (as far as known), following redirects.
    pub async fn call(&self, req: &MetaRequest) -> Result<MetaResponse, MetaCallError> {
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::from("no address configured");
        let mut next_addr = 0usize;
        // Nodes that failed at the network level lately: asked last, and
        // never followed as a redirect (a follower may still name a leader
        // that just died).
        let mut failed: Vec<String> = self.avoided();
        for _ in 0..MAX_ATTEMPTS {
            let addr = match self.hint() {
                Some(a) if !failed.contains(&a) => a,
                _ => {
                    let n = self.addrs.len();
                    if n == 0 {
                        break;
                    }
                    let pick = (0..n)
                        .map(|k| &self.addrs[(next_addr + k) % n])
                        .find(|a| !failed.contains(a))
                        .unwrap_or(&self.addrs[next_addr % n])
                        .clone();
                    next_addr = self.addrs.iter().position(|a| *a == pick).unwrap_or(0) + 1;
                    pick
                }
            };
            match self.call_one(&addr, req).await {
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
                        self.set_hint(None);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    } else {
                        self.set_hint(redirect);
                    }
                }
                Ok(Err(e)) if e.code == ErrorCode::Unavailable => {
                    last = format!("{addr}: {}", e.message);
                    self.set_hint(None);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Ok(Err(e)) => return Err(MetaCallError::Rpc(e)),
                Err(e @ NetError::Timeout(_)) if !req.is_read_only() => {
                    // The change may or may not have been applied; sending it
                    // again could apply it twice. Let the caller decide.
                    self.pool.forget(&addr);
                    self.mark_failed(&addr);
                    self.set_hint(None);
                    return Err(MetaCallError::Unreachable {
                        addrs: addr,
                        last: format!("{e} (the change may or may not have been applied)"),
                    });
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
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        Err(MetaCallError::Unreachable {
            addrs: self.addrs.join(", "),
            last,
        })
    }

    async fn call_one(
        &self,
        addr: &str,
        req: &MetaRequest,
    ) -> Result<Result<MetaResponse, RpcError>, NetError> {
        let conn = self.pool.get(addr).await?;
        match tokio::time::timeout(ATTEMPT_TIMEOUT, call(&conn, req, &[], MAX_FRAME_LEN)).await {
            Ok(r) => Ok(r?.0),
            Err(_) => Err(NetError::Timeout(ATTEMPT_TIMEOUT)),
        }
    }
}
