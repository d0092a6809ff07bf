//! A 3-node metadata group (`cairn dev --meta 3`): losing the leader loses
//! no acknowledged write and needs no manual step; a full restart keeps
//! the namespace.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_tests::{current_leader, random_bytes, DevCluster};

/// Puts acknowledged so far: path, bytes, when the acknowledgement came.
type Acked = Arc<Mutex<Vec<(String, Vec<u8>, Instant)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_during_puts_loses_no_acknowledged_file() {
    let cluster = DevCluster::start_with(&["--meta", "3"]).expect("cluster starts");
    let probe = cluster.client().await.expect("client");
    let status = probe.status().await.expect("status");
    assert_eq!(status.meta_nodes.len(), 3);
    let old = status.leader.expect("a leader");

    // Four clients put small files in a loop; each remembers what was
    // acknowledged, and when.
    let acked: Acked = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let client = cluster.client().await.expect("client");
        let acked = acked.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut failed = 0;
            for i in 0..10_000u64 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let data = random_bytes(2_000 + (i as usize % 7) * 1_000, w * 1_000_000 + i);
                let path = format!("/w{w}-{i}");
                match client.put(&path, &data[..]).await {
                    Ok(_) => acked.lock().unwrap().push((path, data, Instant::now())),
                    Err(_) => failed += 1,
                }
            }
            failed
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_kill = acked.lock().unwrap().len();
    assert!(before_kill > 0, "no put succeeded before the kill");
    let killed_at = Instant::now();
    cluster
        .kill9(&format!("meta-{old}"))
        .expect("kill -9 the leader");

    // Puts resume by themselves: wait (bounded) for acknowledgements after
    // the kill, then a little more.
    let deadline = killed_at + Duration::from_secs(30);
    let first_after = loop {
        let first = acked
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, t)| *t)
            .filter(|t| *t > killed_at)
            .min();
        if let Some(t) = first {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "no put succeeded within 30 s of the kill"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "first acknowledged put {:?} after the leader was killed",
        first_after - killed_at
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer task");
    }

    let fresh = cluster.client().await.expect("client after failover");
    let new = current_leader(&fresh).await.expect("a new leader");
    assert_ne!(new, old, "the killed node is still reported as leader");
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > before_kill, "no put succeeded after the kill");
    for (path, data, _) in &acked {
        let mut out = Vec::new();
        fresh
            .get(path, &mut out)
            .await
            .unwrap_or_else(|e| panic!("acknowledged {path} lost: {e}"));
        assert!(out == *data, "acknowledged {path} reads back differently");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_all_three_nodes_keeps_the_namespace() {
    let mut cluster = DevCluster::start_with(&["--meta", "3"]).expect("cluster starts");
    let client = cluster.client().await.expect("client");
    for d in 0..5 {
        client
            .mkdir(&format!("/d{d}/sub"), true)
            .await
            .expect("mkdir");
        for f in 0..8u64 {
            let data = random_bytes(1_000 + f as usize * 500, d * 100 + f);
            client
                .put(&format!("/d{d}/sub/f{f}"), &data[..])
                .await
                .expect("put");
        }
    }
    client
        .rename("/d0/sub/f0", "/d1/moved")
        .await
        .expect("rename");
    client.remove("/d2", true).await.expect("rm -r");
    let listing = |c: cairn_client::Client| async move {
        let mut out = Vec::new();
        let mut stack = vec!["/".to_string()];
        while let Some(dir) = stack.pop() {
            for e in c.list_long(&dir).await.expect("list") {
                let path = format!("{}/{}", dir.trim_end_matches('/'), e.name);
                out.push(format!("{path} {:?}", e));
                if e.attr.kind == cairn_proto::meta_rpc::FileKind::Dir {
                    stack.push(path);
                }
            }
        }
        out.sort();
        out
    };
    let before = listing(client).await;
    assert!(before.len() > 30);

    cluster.stop_dev().expect("stop");
    let started = Instant::now();
    cluster.start_dev().expect("restart");
    eprintln!("restarted in {:?}", started.elapsed());
    let client = cluster.client().await.expect("client");
    let after = listing(client).await;
    assert_eq!(before, after, "the namespace changed across a full restart");
}
