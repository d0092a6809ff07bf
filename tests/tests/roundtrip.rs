//! Bytes in equal bytes out, through the library and the CLI; dedup.

use std::time::Duration;

use cairn_tests::{random_bytes, DevCluster};

async fn put_get(client: &cairn_client::Client, path: &str, data: &[u8]) -> Vec<u8> {
    let attr = client.put(path, data).await.expect("put succeeds");
    assert_eq!(attr.size, data.len() as u64, "size of {path}");
    let mut out = Vec::new();
    let n = client.get(path, &mut out).await.expect("get succeeds");
    assert_eq!(n, data.len() as u64);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_round_trip_byte_exact() {
    let cluster = DevCluster::start().expect("cluster starts");
    let client = cluster.client().await.expect("client connects");
    for (i, size) in [0usize, 1, (1 << 20) + 1, 64 << 20].into_iter().enumerate() {
        let data = random_bytes(size, i as u64);
        let path = format!("/file-{size}");
        let back = put_get(&client, &path, &data).await;
        assert!(
            back == data,
            "{path}: {} bytes back differ from {} put",
            back.len(),
            data.len()
        );
    }
    // A range from the middle of the big file, across chunk boundaries.
    let data = random_bytes(64 << 20, 3);
    let mut out = Vec::new();
    let n = client
        .get_range("/file-67108864", 5_000_000, 3_000_000, &mut out)
        .await
        .expect("range read");
    assert_eq!(n, 3_000_000);
    assert!(out == data[5_000_000..8_000_000], "range bytes differ");
    // A range past the end is clipped, not an error.
    let mut out = Vec::new();
    let n = client
        .get_range("/file-1", 0, 100, &mut out)
        .await
        .expect("clipped range");
    assert_eq!((n, out.len()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_content_is_stored_once() {
    let cluster = DevCluster::start().expect("cluster starts");
    let client = cluster.client().await.expect("client connects");
    let data = random_bytes(64 << 20, 42);
    client.put("/a", &data[..]).await.expect("first put");
    cluster
        .wait_replicated(3, Duration::from_secs(30))
        .expect("3 copies");
    let after_first = cluster.stored_bytes();
    assert!(
        after_first >= data.len() as u64,
        "chunk bytes {after_first} < data"
    );
    client.put("/b", &data[..]).await.expect("second put");
    cluster
        .wait_replicated(3, Duration::from_secs(30))
        .expect("3 copies");
    assert_eq!(
        cluster.stored_bytes(),
        after_first,
        "the second put of identical content must add no chunk bytes"
    );
    let mut out = Vec::new();
    client.get("/b", &mut out).await.expect("get /b");
    assert!(out == data, "deduplicated file reads back differently");
    // Repeating content inside one file dedups too: 8 copies of 2 MiB.
    let block = random_bytes(2 << 20, 7);
    let repeated: Vec<u8> = block.iter().copied().cycle().take(16 << 20).collect();
    let before = cluster.stored_bytes();
    put_get(&client, "/repeated", &repeated).await;
    cluster
        .wait_replicated(3, Duration::from_secs(30))
        .expect("3 copies");
    // Three copies of each distinct chunk: without dedup, 3 x 16 MiB.
    let added = cluster.stored_bytes() - before;
    assert!(
        added < 3 * (6 << 20),
        "16 MiB of repeated content added {added} chunk bytes over 3 copies"
    );
}

#[test]
fn cli_put_get_ls_stat() {
    let cluster = DevCluster::start().expect("cluster starts");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    let data = random_bytes(3 << 20, 9);
    std::fs::write(&src, &data).unwrap();
    let ok = |out: std::process::Output, what: &str| {
        assert!(
            out.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    ok(cluster.cairn(&["mkdir", "-p", "/x/y"]), "mkdir -p");
    ok(
        cluster.cairn(&["put", src.to_str().unwrap(), "/x/y/"]),
        "put into dir",
    );
    ok(
        cluster.cairn_stdin(&["put", "-", "/x/stdin.bin"], Some(&data)),
        "put from stdin",
    );
    let dst = dir.path().join("back.bin");
    ok(
        cluster.cairn(&["get", "/x/y/src.bin", dst.to_str().unwrap()]),
        "get",
    );
    assert!(
        std::fs::read(&dst).unwrap() == data,
        "CLI get returned different bytes"
    );
    let out = ok(
        cluster.cairn(&["get", "/x/stdin.bin", "-"]),
        "get to stdout",
    );
    assert!(out.stdout == data, "stdout bytes differ");
    let ls = ok(cluster.cairn(&["ls", "/x"]), "ls");
    assert_eq!(String::from_utf8_lossy(&ls.stdout), "stdin.bin\ny/\n");
    let json = ok(cluster.cairn(&["ls", "--json", "/x/y"]), "ls --json");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("ls --json is JSON");
    assert_eq!(v[0]["name"], "src.bin");
    assert_eq!(v[0]["size"], data.len() as u64);
    let st = ok(
        cluster.cairn(&["stat", "--json", "/x/y/src.bin"]),
        "stat --json",
    );
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).expect("stat --json is JSON");
    assert_eq!(v["size"], data.len() as u64);
    let status = ok(cluster.cairn(&["status", "--json"]), "status --json");
    let v: serde_json::Value =
        serde_json::from_slice(&status.stdout).expect("status --json is JSON");
    assert_eq!(v["chunkservers"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["leader"], 1);
    // Owners show as names, as `ls -l` shows them (the CLI runs as root here).
    let long = ok(cluster.cairn(&["ls", "-l", "/x/y"]), "ls -l");
    let line = String::from_utf8_lossy(&long.stdout).into_owned();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.get(2..4), Some(&["root", "root"][..]), "{line}");

    // Output cut off (`cairn status | head -1`) ends quietly, killed by
    // SIGPIPE as `ls` would be, instead of panicking in println!.
    let mut child = std::process::Command::new(cairn_tests::cairn_bin())
        .args(["status", "--config"])
        .arg(cluster.admin_config())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn cairn status");
    // The reader goes away before cairn has connected, let alone printed.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for cairn status");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "cairn status into a closed pipe: {:?}, {stderr}",
        out.status
    );
}

/// Scattered small writes of one flush are one chunk put: their bytes
/// laid end to end in a shared chunk, each write an extent naming its
/// place in it; whole reads and range reads of such a file are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scattered_small_writes_share_one_chunk_and_read_back_exactly() {
    use bytes::Bytes;
    let cluster = DevCluster::start().expect("cluster starts");
    let client = cluster.client().await.expect("client connects");
    let mut want = random_bytes(8 << 20, 70);
    let attr = client.put("/db", &want[..]).await.expect("put");
    let before = client
        .inodes()
        .content(attr.ino)
        .await
        .expect("content")
        .0
        .extents;
    // 32 writes of 4 KiB, each in a different 256 KiB stretch of the file.
    let parts: Vec<(u64, Bytes)> = (0..32u64)
        .map(|i| {
            let at = i * (256 << 10) + (i * 4_100) % (200 << 10);
            (at, Bytes::from(random_bytes(4096, 100 + i)))
        })
        .collect();
    for (at, d) in &parts {
        want[*at as usize..*at as usize + d.len()].copy_from_slice(d);
    }
    client
        .inodes()
        .write_parts(attr.ino, &parts, want.len() as u64)
        .await
        .expect("write parts");
    let after = client
        .inodes()
        .content(attr.ino)
        .await
        .expect("content")
        .0
        .extents;
    let old: std::collections::HashSet<_> = before.iter().map(|e| e.chunk).collect();
    let new: std::collections::HashSet<_> = after
        .iter()
        .map(|e| e.chunk)
        .filter(|c| !old.contains(c))
        .collect();
    assert_eq!(
        new.len(),
        1,
        "32 small writes made {} new chunks",
        new.len()
    );
    let packed: Vec<_> = after.iter().filter(|e| new.contains(&e.chunk)).collect();
    assert_eq!(packed.len(), 32, "one extent per write");
    assert!(
        packed.iter().any(|e| e.chunk_offset > 0),
        "the writes sit at their own places in the shared chunk"
    );
    let mut out = Vec::new();
    client.get("/db", &mut out).await.expect("get");
    assert!(out == want, "the file reads back with every write in place");
    for (at, d) in parts.iter().skip(1).step_by(7) {
        let mut got = Vec::new();
        client
            .get_range("/db", *at - 10, d.len() as u64 + 20, &mut got)
            .await
            .expect("range");
        let at = *at as usize;
        assert!(got == want[at - 10..at + d.len() + 10], "range around {at}");
    }
}
