//! A UDP relay on 127.0.0.1 that the test can cut: the "test's
//! transport" for partition tests.
//!
//! Each metadata node's peers reach it through its own [`UdpProxy`] (the
//! group's membership names proxy addresses). [`Partition`] decides which
//! datagrams pass: isolating node C drops everything relayed to C and
//! everything C sends to the others (recognized by its source port, the
//! node's one QUIC socket).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::task::JoinSet;

/// Which nodes are cut off, by their real (listening) port.
#[derive(Clone, Default)]
pub struct Partition {
    isolated: Arc<Mutex<HashSet<u16>>>,
}

impl Partition {
    pub fn isolate(&self, port: u16) {
        self.isolated.lock().unwrap().insert(port);
    }

    pub fn heal(&self) {
        self.isolated.lock().unwrap().clear();
    }

    fn cut(&self, port: u16) -> bool {
        self.isolated.lock().unwrap().contains(&port)
    }
}

/// Relays datagrams between any sender and one target, while the
/// [`Partition`] allows. Stops when dropped.
pub struct UdpProxy {
    pub addr: SocketAddr,
    tasks: JoinSet<()>,
}

/// Largest datagram relayed (QUIC stays well below).
const MAX_DATAGRAM: usize = 65_536;

impl UdpProxy {
    pub async fn start(target: SocketAddr, partition: Partition) -> std::io::Result<Self> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let addr = front.local_addr()?;
        let mut tasks = JoinSet::new();
        let front2 = front.clone();
        tasks.spawn(async move {
            // One upstream socket per sender, so replies find their way back.
            let mut upstream: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut relays = JoinSet::new();
            let mut buf = vec![0u8; MAX_DATAGRAM];
            loop {
                let Ok((n, from)) = front2.recv_from(&mut buf).await else {
                    return;
                };
                if partition.cut(target.port()) || partition.cut(from.port()) {
                    continue;
                }
                let up = match upstream.get(&from) {
                    Some(u) => u.clone(),
                    None => {
                        let Ok(u) = UdpSocket::bind("127.0.0.1:0").await else {
                            continue;
                        };
                        if u.connect(target).await.is_err() {
                            continue;
                        }
                        let u = Arc::new(u);
                        upstream.insert(from, u.clone());
                        let (back, front, partition) =
                            (u.clone(), front2.clone(), partition.clone());
                        relays.spawn(async move {
                            let mut buf = vec![0u8; MAX_DATAGRAM];
                            while let Ok(n) = back.recv(&mut buf).await {
                                if partition.cut(target.port()) || partition.cut(from.port()) {
                                    continue;
                                }
                                let _ = front.send_to(&buf[..n], from).await;
                            }
                        });
                        u
                    }
                };
                let _ = up.send(&buf[..n]).await;
            }
        });
        Ok(UdpProxy { addr, tasks })
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}
