//! Reading a dev cluster server's Prometheus endpoint from tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::DevCluster;

/// `metrics_listen` from server NAME's config.
pub fn metrics_addr(cluster: &DevCluster, name: &str) -> SocketAddr {
    let path = cluster.dir().join(format!("{name}.toml"));
    let cfg: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cfg.get("metrics_listen")
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("{name} has no metrics_listen"))
        .parse()
        .unwrap()
}

/// One HTTP GET; returns (status line, body).
pub fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// How many `op` requests the metadata node `meta-1` has served (every
/// outcome).
pub fn served(cluster: &DevCluster, op: &str) -> u64 {
    served_by(cluster, "meta-1", op)
}

/// How many `op` requests server `name` has served (every outcome).
pub fn served_by(cluster: &DevCluster, name: &str, op: &str) -> u64 {
    let (_, body) = get(metrics_addr(cluster, name), "/metrics");
    let label = format!("op=\"{op}\"");
    body.lines()
        .filter(|l| l.starts_with("cairn_requests_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
