//! Full disks: with every chunkserver on a small filesystem, puts are
//! acknowledged while there is room and refused with a clear "no space"
//! once there is none; every acknowledged file reads back exactly; no
//! temporary file is left behind on any server; and once space is freed
//! (files removed, their chunks collected) writes work again.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use cairn_tests::{chunkserver_status, random_bytes, DevCluster};

/// Each chunkserver's filesystem.
const DISK_MIB: u64 = 48;
const FILE_BYTES: usize = 12 << 20;

/// A cluster whose chunkservers' data directories are small tmpfs mounts;
/// on drop the cluster stops first, then the mounts go (even if the test
/// failed).
struct SmallDisks {
    cluster: DevCluster,
    mounts: Vec<PathBuf>,
}

impl Drop for SmallDisks {
    fn drop(&mut self) {
        let _ = self.cluster.stop_dev();
        for m in &self.mounts {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

fn small_disks() -> SmallDisks {
    let cluster = DevCluster::start().expect("cluster starts");
    let names = cluster.chunkserver_names();
    let sized: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), DISK_MIB)).collect();
    on_small_disks(cluster, &sized, &[])
}

/// Stops `cluster`, puts each `(server, MiB)` of `disks` on a tmpfs of that
/// size (a chunkserver's capacity is then its filesystem's size, its
/// collector runs every second), applies `extra` settings to those
/// chunkservers, and starts it again with an 8 s garbage grace period.
fn on_small_disks(
    mut cluster: DevCluster,
    disks: &[(&str, u64)],
    extra: &[(&str, i64)],
) -> SmallDisks {
    cluster.stop_dev().expect("stop");
    for (name, _) in disks.iter().filter(|(n, _)| n.starts_with("chunk")) {
        cluster
            .edit_config(name, |cfg| {
                cfg.insert("gc_interval_ms".into(), toml::Value::Integer(1_000));
                cfg.remove("capacity_bytes");
                for (k, v) in extra {
                    cfg.insert((*k).into(), toml::Value::Integer(*v));
                }
            })
            .expect("edit");
    }
    let mut small = SmallDisks {
        cluster,
        mounts: Vec::new(),
    };
    for (name, mib) in disks {
        let dir = small.cluster.dir().join("data").join(name);
        std::fs::create_dir_all(&dir).expect("data dir");
        // A metadata node's data moves onto the new disk.
        let keep = tempfile::tempdir().expect("tempdir");
        copy_tree(&dir, keep.path());
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={mib}m"))
            .arg("tmpfs")
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(
            ok.success(),
            "mounting a tmpfs on {} (needs root)",
            dir.display()
        );
        copy_tree(keep.path(), &dir);
        small.mounts.push(dir);
    }
    small
        .cluster
        .reconfigure_meta(&[("gc_grace_ms", 8_000)])
        .expect("restart on the small disks");
    small
}

/// Copies the files under `from` into `to` (same layout).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .expect("run cp");
    assert!(
        ok.success(),
        "copying {} to {}",
        from.display(),
        to.display()
    );
}

