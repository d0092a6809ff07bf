//! Namespace operations and their refusals; a refused request changes nothing.

use cairn_proto::ErrorCode;
use cairn_tests::DevCluster;

/// Every path under `/` with its kind and size, for before/after comparison.
fn tree(cluster: &DevCluster) -> String {
    fn walk(cluster: &DevCluster, path: &str, out: &mut String) {
        let o = cluster.cairn(&["ls", "--json", path]);
        assert!(
            o.status.success(),
            "ls {path}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
        for e in v.as_array().expect("array") {
            let name = e["name"].as_str().expect("name");
            let child = format!("{}/{name}", path.trim_end_matches('/'));
            out.push_str(&format!(
                "{child} {} {} {}\n",
                e["kind"], e["size"], e["ino"]
            ));
            if e["kind"] == "Dir" {
                walk(cluster, &child, out);
            }
        }
    }
    let mut s = String::new();
    walk(cluster, "/", &mut s);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_over_existing_file_replaces_it() {
    let cluster = DevCluster::start().expect("cluster starts");
    let client = cluster.client().await.expect("client");
    client.put("/a", &b"new contents"[..]).await.unwrap();
    client.put("/b", &b"old"[..]).await.unwrap();
    client.rename("/a", "/b").await.expect("rename over a file");
    let mut out = Vec::new();
    client.get("/b", &mut out).await.unwrap();
    assert_eq!(out, b"new contents");
    assert_eq!(
        client.stat("/a").await.unwrap_err().code(),
        Some(ErrorCode::NotFound)
    );
    // mv into a directory keeps the name.
    client.mkdir("/d", false).await.unwrap();
    let o = cluster.cairn(&["mv", "/b", "/d"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(client.stat("/d/b").await.unwrap().size, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_fail_cleanly_and_change_nothing() {
    let cluster = DevCluster::start().expect("cluster starts");
    let client = cluster.client().await.expect("client");
    client.mkdir("/full/sub", true).await.unwrap();
    client.put("/full/file", &b"x"[..]).await.unwrap();
    client.put("/plain", &b"y"[..]).await.unwrap();
    let before = tree(&cluster);

    // Library: each refusal has the right code.
    let long = format!("/{}", "n".repeat(256));
    let cases: Vec<(&str, Result<(), cairn_client::ClientError>, ErrorCode)> = vec![
        (
            "rm non-empty dir",
            client.remove("/full", false).await,
            ErrorCode::NotEmpty,
        ),
        (
            "mkdir existing",
            client.mkdir("/full", false).await.map(|_| ()),
            ErrorCode::AlreadyExists,
        ),
        (
            "name of 256 bytes",
            client.mkdir(&long, false).await.map(|_| ()),
            ErrorCode::InvalidName,
        ),
        (
            "put under a file",
            client.put("/plain/x", &b"z"[..]).await.map(|_| ()),
            ErrorCode::NotADirectory,
        ),
        (
            "put onto a dir",
            client.put("/full", &b"z"[..]).await.map(|_| ()),
            ErrorCode::IsADirectory,
        ),
        (
            "put under missing",
            client.put("/nope/x", &b"z"[..]).await.map(|_| ()),
            ErrorCode::NotFound,
        ),
        (
            "move dir into itself",
            client.rename("/full", "/full/sub/full").await,
            ErrorCode::InvalidMove,
        ),
        (
            "rename dir over file",
            client.rename("/full", "/plain").await,
            ErrorCode::NotADirectory,
        ),
        (
            "rename missing",
            client.rename("/missing", "/m2").await,
            ErrorCode::NotFound,
        ),
        (
            "dot-dot",
            client.mkdir("/full/../x", false).await.map(|_| ()),
            ErrorCode::InvalidName,
        ),
    ];
    for (what, result, code) in cases {
        let err = result.expect_err(what);
        assert_eq!(err.code(), Some(code), "{what}: {err}");
    }
    let mut sink = Vec::new();
    let err = client
        .get("/missing", &mut sink)
        .await
        .expect_err("get missing");
    assert_eq!(err.code(), Some(ErrorCode::NotFound));
    assert!(sink.is_empty());

    // CLI: one clear line, non-zero exit, and no partial local file.
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out");
    for (args, needle) in [
        (
            vec!["get", "/missing", dst.to_str().unwrap()],
            "no such file",
        ),
        (vec!["rm", "/full"], "not empty"),
        (vec!["ls", "/plain/x"], "not a directory"),
        (vec!["mkdir", "/full/.."], "invalid name"),
    ] {
        let o = cluster.cairn(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(
            err.to_lowercase().contains(needle),
            "{args:?}: message {err:?} lacks {needle:?}"
        );
    }
    assert!(!dst.exists(), "a failed get left a local file");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a failed get left a partial file"
    );
    assert_eq!(
        tree(&cluster),
        before,
        "a refused request changed the namespace"
    );

    // Recursive removal works, and rmdir of the emptied tree.
    client.remove("/full", true).await.expect("rm -r");
    assert_eq!(client.list("/").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_and_chmod_through_the_client() {
    use cairn_proto::meta_rpc::AttrChange;
    let cluster = DevCluster::start().expect("cluster starts");
    let client = cluster.client().await.expect("client");
    let data = cairn_tests::random_bytes(3 << 20, 11);
    client.put("/f", &data[..]).await.expect("put");
    let size = |n| AttrChange {
        size: Some(n),
        ..AttrChange::default()
    };
    // Shrink into the middle of the file: the prefix stays byte-exact.
    let cut = (1 << 20) + 12_345;
    let a = client.set_attr("/f", size(cut)).await.expect("truncate");
    assert_eq!(a.size, cut);
    let mut out = Vec::new();
    client.get("/f", &mut out).await.expect("get");
    assert!(out == data[..cut as usize], "truncated file reads wrong");
    // Grow: the new tail reads as zeros.
    client
        .set_attr("/f", size(cut + 5_000))
        .await
        .expect("grow");
    let mut out = Vec::new();
    client.get("/f", &mut out).await.expect("get");
    assert_eq!(out.len() as u64, cut + 5_000);
    assert!(out[..cut as usize] == data[..cut as usize]);
    assert!(
        out[cut as usize..].iter().all(|b| *b == 0),
        "the hole is not zeros"
    );
    let m = client
        .set_attr(
            "/f",
            AttrChange {
                mode: Some(0o600),
                ..AttrChange::default()
            },
        )
        .await
        .expect("chmod");
    assert_eq!(m.mode, 0o600);
    assert_eq!(client.stat("/f").await.expect("stat").mode, 0o600);
    let err = client
        .set_attr("/", size(0))
        .await
        .expect_err("truncate a dir");
    assert_eq!(err.code(), Some(ErrorCode::IsADirectory));
}
