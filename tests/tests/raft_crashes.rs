//! A metadata node that crashes inside Raft — failpoints in a real process
//! (the test build has `--features failpoints`): before or after its log
//! append is durable, before or after its state machine stores what it
//! applied. Restarted, it comes back with every entry the group
//! acknowledged, nothing the group never accepted, and the same namespace
//! as the rest of the group.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cairn_tests::failpoints::{crash_at, require_failpoint_build};
use cairn_tests::DevCluster;

/// The failpoints in Raft's storage, in the order an entry passes them.
const POINTS: [&str; 4] = [
    "raft-append-before-write",
    "raft-append-written",
    "raft-apply-before-commit",
    "raft-apply-committed",
];

/// Longest meta-1 may take to reach a point once restarted with it.
const CRASH_WITHIN: Duration = Duration::from_secs(60);
/// Longest one mkdir may take (an election included).
const OP_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest meta-1 may take to catch up after its restart.
const CATCH_UP_WITHIN: Duration = Duration::from_secs(60);

/// Names in `/` as `client` reads them, if it can.
async fn names(client: &cairn_client::Client) -> Option<BTreeSet<String>> {
    let listed = tokio::time::timeout(OP_TIMEOUT, client.list("/")).await;
    let entries = listed.ok()?.ok()?;
    Some(entries.into_iter().map(|e| e.name).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_node_crashing_in_raft_append_or_apply_recovers_every_acknowledged_entry() {
    require_failpoint_build();
    let mut cluster = DevCluster::start_with(&["--meta", "3"]).expect("cluster starts");
    let client = cluster.client().await.expect("client");
    // A client that reads meta-1's own state (follower reads, meta-1 only).
    let meta1 = cluster.listen_addr("meta-1").expect("addr").to_string();
    let alone = cluster
        .client_config_for("meta-1-alone.toml", &[meta1], true)
        .expect("config");
    let mut acked = BTreeSet::new();
    let mut tried = BTreeSet::new();
    for point in POINTS {
        cluster.kill9("meta-1").expect("kill meta-1");
        cluster
            .restart_server_with("meta-1", &[("FAILPOINTS", &crash_at(point))])
            .expect("restart meta-1 with a failpoint");
        // Writes go on through the majority until meta-1 reaches the point
        // (as leader or follower, catching up or taking new entries).
        let started = Instant::now();
        let mut i = 0;
        loop {
            if cluster
                .wait_exit("meta-1", Duration::from_millis(100))
                .expect("wait")
            {
                break;
            }
            assert!(
                started.elapsed() < CRASH_WITHIN,
                "meta-1 did not crash at {point} within {CRASH_WITHIN:?}"
            );
            i += 1;
            let name = format!("{point}-{i}");
            tried.insert(name.clone());
            let path = format!("/{name}");
            let made = tokio::time::timeout(OP_TIMEOUT, client.mkdir(&path, false)).await;
            if let Ok(Ok(_)) = made {
                acked.insert(name);
            }
        }
        eprintln!("meta-1 crashed at {point} after {i} mkdirs");
        cluster.restart_server("meta-1").expect("restart meta-1");

        // Read alone, meta-1 catches up with everything acknowledged, and
        // holds nothing that was never tried.
        let deadline = Instant::now() + CATCH_UP_WITHIN;
        loop {
            let seen = match cluster.client_from(&alone).await {
                Ok(c) => names(&c).await,
                Err(_) => None,
            };
            if let Some(seen) = &seen {
                assert!(
                    seen.is_subset(&tried),
                    "after a crash at {point}, meta-1 lists names never created: {:?}",
                    seen.difference(&tried).collect::<Vec<_>>()
                );
                if acked.is_subset(seen) {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "after a crash at {point}, meta-1 did not catch up within {CATCH_UP_WITHIN:?}: \
                 missing {:?}",
                seen.map(|s| acked.difference(&s).cloned().collect::<Vec<_>>())
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(!acked.is_empty(), "no mkdir was acknowledged");
    // The group agrees with meta-1: a linearizable listing, then meta-1's.
    let group = names(&client).await.expect("the group lists /");
    let deadline = Instant::now() + CATCH_UP_WITHIN;
    loop {
        let c = cluster.client_from(&alone).await.expect("meta-1 client");
        let seen = names(&c).await;
        if seen.as_ref() == Some(&group) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "meta-1 lists {seen:?}, the group {group:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
