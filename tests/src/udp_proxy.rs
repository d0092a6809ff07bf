//! A UDP relay on 127.0.0.1 that the test can cut: the "test's
//! transport" for partition tests.
//!
//! Each server's peers reach it through its own [`UdpProxy`] (the group's
//! membership, or the ring, names proxy addresses). A [`Cuts`] decides
//! which datagrams pass, by the ports of their sender and receiver: a
//! server is recognized by its source port, its one QUIC socket, and
//! anything else is a client. [`Partition`] isolates whole nodes;
//! [`crate::links::Links`] cuts single links, one way or both.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::task::JoinSet;

/// Which datagrams a relay passes.
pub trait Cuts: Clone + Send + Sync + 'static {
    /// True if a datagram from port `from` to port `to` passes (a
    /// server's port is its real, listening one).
    fn passes(&self, from: u16, to: u16) -> bool;
}

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
}

impl Cuts for Partition {
    fn passes(&self, from: u16, to: u16) -> bool {
        let isolated = self.isolated.lock().unwrap();
        !isolated.contains(&from) && !isolated.contains(&to)
    }
}

/// Relays datagrams between any sender and one target, while the
/// [`Cuts`] allow. Runs on a thread and runtime of its own (so a test
/// blocking its own runtime cannot stall the relay); stops when dropped.
pub struct UdpProxy {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Pause after a socket error before reading again.
const ERROR_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// Largest datagram relayed (QUIC stays well below).
const MAX_DATAGRAM: usize = 65_536;

impl UdpProxy {
    pub fn start(target: SocketAddr, cuts: impl Cuts) -> std::io::Result<Self> {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(front) = UdpSocket::from_std(socket) else {
                    return;
                };
                tokio::select! {
                    _ = relay(Arc::new(front), target, cuts) => {}
                    _ = stopped => {}
                }
            });
        });
        Ok(UdpProxy {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

async fn relay(front: Arc<UdpSocket>, target: SocketAddr, cuts: impl Cuts) {
    // One upstream socket per sender, so replies find their way back.
    let mut upstream: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut relays = JoinSet::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let Ok((n, from)) = front.recv_from(&mut buf).await else {
            tokio::time::sleep(ERROR_PAUSE).await;
            continue;
        };
        if !cuts.passes(from.port(), target.port()) {
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
                let (back, front, cuts) = (u.clone(), front.clone(), cuts.clone());
                relays.spawn(async move {
                    let mut buf = vec![0u8; MAX_DATAGRAM];
                    loop {
                        // A datagram sent while the target was not yet
                        // listening comes back as an error (ICMP port
                        // unreachable) on this connected socket: keep going.
                        let Ok(n) = back.recv(&mut buf).await else {
                            tokio::time::sleep(ERROR_PAUSE).await;
                            continue;
                        };
                        if !cuts.passes(target.port(), from.port()) {
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
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn free_port() -> SocketAddr {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free port")
    }

    #[test]
    fn relays_both_ways_even_if_the_target_started_late_and_cuts_on_demand() {
        let target = free_port();
        let partition = Partition::default();
        let proxy = UdpProxy::start(target, partition.clone()).expect("proxy");
        let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("client");
        client
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        // Nobody listens yet: the relay sees "port unreachable".
        client.send_to(b"early", proxy.addr).expect("send");
        std::thread::sleep(Duration::from_millis(50));
        let server = std::net::UdpSocket::bind(target).expect("target binds");
        server
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        let echo = |buf: &mut [u8]| {
            client.send_to(b"ping", proxy.addr).expect("send");
            let (n, from) = server.recv_from(buf).ok()?;
            server.send_to(&buf[..n], from).expect("reply");
            client.recv(buf).ok()
        };
        let mut answered = false;
        for _ in 0..10 {
            if echo(&mut buf) == Some(4) {
                answered = true;
                break;
            }
        }
        assert!(answered, "no reply through the relay");
        partition.isolate(target.port());
        assert_eq!(echo(&mut buf), None, "a cut relay passed a datagram");
        partition.heal();
        assert_eq!(echo(&mut buf), Some(4));
    }
}
