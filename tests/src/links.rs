//! Link cuts on a real cluster: every server is reached only through a
//! relay of its own ([`UdpProxy`]), and [`Links`] drops the datagrams of
//! the links the test cuts — between two servers, or between the clients
//! (the library's and the mount's) and a server — one way or both.
//!
//! A relay sees which server sent a datagram by its source port (each
//! server sends from its one listening socket); any other port is a
//! client's. Cutting `a → b` drops what `a` sends to `b` on every
//! connection between them, whichever side opened it.

use std::collections::{BTreeMap, HashMap, HashSet};

use std::sync::{Arc, Mutex};

use anyhow::Context;

use crate::udp_proxy::{Cuts, UdpProxy};
use crate::DevCluster;

/// One end of a link.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peer {
    /// Every client: the test's library clients and the mount.
    Clients,
    /// A server, by name (`meta-1`, `chunk-2`, ...).
    Server(String),
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Clients => f.write_str("clients"),
            Peer::Server(name) => f.write_str(name),
        }
    }
}

#[derive(Default)]
struct LinksState {
    /// A server's listening port → its name.
    names: HashMap<u16, String>,
    /// Directed links cut now: (sender, receiver).
    cut: HashSet<(Peer, Peer)>,
}

/// The links cut now; shared by every relay.
#[derive(Clone, Default)]
pub struct Links {
    state: Arc<Mutex<LinksState>>,
}

impl Links {
    /// Names the server listening on `port`.
    pub fn name(&self, port: u16, name: &str) {
        self.state.lock().unwrap().names.insert(port, name.into());
    }

    /// Drops what `from` sends to `to` (and, with `both_ways`, the reverse).
    pub fn cut(&self, from: &Peer, to: &Peer, both_ways: bool) {
        let mut s = self.state.lock().unwrap();
        s.cut.insert((from.clone(), to.clone()));
        if both_ways {
            s.cut.insert((to.clone(), from.clone()));
        }
    }

    /// Passes what `from` and `to` send each other again.
    pub fn mend(&self, from: &Peer, to: &Peer) {
        let mut s = self.state.lock().unwrap();
        s.cut.remove(&(from.clone(), to.clone()));
        s.cut.remove(&(to.clone(), from.clone()));
    }

    fn peer(names: &HashMap<u16, String>, port: u16) -> Peer {
        names
            .get(&port)
            .map_or(Peer::Clients, |n| Peer::Server(n.clone()))
    }
}

impl Cuts for Links {
    fn passes(&self, from: u16, to: u16) -> bool {
        let s = self.state.lock().unwrap();
        if s.cut.is_empty() {
            return true;
        }
        let link = (Self::peer(&s.names, from), Self::peer(&s.names, to));
        !s.cut.contains(&link)
    }
}

/// A cluster whose every server is reached through a relay.
pub struct Relays {
    pub links: Links,
    _proxies: Vec<UdpProxy>,
}

/// Rebuilds `cluster` empty with a relay in front of every server: the
/// metadata group's membership, the chunkservers' `meta` lists and
/// advertised addresses, and the client and admin configs all name relays.
pub fn relay_every_server(cluster: &mut DevCluster) -> anyhow::Result<Relays> {
    let links = Links::default();
    let mut proxies = Vec::new();
    let mut front = BTreeMap::new();
    let servers = cluster
        .meta_names()
        .into_iter()
        .chain(cluster.chunkserver_names());
    for name in servers {
        let real = cluster.listen_addr(&name)?;
        let proxy = UdpProxy::start(real, links.clone()).context("starting a relay")?;
        links.name(real.port(), &name);
        front.insert(name, proxy.addr.to_string());
        proxies.push(proxy);
    }
    let meta_names = cluster.meta_names();
    let meta_fronts = toml::Value::Array(
        meta_names
            .iter()
            .map(|n| toml::Value::String(front[n].clone()))
            .collect(),
    );
    let peers: BTreeMap<u64, String> = meta_names
        .iter()
        .map(|n| {
            let id = n.trim_start_matches("meta-").parse().context("meta-N")?;
            Ok((id, front[n].clone()))
        })
        .collect::<anyhow::Result<_>>()?;
    // Read only at start: the rebuild below applies them.
    for name in cluster.chunkserver_names() {
        cluster.edit_config(&name, |cfg| {
            cfg.insert(
                "advertise".into(),
                toml::Value::String(front[&name].clone()),
            );
            cfg.insert("meta".into(), meta_fronts.clone());
        })?;
    }
    for name in ["client", "admin"] {
        cluster.edit_config(name, |cfg| {
            cfg.insert("meta".into(), meta_fronts.clone());
        })?;
    }
    cluster.rebuild_meta_group(&peers)?;
    Ok(Relays {
        links,
        _proxies: proxies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_way_cut_drops_only_that_direction() {
        let links = Links::default();
        links.name(1001, "chunk-1");
        links.name(1002, "chunk-2");
        let (c1, c2) = (
            Peer::Server("chunk-1".into()),
            Peer::Server("chunk-2".into()),
        );
        links.cut(&c1, &c2, false);
        assert!(!links.passes(1001, 1002));
        assert!(links.passes(1002, 1001));
        // Clients (any unnamed port) are not on that link.
        assert!(links.passes(40_000, 1002));
        links.mend(&c1, &c2);
        assert!(links.passes(1001, 1002));
    }

    #[test]
    fn a_cut_to_the_clients_drops_what_any_client_sends() {
        let links = Links::default();
        links.name(1001, "chunk-1");
        let c1 = Peer::Server("chunk-1".into());
        links.cut(&Peer::Clients, &c1, true);
        assert!(!links.passes(40_000, 1001));
        assert!(!links.passes(1001, 40_001));
        assert!(links.passes(40_000, 1002), "another server is reachable");
        links.mend(&c1, &Peer::Clients);
        assert!(links.passes(40_000, 1001) && links.passes(1001, 40_000));
    }
}
