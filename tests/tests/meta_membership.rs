//! The metadata group's log compaction and membership, with real
//! processes: a node down while the log was purged catches up by snapshot;
//! nodes join (`cairn meta add-node`) and leave (`remove-node`) online.

use std::time::{Duration, Instant};

use cairn_tests::{current_leader, wait_listing, DevCluster};

/// Snapshot often and keep little log, so that catching up needs a snapshot.
const COMPACT: &[(&str, i64)] = &[
    ("snapshot_every_entries", 30),
    ("log_kept_behind_snapshot", 5),
];

async fn mkdirs(client: &cairn_client::Client, prefix: &str, n: usize) {
    for i in 0..n {
        client
            .mkdir(&format!("/{prefix}{i:03}"), false)
            .await
            .unwrap_or_else(|e| panic!("mkdir {prefix}{i}: {e}"));
    }
}

fn log_of(cluster: &DevCluster, name: &str) -> String {
    std::fs::read_to_string(cluster.dir().join("logs").join(format!("{name}.log")))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_while_the_log_was_purged_catches_up_by_snapshot() {
    let mut cluster = DevCluster::start_with(&["--meta", "3"]).expect("cluster starts");
    cluster
        .reconfigure_meta(COMPACT)
        .expect("compaction settings");
    let client = cluster.client().await.expect("client");
    let leader = current_leader(&client).await.expect("leader");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let name = format!("meta-{follower}");
    let follower_addr = cluster.listen_addr(&name).expect("addr").to_string();
    cluster.kill9(&name).expect("kill the follower");

    mkdirs(&client, "d", 120).await;
    cluster.restart_server(&name).expect("restart the follower");

    // Read the follower's own state (follower reads, only its address).
    let cfg = cluster
        .client_config_for("follower.toml", &[follower_addr], true)
        .expect("config");
    let deadline = Instant::now() + Duration::from_secs(30);
    let on_follower = loop {
        match cluster.client_from(&cfg).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "follower never answered: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_listing(&on_follower, 120, "the restarted follower").await;
    let log = log_of(&cluster, &name);
    assert!(
        log.contains("installed a metadata snapshot"),
        "the follower caught up without a snapshot; its log:\n{log}"
    );
    let leader_log = log_of(&cluster, &format!("meta-{leader}"));
    assert!(leader_log.contains("built a metadata snapshot"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_and_leave_the_group_online() {
    let mut cluster = DevCluster::start_with(&["--meta", "3"]).expect("cluster starts");
    cluster
        .reconfigure_meta(COMPACT)
        .expect("compaction settings");
    let client = cluster.client().await.expect("client");
    mkdirs(&client, "a", 60).await;

    // Bad requests are refused with a reason, and change nothing.
    let out = cluster.cairn(&["meta", "add-node", "4", "no-port"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("host:port"));
    let out = cluster.cairn(&["meta", "remove-node", "99"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a member"));
    assert_eq!(client.status().await.expect("status").meta_nodes.len(), 3);

    // A fourth node joins: learner, snapshot, voter.
    let addr = cluster
        .start_joining_meta(4)
        .expect("start meta-4")
        .to_string();
    let out = cluster.cairn(&["meta", "add-node", "4", &addr, "--timeout", "60"]);
    assert!(
        out.status.success(),
        "add-node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = client.status().await.expect("status");
    assert_eq!(status.meta_nodes.len(), 4);
    assert!(status.meta_nodes.iter().all(|m| m.voter), "{status:?}");
    let cfg = cluster
        .client_config_for("meta4.toml", std::slice::from_ref(&addr), true)
        .expect("config");
    let on_new = cluster.client_from(&cfg).await.expect("client of meta-4");
    wait_listing(&on_new, 60, "the new node").await;
    assert!(log_of(&cluster, "meta-4").contains("installed a metadata snapshot"));

    // The leader leaves; the others elect a new one and keep serving.
    let old = status.leader.expect("leader");
    let out = cluster.cairn(&["meta", "remove-node", &old.to_string()]);
    assert!(
        out.status.success(),
        "remove-node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cluster
        .kill9(&format!("meta-{old}"))
        .expect("stop the removed node");
    let mut all: Vec<String> = (1..=3u64)
        .filter(|id| *id != old)
        .map(|id| {
            cluster
                .listen_addr(&format!("meta-{id}"))
                .unwrap()
                .to_string()
        })
        .collect();
    all.push(addr);
    let cfg = cluster
        .client_config_for("remaining.toml", &all, false)
        .expect("config");
    let remaining = cluster.client_from(&cfg).await.expect("client");
    mkdirs(&remaining, "b", 10).await;
    let status = remaining.status().await.expect("status");
    assert_eq!(status.meta_nodes.len(), 3, "{status:?}");
    assert!(status.meta_nodes.iter().all(|m| m.id != old));
    assert_ne!(status.leader, Some(old));
    assert_eq!(remaining.list("/").await.expect("list").len(), 70);
}
