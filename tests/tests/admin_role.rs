//! The admin role: only an `admin` certificate changes the cluster. A
//! `client` certificate (every mount's, every gateway's) uses the namespace
//! and the data, and is refused — with a hint — when it tries to lower the
//! copy count, drain or remove a server, change the metadata group or run
//! GC. `cairn dev` gives its operator an admin config and its mount a
//! client one.

use cairn_tests::DevCluster;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn cert_role(cluster: &DevCluster, file: &str) -> String {
    let cert = cluster.dir().join("tls").join(file);
    let o = std::process::Command::new(cairn_tests::cairn_bin())
        .args(["cert", "show", "--json"])
        .arg(&cert)
        .output()
        .expect("cairn cert show");
    assert!(o.status.success(), "cert show: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    v["role"].as_str().expect("role").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_admin_certificate_changes_the_cluster() {
    let mut cluster = DevCluster::start().expect("cluster starts");
    assert_eq!(cert_role(&cluster, "client.pem"), "client");
    assert_eq!(cert_role(&cluster, "admin.pem"), "admin");

    let client = cluster.client_config();
    let as_client = |args: &[&str]| cluster.cairn_as(&client, args, None);
    // The namespace and the data are the client's.
    let o = as_client(&["mkdir", "-p", "/d"]);
    assert!(o.status.success(), "client mkdir: {}", stderr(&o));
    let o = cluster.cairn_as(&client, &["put", "-", "/d/f"], Some(b"bytes"));
    assert!(o.status.success(), "client put: {}", stderr(&o));

    // The cluster is not.
    for args in [
        &["replication", "--copies", "1", "--sync-copies", "1"][..],
        &["chunkserver", "drain", "1"],
        &["chunkserver", "remove", "2"],
        &["meta", "remove-node", "1"],
        &["gc", "--dry-run"],
    ] {
        let o = as_client(args);
        assert!(
            !o.status.success(),
            "a client ran `cairn {}`",
            args.join(" ")
        );
        assert!(
            stderr(&o).contains("needs an admin certificate"),
            "`cairn {}` refused without the hint: {}",
            args.join(" "),
            stderr(&o)
        );
    }
    let status = cluster
        .client()
        .await
        .expect("client")
        .status()
        .await
        .expect("status");
    assert_eq!(status.policy.copies, 3, "a client lowered the copy count");
    assert!(
        status.chunkservers.iter().all(|c| !c.draining),
        "a client drained a server: {status:?}"
    );
    assert_eq!(status.chunkservers.len(), 3, "a client removed a server");
    assert!(
        cluster
            .log_tails(200)
            .contains("refused a request the peer's role may not make"),
        "the refusals are not logged"
    );

    // The operator's config may.
    let o = cluster.cairn(&["replication", "--copies", "2", "--sync-copies", "1"]);
    assert!(o.status.success(), "admin replication: {}", stderr(&o));
    let o = cluster.cairn(&["gc", "--dry-run", "--json"]);
    assert!(o.status.success(), "admin gc: {}", stderr(&o));
    let status = cluster
        .client()
        .await
        .expect("client")
        .status()
        .await
        .expect("status");
    assert_eq!((status.policy.copies, status.policy.sync_copies), (2, 1));

    // A dev cluster made before the admin role gets its admin config on
    // the next start.
    cluster.stop_dev().expect("stop");
    std::fs::remove_file(cluster.admin_config()).expect("remove admin.toml");
    cluster.start_dev().expect("restart");
    assert_eq!(cert_role(&cluster, "admin.pem"), "admin");
    let o = cluster.cairn(&["replication", "--copies", "3", "--sync-copies", "2"]);
    assert!(o.status.success(), "admin after restart: {}", stderr(&o));
}
