//! `cairn chunkserver remove|drain`: planned changes to the set of
//! chunkservers.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ClusterArgs;
use crate::commands::files::connect;

/// How often `drain --wait` looks at the server's chunk count (it arrives
/// with the server's heartbeats).
const DRAIN_POLL: Duration = Duration::from_secs(2);

pub async fn remove(args: &ClusterArgs, id: u64) -> anyhow::Result<()> {
    connect(args).await?.remove_chunkserver(id).await?;
    println!("chunkserver {id} removed from the ring; repair re-creates its copies on the others");
    Ok(())
}

/// Starts (or cancels) draining `id`. `wait`: `None` to return at once,
/// `Some(limit)` to wait until it holds no chunks (at most `limit`).
pub async fn drain(
    args: &ClusterArgs,
    id: u64,
    drain: bool,
    wait: Option<Option<Duration>>,
) -> anyhow::Result<()> {
    let client = connect(args).await?;
    client.drain_chunkserver(id, drain).await?;
    if !drain {
        println!("chunkserver {id}: drain cancelled; it owns chunks again");
        return Ok(());
    }
    println!("chunkserver {id} is draining: its chunks are being copied to their new owners");
    let Some(limit) = wait else {
        println!(
            "follow it with `cairn status`; once it holds 0 chunks, stop it and run \
             `cairn chunkserver remove {id}`"
        );
        return Ok(());
    };
    let started = std::time::Instant::now();
    let deadline = limit.map(|l| started + l);
    let pb = if std::io::stderr().is_terminal() {
        ProgressBar::new(0).with_style(
            ProgressStyle::with_template("draining [{bar:30}] {pos}/{len} chunks moved, eta {eta}")
                .expect("template is valid")
                .progress_chars("=> "),
        )
    } else {
        ProgressBar::hidden()
    };
    let mut most = 0;
    loop {
        let status = client.status().await?;
        let Some(c) = status.chunkservers.iter().find(|c| c.id == id) else {
            pb.abandon();
            bail!("chunkserver {id} is no longer registered");
        };
        if !c.draining {
            pb.abandon();
            bail!("the drain of chunkserver {id} was cancelled");
        }
        if !c.up {
            pb.abandon();
            bail!(
                "chunkserver {id} went down while draining with {} chunks left; \
                 restart it to finish, or remove it (repair then copies from the other replicas)",
                c.chunks
            );
        }
        most = most.max(c.chunks);
        pb.set_length(most);
        pb.set_position(most - c.chunks);
        // Counts arrive with heartbeats: only one sent after the drain
        // began can say the server is empty.
        let fresh = c
            .last_heartbeat_ms
            .is_some_and(|ms| Duration::from_millis(ms) < started.elapsed());
        if fresh && c.chunks == 0 {
            pb.finish_and_clear();
            println!(
                "chunkserver {id} is drained; stop it, then run `cairn chunkserver remove {id}`"
            );
            return Ok(());
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            pb.abandon();
            bail!(
                "chunkserver {id} still holds {} chunks; the drain goes on (see `cairn status`)",
                c.chunks
            );
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}
