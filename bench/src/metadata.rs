//! `cairn-bench metadata`: metadata throughput against a 1-node and a
//! 3-node group, and failover time of the 3-node group.
//!
//! * Throughput: `clients` independent clients (16 by default) create empty
//!   files (one commit each) and then stat them, all at once; files/s and
//!   stats/s for each group size; with 3 nodes, stats again with follower
//!   reads (any node answers from its own state).
//! * Failover (3 nodes, `runs` times): kill -9 the leader while a client
//!   keeps creating directories, and time from the kill to the first
//!   acknowledged create; then restart the node and wait until it has
//!   caught up before the next run. Prints the median and the maximum.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use cairn_client::Client;
use cairn_tests::DevCluster;
use futures::future::try_join_all;

use crate::{figure, print_rows, Row};

pub async fn run(
    clients: usize,
    ops: usize,
    runs: usize,
    json: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for meta in [1u16, 3] {
        eprintln!("metadata throughput, {meta} node(s) ...");
        let cluster = DevCluster::start_with(&["--meta", &meta.to_string()])?;
        throughput(&cluster, meta, clients, ops, &mut rows).await?;
        if meta == 3 {
            failover(cluster, runs, &mut rows).await?;
        }
    }
    print_rows(&rows, json.as_deref())
}

async fn throughput(
    cluster: &DevCluster,
    meta: u16,
    clients: usize,
    ops: usize,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let mut cs = Vec::new();
    for _ in 0..clients {
        cs.push(cluster.client().await?);
    }
    cs[0].mkdir("/t", false).await?;
    let per = ops / clients;
    let t = Instant::now();
    try_join_all(cs.iter().enumerate().map(|(k, c)| async move {
        for i in 0..per {
            c.put(&format!("/t/c{k}-{i}"), &b""[..]).await?;
        }
        Ok::<_, cairn_client::ClientError>(())
    }))
    .await?;
    let creates = (per * clients) as f64 / t.elapsed().as_secs_f64();
    let stats = stat_all(&cs, per).await?;
    rows.push(figure(
        format!("file creates, {clients} clients, {meta} metadata node(s)"),
        "ops/s",
        creates,
    ));
    rows.push(figure(
        format!("stats, {clients} clients, {meta} metadata node(s)"),
        "ops/s",
        stats,
    ));
    if meta > 1 {
        let meta_addrs = cluster
            .meta_names()
            .iter()
            .map(|n| cluster.listen_addr(n).map(|a| a.to_string()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let path = cluster.client_config_for("bench-follower-reads.toml", &meta_addrs, true)?;
        let mut readers = Vec::new();
        for _ in 0..clients {
            readers.push(cluster.client_from(&path).await?);
        }
        let stats = stat_all(&readers, per).await?;
        rows.push(figure(
            format!("stats, follower reads, {clients} clients, {meta} metadata node(s)"),
            "ops/s",
            stats,
        ));
    }
    Ok(())
}

/// Each client stats the `per` files it created; returns stats/s.
async fn stat_all(clients: &[Client], per: usize) -> anyhow::Result<f64> {
    let t = Instant::now();
    try_join_all(clients.iter().enumerate().map(|(k, c)| async move {
        for i in 0..per {
            c.stat(&format!("/t/c{k}-{i}")).await?;
        }
        Ok::<_, cairn_client::ClientError>(())
    }))
    .await?;
    Ok((per * clients.len()) as f64 / t.elapsed().as_secs_f64())
}

async fn failover(mut cluster: DevCluster, runs: usize, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let client = cluster.client().await?;
    client.mkdir("/failover", false).await?;
    let mut times = Vec::new();
    for run in 0..runs {
        let leader = client
            .status()
            .await?
            .leader
            .context("no leader before the kill")?;
        // The client has just talked to the leader: its connection is warm,
        // as it would be for a busy client.
        client.mkdir(&format!("/failover/warm{run}"), false).await?;
        let name = format!("meta-{leader}");
        cluster.kill9(&name)?;
        let killed = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = client
                .mkdir(&format!("/failover/r{run}-{attempt}"), false)
                .await;
            if r.is_ok() {
                break;
            }
            ensure!(
                killed.elapsed() < Duration::from_secs(60),
                "no create succeeded within 60 s of killing the leader"
            );
        }
        let took = killed.elapsed();
        eprintln!("run {run}: leader {leader} killed, first create after {took:?}");
        times.push(took.as_secs_f64());
        cluster.restart_server(&name)?;
        caught_up(&client, Duration::from_secs(60)).await?;
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let max = times.last().copied().unwrap_or(0.0);
    rows.push(figure(
        format!("failover: kill -9 leader -> first commit, median of {runs}"),
        "seconds",
        median,
    ));
    rows.push(figure(
        format!("failover: kill -9 leader -> first commit, max of {runs}"),
        "seconds",
        max,
    ));
    Ok(())
}

/// Waits until every metadata node is replicating with no lag.
pub(crate) async fn caught_up(client: &Client, timeout: Duration) -> anyhow::Result<()> {
    let t = Instant::now();
    loop {
        if let Ok(s) = client.status().await {
            if s.leader.is_some() && s.meta_nodes.iter().all(|m| m.lag == Some(0)) {
                return Ok(());
            }
        }
        ensure!(t.elapsed() < timeout, "the restarted node did not catch up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
