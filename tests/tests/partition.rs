//! Network faults in the metadata group, with real processes whose Raft
//! traffic runs through UDP relays the test can cut: a partitioned node
//! cannot serve writes or linearizable reads while the majority goes on,
//! and it catches up after healing; and under partitions and a leader
//! kill, a history of concurrent creates, renames and stats is
//! linearizable.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_proto::ErrorCode;
use cairn_tests::linearizability::{check, Event, Op, Outcome};
use cairn_tests::udp_proxy::{Partition, UdpProxy};
use cairn_tests::{current_leader, wait_listing, DevCluster};

/// A 3-node group whose nodes reach each other only through relays.
struct Relayed {
    cluster: DevCluster,
    partition: Partition,
    _proxies: Vec<UdpProxy>,
    /// Node id → the address clients use (the node's own).
    addrs: BTreeMap<u64, String>,
}

async fn relayed_cluster() -> Relayed {
    let mut cluster = DevCluster::start_with(&["--meta", "3"]).expect("cluster starts");
    let partition = Partition::default();
    let mut proxies = Vec::new();
    let mut peers = BTreeMap::new();
    let mut addrs = BTreeMap::new();
    for id in 1..=3u64 {
        let real = cluster.listen_addr(&format!("meta-{id}")).expect("addr");
        let proxy = UdpProxy::start(real, partition.clone()).expect("relay");
        peers.insert(id, proxy.addr.to_string());
        addrs.insert(id, real.to_string());
        proxies.push(proxy);
    }
    cluster
        .rebuild_meta_group(&peers)
        .expect("group through relays");
    Relayed {
        cluster,
        partition,
        _proxies: proxies,
        addrs,
    }
}

fn port(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("host:port")
}

