//! Full disks: with every chunkserver on a small filesystem, puts are
//! acknowledged while there is room and refused with a clear "no space"
//! once there is none; every acknowledged file reads back exactly; no
//! temporary file is left behind on any server; and once space is freed
//! (files removed, their chunks collected) writes work again.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use cairn_tests::{random_bytes, DevCluster};

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
    let mut cluster = DevCluster::start().expect("cluster starts");
    cluster.stop_dev().expect("stop");
    for name in cluster.chunkserver_names() {
        cluster
            .edit_config(&name, |cfg| {
                cfg.insert("gc_interval_ms".into(), toml::Value::Integer(1_000));
                // The filesystem's size is the capacity.
                cfg.remove("capacity_bytes");
            })
            .expect("edit");
    }
    let mut disks = SmallDisks {
        cluster,
        mounts: Vec::new(),
    };
    for name in disks.cluster.chunkserver_names() {
        let dir = disks.cluster.dir().join("data").join(&name);
        std::fs::create_dir_all(&dir).expect("data dir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={DISK_MIB}m"))
            .arg("tmpfs")
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(
            ok.success(),
            "mounting a tmpfs on {} (needs root)",
            dir.display()
        );
        disks.mounts.push(dir);
    }
    disks
        .cluster
        .reconfigure_meta(&[("gc_grace_ms", 8_000)])
        .expect("restart on the small disks");
    disks
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
