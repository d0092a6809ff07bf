//! `cairn meta add-node|remove-node`: changing the metadata group's
//! membership online.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::bail;
use cairn_client::ClientError;
use cairn_proto::ErrorCode;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ClusterArgs;
use crate::commands::files::connect;

/// How often `add-node` checks whether the learner has caught up.
const PROMOTE_POLL: Duration = Duration::from_millis(500);

pub async fn add_node(
    args: &ClusterArgs,
    id: u64,
    addr: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let client = connect(args).await?;
    client.add_meta_node(id, addr).await?;
    eprintln!("metadata node {id} ({addr}) joined as a learner; waiting for it to catch up");
    let pb = if std::io::stderr().is_terminal() {
        ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} node {msg}").expect("template is valid"),
        )
    } else {
        ProgressBar::hidden()
    };
    let deadline = Instant::now() + timeout;
    loop {
        match client.promote_meta_node(id).await {
            Ok(()) => break,
            Err(ClientError::Rpc(e)) if e.code == ErrorCode::FailedPrecondition => {
                pb.set_message(format!("{id}: {}", e.message));
                if Instant::now() >= deadline {
                    pb.abandon();
                    bail!(
                        "metadata node {id} did not catch up within {}s ({}); it stays a \
                         learner: check that it runs with join = true and is reachable at {addr}, \
                         then run add-node again",
                        timeout.as_secs(),
                        e.message
                    );
                }
            }
            Err(e) => {
                pb.abandon();
                return Err(e.into());
            }
        }
        pb.tick();
        tokio::time::sleep(PROMOTE_POLL).await;
    }
    pb.finish_and_clear();
    println!(
        "metadata node {id} is a voter; add {addr} to the clients' and chunkservers' `meta` lists"
    );
    Ok(())
}

pub async fn remove_node(args: &ClusterArgs, id: u64) -> anyhow::Result<()> {
    connect(args).await?.remove_meta_node(id).await?;
    println!(
        "metadata node {id} left the group; stop it, and drop its address from the \
         clients' and chunkservers' `meta` lists"
    );
    Ok(())
}