/// Temporary files left in the chunkservers' stores.
fn leftovers(disks: &SmallDisks) -> Vec<PathBuf> {
    disks
        .mounts
        .iter()
        .flat_map(|m| {
            std::fs::read_dir(m.join("tmp"))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_harms_nothing_and_recovers() {
    let disks = small_disks();
    let client = disks.cluster.client().await.expect("client");
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    for i in 0..10u64 {
        let data = random_bytes(FILE_BYTES, 900 + i);
        let path = format!("/f{i}");
        match client.put(&path, &data[..]).await {
            Ok(_) => acked.push((path, data)),
            Err(e) => refused.push(e.to_string()),
        }
    }
    assert!(
        !acked.is_empty() && !refused.is_empty(),
        "{} puts acknowledged, {} refused: the disks should fill part way",
        acked.len(),
        refused.len()
    );
    for e in &refused {
        assert!(
            e.to_lowercase().contains("no space"),
            "a refusal does not say the disks are full: {e}"
        );
    }
    for (path, data) in &acked {
        let mut back = Vec::new();
        client.get(path, &mut back).await.expect("get");
        assert!(&back == data, "{path} differs after the disks filled");
    }
    let left = leftovers(&disks);
    assert!(
        left.is_empty(),
        "{} temporary files left behind, first {:?}",
        left.len(),
        left.iter().take(3).collect::<Vec<_>>()
    );

    // Space freed: the files go, the collector deletes their chunks (and
    // the refused puts' uploads), and writes work again.
    for (path, _) in &acked {
        client.remove(path, false).await.expect("rm");
    }
    let data = random_bytes(FILE_BYTES, 999);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        match client.put("/again", &data[..]).await {
            Ok(_) => break,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "writes do not work again 40 s after space was freed: {e}"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    let mut back = Vec::new();
    client.get("/again", &mut back).await.expect("get");
    assert!(back == data, "the file written after recovery differs");
}

/// Whether chunkserver `id` is flagged full, as `client`'s cluster says.
async fn flagged_full(client: &cairn_client::Client, id: u64) -> bool {
    chunkserver_status(client, id).await.is_some_and(|c| c.full)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_chunkserver_is_flagged_and_writes_go_to_the_others() {
    let cluster = DevCluster::start_with(&["--chunkservers", "4"]).expect("cluster starts");
    // Every server announces the same ring weight (the smallest), so
    // chunk-1 gets its full share of the writes.
    for name in ["chunk-2", "chunk-3", "chunk-4"] {
        cluster
            .edit_config(name, |cfg| {
                cfg.insert("capacity_bytes".into(), toml::Value::Integer(1 << 30));
            })
            .expect("edit");
    }
    // chunk-1 alone is small: full below 12 MiB free, room again at 24 MiB.
    let disks = on_small_disks(
        cluster,
        &[("chunk-1", 40)],
        &[("min_free_bytes", 12 << 20), ("heartbeat_ms", 500)],
    );
    let client = disks.cluster.client().await.expect("client");
    // 72 MiB of files at 3 copies on 4 servers: chunk-1's share would be
    // about 54 MiB, more than its disk.
    let mut acked = Vec::new();
    let mut refused_before_flag = Vec::new();
    let mut refused_after_flag = Vec::new();
    let mut seen_full = false;
    for i in 0..24u64 {
        let data = random_bytes(3 << 20, 700 + i);
        let path = format!("/g{i}");
        match client.put(&path, &data[..]).await {
            Ok(_) => acked.push((path, data)),
            Err(e) if seen_full => refused_after_flag.push(e.to_string()),
            Err(e) => refused_before_flag.push(e.to_string()),
        }
        seen_full = seen_full || flagged_full(&client, 1).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(seen_full, "chunk-1 was never flagged full");
    assert!(
        refused_after_flag.is_empty(),
        "writes failed although three servers had room: {refused_after_flag:?}"
    );
    for e in &refused_before_flag {
        assert!(
            e.to_lowercase().contains("no space"),
            "unclear refusal: {e}"
        );
    }
    assert!(
        acked.len() >= 20,
        "only {} of 24 puts acknowledged ({refused_before_flag:?})",
        acked.len()
    );
    let free = disk_free(&disks.mounts[0]);
    assert!(free > 0, "chunk-1's disk filled up completely");
    for (path, data) in &acked {
        let mut back = Vec::new();
        client.get(path, &mut back).await.expect("get");
        assert!(&back == data, "{path} differs");
    }
    let left = leftovers(&disks);
    assert!(left.is_empty(), "temporary files left: {left:?}");

    // Space freed: chunk-1 takes writes again.
    for (path, _) in &acked {
        client.remove(path, false).await.expect("rm");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while flagged_full(&client, 1).await {
        assert!(
            Instant::now() < deadline,
            "chunk-1 still flagged full 60 s after its files were removed ({} bytes free)",
            disk_free(&disks.mounts[0])
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Free bytes of the filesystem at `path`.
fn disk_free(path: &std::path::Path) -> u64 {
    cairn_proto::disk_space::disk_space(path).map_or(0, |(_, free)| free)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_node_low_on_disk_refuses_writes_and_keeps_serving_reads() {
    let mut cluster = DevCluster::start().expect("cluster starts");
    cluster.stop_dev().expect("stop");
    cluster
        .edit_config("meta-1", |cfg| {
            cfg.insert("min_free_bytes".into(), toml::Value::Integer(16 << 20));
        })
        .expect("edit");
    let disks = on_small_disks(cluster, &[("meta-1", 96)], &[]);
    let client = disks.cluster.client().await.expect("client");
    client.mkdir("/kept", false).await.expect("mkdir");
    let data = random_bytes(200_000, 5);
    client.put("/kept/f", &data[..]).await.expect("put");

    // Fill the disk to below the reserve with a ballast file.
    let ballast = disks.mounts[0].join("ballast");
    let free = disk_free(&disks.mounts[0]);
    let fill = free.saturating_sub(8 << 20);
    std::fs::write(&ballast, vec![0u8; fill as usize]).expect("ballast");
    tokio::time::sleep(Duration::from_millis(600)).await;

    let refused = client.mkdir("/new", false).await;
    let err = refused.expect_err("a write was accepted below the reserve");
    assert_eq!(err.code(), Some(cairn_proto::ErrorCode::NoSpace), "{err}");
    assert!(err.to_string().contains("no space"), "{err}");
    let put = client.put("/kept/g", &b"more"[..]).await;
    assert!(put.is_err(), "a put was committed below the reserve");
    // Reads go on.
    let mut back = Vec::new();
    client.get("/kept/f", &mut back).await.expect("get");
    assert!(back == data, "the file read back differs");
    assert_eq!(client.list("/kept").await.expect("list").len(), 1);
    // Removing frees space and is allowed.
    client.remove("/kept/f", false).await.expect("rm while low");

    std::fs::remove_file(&ballast).expect("rm ballast");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.mkdir("/new", false).await {
            Ok(_) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "writes still refused: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_low_on_disk_makes_the_leader_refuse_writes() {
    let mut cluster = DevCluster::start_with(&["--meta", "3"]).expect("cluster starts");
    cluster.stop_dev().expect("stop");
    let metas = cluster.meta_names();
    for name in &metas {
        cluster
            .edit_config(name, |cfg| {
                cfg.insert("min_free_bytes".into(), toml::Value::Integer(16 << 20));
            })
            .expect("edit");
    }
    let sized: Vec<(&str, u64)> = metas.iter().map(|n| (n.as_str(), 96)).collect();
    let disks = on_small_disks(cluster, &sized, &[]);
    let client = disks.cluster.client().await.expect("client");
    client.mkdir("/kept", false).await.expect("mkdir");
    client.mkdir("/removable", false).await.expect("mkdir");

    // One follower's disk fills to below its reserve.
    let leader = client
        .status()
        .await
        .expect("status")
        .leader
        .expect("a leader");
    let (at, follower) = metas
        .iter()
        .enumerate()
        .find(|(_, n)| **n != format!("meta-{leader}"))
        .expect("a follower");
    let mount = &disks.mounts[at];
    let ballast = mount.join("ballast");
    let fill = disk_free(mount).saturating_sub(8 << 20);
    std::fs::write(&ballast, vec![0u8; fill as usize]).expect("ballast");

    // The leader hears of it within a few seconds and refuses growth.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    let err = loop {
        n += 1;
        match client.mkdir(&format!("/before-{n}"), false).await {
            Err(e) => break e,
            Ok(_) => {
                assert!(
                    Instant::now() < deadline,
                    "writes still accepted 10 s after {follower}'s disk fell below its reserve"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(err.code(), Some(cairn_proto::ErrorCode::NoSpace), "{err}");
    let id = follower.trim_start_matches("meta-");
    assert!(
        err.to_string()
            .contains(&format!("metadata node {id}'s disk")),
        "the refusal does not name {follower}: {err}"
    );
    assert_eq!(
        client.status().await.expect("status").leader,
        Some(leader),
        "the leader changed: the follower's low disk was not what refused the write"
    );
    // Reads and removals go on; the low follower is still a member.
    assert!(client.list("/kept").await.expect("list").is_empty());
    // (The first mkdir may already have been refused, so remove one made
    // before the disk filled.)
    client
        .remove("/removable", false)
        .await
        .expect("rm while low");

    std::fs::remove_file(&ballast).expect("rm ballast");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match client.mkdir("/after", false).await {
            Ok(_) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "writes still refused: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
