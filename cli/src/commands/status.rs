//! `cairn status`: cluster health on one screen.

use cairn_proto::meta_rpc::ReplicationPolicy;

use crate::cli::ClusterArgs;
use crate::commands::files::connect;

fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub async fn run(args: &ClusterArgs, json: bool) -> anyhow::Result<()> {
    let client = connect(args).await?;
    let s = client.status().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let leader = s.leader.map_or("none".to_string(), |l| l.to_string());
    println!(
        "Metadata: leader {leader}, term {}, applied index {}",
        s.term, s.last_applied
    );
    for m in &s.meta_nodes {
        let role = if Some(m.id) == s.leader {
            "leader"
        } else if m.voter {
            "follower"
        } else {
            "learner"
        };
        let progress = match (m.matched_index, m.lag) {
            (Some(i), Some(lag)) => format!("log index {i}, {lag} behind"),
            _ => "not replicating".to_string(),
        };
        println!("  node {:<3} {:<22} {role:<8} {progress}", m.id, m.addr);
    }
    println!(
        "Replication: {} copies, {} synchronous",
        s.policy.copies, s.policy.sync_copies
    );
    let up = s.chunkservers.iter().filter(|c| c.up).count();
    println!(
        "Chunkservers: {up} of {} up, ring epoch {}, {} chunks under-replicated",
        s.chunkservers.len(),
        s.ring_epoch,
        s.under_replicated
    );
    let placed = s.chunkservers.iter().filter(|c| !c.draining).count();
    if placed < usize::from(s.policy.copies) {
        println!(
            "  WARNING: {placed} chunkservers in the ring cannot hold {} copies of each chunk",
            s.policy.copies
        );
    }
    for c in &s.chunkservers {
        let state = match (c.up, c.down, c.draining) {
            (_, _, true) if c.up => "draining",
            (_, _, true) => "DOWN,draining",
            (true, _, false) => "up",
            (false, true, false) => "DOWN",
            // Silent, but not yet marked down by the leader.
            (false, false, false) => "silent",
        };
        let state = if c.full {
            format!("{state},FULL")
        } else {
            state.to_string()
        };
        let seen = c.last_heartbeat_ms.map_or("never".to_string(), |ms| {
            format!("{:.1}s ago", ms as f64 / 1000.0)
        });
        println!(
            "  id {:<3} {:<22} {:<8} zone {:<8} {} chunks, {} used of {}, {} free, heartbeat {seen}",
            c.id,
            c.addr,
            state,
            c.zone,
            c.chunks,
            human(c.used_bytes),
            human(c.capacity_bytes),
            human(c.available_bytes)
        );
    }
    let sum = |f: fn(&cairn_proto::meta_rpc::ChunkServerStatus) -> u64| -> u64 {
        s.chunkservers.iter().map(f).sum()
    };
    println!("Background work (since each chunkserver started):");
    println!(
        "  repair  {} passes, {} copies pushed, {} dropped, {} failed",
        sum(|c| c.repair.passes),
        sum(|c| c.repair.pushed),
        sum(|c| c.repair.dropped),
        sum(|c| c.repair.failed)
    );
    println!(
        "  gc      {} passes, {} chunk copies deleted ({})",
        sum(|c| c.gc.passes),
        sum(|c| c.gc.chunks),
        human(sum(|c| c.gc.bytes))
    );
    println!(
        "  scrub   {} passes, {} chunks re-hashed ({}), {} corrupt copies quarantined",
        sum(|c| c.scrub.passes),
        sum(|c| c.scrub.chunks),
        human(sum(|c| c.scrub.bytes)),
        sum(|c| c.scrub.corrupt)
    );
    println!(
        "Namespace: {} files, {} directories, {} chunks referenced",
        s.files, s.directories, s.chunks_referenced
    );
    Ok(())
}

/// `cairn gc [--dry-run]`: a collection pass on every chunkserver.
pub async fn gc(args: &ClusterArgs, dry_run: bool, json: bool) -> anyhow::Result<()> {
    let client = connect(args).await?;
    let results = client.collect_garbage(dry_run).await?;
    let failed = results.iter().filter(|r| r.result.is_err()).count();
    if json {
        let servers: Vec<serde_json::Value> = results
            .iter()
            .map(|r| match &r.result {
                Ok(report) => serde_json::json!({
                    "id": r.id,
                    "addr": r.addr,
                    "examined": report.examined,
                    "chunks": report.chunks,
                    "bytes": report.bytes,
                    "items": report.items.iter().map(|i| serde_json::json!({
                        "chunk": i.id.to_hex(),
                        "bytes": i.len,
                        "reason": i.reason,
                    })).collect::<Vec<_>>(),
                }),
                Err(e) => serde_json::json!({
                    "id": r.id,
                    "addr": r.addr,
                    "error": e.to_string(),
                }),
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "dry_run": dry_run,
                "servers": servers,
            }))?
        );
    } else {
        let verb = if dry_run { "would delete" } else { "deleted" };
        let (mut chunks, mut bytes) = (0, 0);
        for r in &results {
            match &r.result {
                Ok(report) => {
                    chunks += report.chunks;
                    bytes += report.bytes;
                    println!(
                        "chunkserver {} ({}): {verb} {} chunks, {} (of {} past the grace period)",
                        r.id,
                        r.addr,
                        report.chunks,
                        human(report.bytes),
                        report.examined
                    );
                    for item in &report.items {
                        println!("  {}  {:>10}  {}", item.id, human(item.len), item.reason);
                    }
                    if (report.items.len() as u64) < report.chunks {
                        println!(
                            "  ... and {} more",
                            report.chunks - report.items.len() as u64
                        );
                    }
                }
                Err(e) => println!("chunkserver {} ({}): FAILED: {e}", r.id, r.addr),
            }
        }
        println!("Total: {verb} {chunks} chunk copies, {}", human(bytes));
    }
    if let Some(e) = results.iter().find_map(|r| r.result.as_ref().err()) {
        anyhow::bail!("{failed} chunkservers could not collect garbage (the first: {e})");
    }
    Ok(())
}

/// `cairn replication`: prints the policy, or sets it to (copies, sync).
pub async fn replication(args: &ClusterArgs, set: Option<(u8, u8)>) -> anyhow::Result<()> {
    let client = connect(args).await?;
    if let Some((copies, sync_copies)) = set {
        client
            .set_replication(ReplicationPolicy {
                copies,
                sync_copies,
            })
            .await?;
    }
    let p = client.status().await?.policy;
    println!("{} copies, {} synchronous", p.copies, p.sync_copies);
    Ok(())
}