/// Runs `f`, giving up after `limit`: `None` if it did not finish.
async fn within<T>(limit: Duration, f: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(limit, f).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_refuses_and_the_majority_serves() {
    let r = relayed_cluster().await;
    let client = r.cluster.client().await.expect("client");
    client.mkdir("/before", false).await.expect("mkdir");
    let leader = current_leader(&client).await.expect("leader");
    let leader_addr = r.addrs[&leader].clone();
    // Clients that reach only the old leader: one linearizable, one
    // accepting its possibly stale state.
    let only = r
        .cluster
        .client_config_for(
            "only-leader.toml",
            std::slice::from_ref(&leader_addr),
            false,
        )
        .expect("config");
    let only_leader = r.cluster.client_from(&only).await.expect("client");
    let stale = r
        .cluster
        .client_config_for(
            "only-leader-stale.toml",
            std::slice::from_ref(&leader_addr),
            true,
        )
        .expect("config");
    let on_old_leader = r.cluster.client_from(&stale).await.expect("client");

    r.partition.isolate(port(&leader_addr));

    // The majority elects a new leader and goes on.
    let started = Instant::now();
    for i in 0..5 {
        within(
            Duration::from_secs(30),
            client.mkdir(&format!("/during{i}"), false),
        )
        .await
        .expect("a write to the majority finished")
        .expect("the majority accepts writes");
    }
    eprintln!(
        "majority served 5 writes {:?} after the cut",
        started.elapsed()
    );
    let status = client.status().await.expect("status");
    assert!(
        status.leader.is_some() && status.leader != Some(leader),
        "{status:?}"
    );

    // The cut-off node neither commits writes nor answers linearizable reads.
    let write = within(
        Duration::from_secs(8),
        only_leader.mkdir("/minority", false),
    )
    .await;
    assert!(
        !matches!(write, Some(Ok(_))),
        "the minority accepted a write: {write:?}"
    );
    let read = within(Duration::from_secs(8), only_leader.stat("/before")).await;
    assert!(
        !matches!(read, Some(Ok(_))),
        "the minority answered a linearizable read: {read:?}"
    );

    // Healed, it catches up, and the write it could not commit is gone.
    r.partition.heal();
    wait_listing(&on_old_leader, 6, "the healed old leader").await;
    let gone = client.stat("/minority").await;
    assert_eq!(
        gone.err().and_then(|e| e.code()),
        Some(ErrorCode::NotFound),
        "a write the minority never committed became visible"
    );
}

/// Operations one worker records at most: a bound on the loop, well above
/// what the faults take at the pacing below (~16 s / 30 ms), so that the
/// workers run until told to stop even when every operation is quick.
const MAX_OPS_PER_WORKER: usize = 1000;

/// Names the history works on, in directory `/lin`.
const NAMES: [&str; 3] = ["a", "b", "c"];

fn outcome(op: Op, r: Result<(), cairn_client::ClientError>) -> Outcome {
    match (op, r) {
        (Op::Stat(_), Ok(())) => Outcome::Found,
        (_, Ok(())) => Outcome::Ok,
        (Op::Create(_), Err(e)) if e.code() == Some(ErrorCode::AlreadyExists) => Outcome::Exists,
        (_, Err(e)) if e.code() == Some(ErrorCode::NotFound) => Outcome::NotFound,
        _ => Outcome::Unknown,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_under_partitions_and_a_leader_kill_are_linearizable() {
    let r = relayed_cluster().await;
    let setup = r.cluster.client().await.expect("client");
    setup.mkdir("/lin", false).await.expect("mkdir /lin");

    let history: Arc<Mutex<Vec<Event>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..3u64 {
        let client = r.cluster.client().await.expect("client");
        let (history, stop) = (history.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut x = w.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            // Until the faults are over (bounded in count), paced so the
            // history spans them.
            for _ in 0..MAX_OPS_PER_WORKER {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let (a, b) = ((x % 3) as u8, ((x >> 8) % 3) as u8);
                let op = match (x >> 16) % 3 {
                    0 => Op::Create(a),
                    1 => Op::Rename(a, b),
                    _ => Op::Stat(a),
                };
                let path = |n: u8| format!("/lin/{}", NAMES[n as usize]);
                let invoked = Instant::now();
                let call = async {
                    match op {
                        Op::Create(n) => client.mkdir(&path(n), false).await.map(|_| ()),
                        Op::Rename(a, b) => client.rename(&path(a), &path(b)).await,
                        Op::Stat(n) => client.stat(&path(n)).await.map(|_| ()),
                        Op::Put(..) | Op::Read(_) | Op::Remove(_) => {
                            unreachable!("this workload has no file operations")
                        }
                    }
                };
                let result = within(Duration::from_secs(10), call).await;
                let outcome = match result {
                    Some(r) => outcome(op, r),
                    None => Outcome::Unknown,
                };
                let completed = (outcome != Outcome::Unknown).then(Instant::now);
                history.lock().unwrap().push(Event {
                    op,
                    outcome,
                    invoked,
                    completed,
                });
            }
        }));
    }

    // Faults while they run: cut each node off in turn, then kill the leader.
    for id in 1..=3u64 {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        r.partition.isolate(port(&r.addrs[&id]));
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        r.partition.heal();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The history must include a leader kill: wait for one to be elected
    // after the last heal rather than skip the kill.
    let deadline = Instant::now() + Duration::from_secs(15);
    let leader = loop {
        if let Some(Some(id)) = within(Duration::from_secs(5), current_leader(&setup)).await {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "no metadata leader 15 s after the partitions healed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    r.cluster
        .kill9(&format!("meta-{leader}"))
        .expect("kill the leader");
    // Let them run well past the failover (an operation caught on the
    // killed leader's connection can take the QUIC idle timeout, 4 s), so
    // that operations are invoked after it; then stop them. Each stops
    // within one operation (at most 10 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        within(Duration::from_secs(30), w)
            .await
            .expect("a worker stopped")
            .expect("worker task");
    }

    let history = history.lock().unwrap().clone();
    let known = history
        .iter()
        .filter(|e| e.outcome != Outcome::Unknown)
        .count();
    eprintln!(
        "history: {} operations, {known} with a known result",
        history.len()
    );
    assert!(
        known >= history.len() / 2 && known >= 100,
        "too few operations completed to say anything"
    );
    let started = history.iter().map(|e| e.invoked).min().expect("operations");
    let last = history.iter().map(|e| e.invoked).max().expect("operations");
    assert!(
        last - started > Duration::from_secs(10),
        "the history does not span the faults"
    );
    check(&history, 50_000_000).expect("the history is linearizable");
}
