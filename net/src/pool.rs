//! Connections kept open per peer address, reopened when they die.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::endpoint::connect;
use crate::error::NetError;

/// Connections kept open per peer address, reopened when they die.
#[derive(Clone)]
pub struct ConnPool {
    endpoint: quinn::Endpoint,
    conns: Arc<Mutex<HashMap<String, quinn::Connection>>>,
}

impl ConnPool {
    pub fn new(endpoint: quinn::Endpoint) -> Self {
        ConnPool {
            endpoint,
            conns: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// A live connection to `addr`, reusing an open one.
    ///
    /// A new connection is set up by a task of its own and kept even if
    /// the caller stops waiting: callers with short deadlines (Raft's vote
    /// and heartbeat RPCs) then find it ready on their next try, rather
    /// than abandoning every handshake on a slow, loaded machine.
    pub async fn get(&self, addr: &str) -> Result<quinn::Connection, NetError> {
        if let Some(c) = self.lock().get(addr) {
            if c.close_reason().is_none() {
                return Ok(c.clone());
            }
        }
        let pool = self.clone();
        let (addr, self_addr) = (addr.to_string(), addr.to_string());
        let setup = tokio::spawn(async move {
            let conn = connect(&pool.endpoint, &addr).await?;
            pool.lock().insert(addr, conn.clone());
            Ok(conn)
        });
        match setup.await {
            Ok(r) => r,
            Err(e) => Err(NetError::Connect {
                addr: self_addr,
                reason: format!("connection set-up task failed: {e}"),
            }),
        }
    }

    /// Forgets the connection to `addr` (after an error on it).
    pub fn forget(&self, addr: &str) {
        self.lock().remove(addr);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, quinn::Connection>> {
        // A panic while holding this lock leaves only a map of handles behind;
        // it is still consistent, so recover it.
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }
}
