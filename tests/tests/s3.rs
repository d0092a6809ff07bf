//! The S3 gateway `cairn dev` starts, driven by real clients: boto3
//! through every operation it serves and the errors clients expect
//! (`tests/s3/boto3_suite.py`), the aws cli's cp (multipart up, down and
//! server-side) / sync / ls / rm, and the mount seeing what S3 wrote and
//! the reverse.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use cairn_tests::fuse_mount::FuseMount;
use cairn_tests::metrics::{get, served_by};
use cairn_tests::{random_bytes, s3_clients, DevCluster};

fn ok(what: &str, out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The aws cli with `config`; `args` split at spaces (paths here have none).
fn aws(cluster: &DevCluster, config: &Path, args: &str) -> String {
    let cfg = config.to_str().expect("utf-8 path");
    let argv: Vec<&str> = args.split(' ').collect();
    let out = s3_clients::run(cluster, "aws", &argv, &[("AWS_CONFIG_FILE", cfg)]).expect("aws");
    ok(&format!("aws {args}"), out)
}

#[test]
fn boto3_sees_every_operation_and_error_as_s3_defines_them() {
    let cluster = DevCluster::start().expect("cluster");
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("s3/boto3_suite.py");
    let out =
        s3_clients::run(&cluster, "python", &[suite.to_str().expect("path")], &[]).expect("python");
    let text = ok("the boto3 suite", out);
    assert!(text.contains("boto3 suite passed"), "{text}");

    // The gateway counted what it served, by operation and outcome.
    let cfg = cairn_s3::GatewayConfig::load(&cluster.dir().join("s3.toml")).expect("config");
    let (_, body) = get(cfg.metrics_listen.expect("a metrics address"), "/metrics");
    let count = |op: &str, outcome: &str| -> f64 {
        let labels = format!("op=\"{op}\",outcome=\"{outcome}\"");
        body.lines()
            .filter(|l| l.starts_with("cairn_requests_total{") && l.contains(&labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(count("PutObject", "ok") >= 20.0, "{body}");
    assert!(count("GetObject", "ok") >= 10.0, "{body}");
    assert!(count("CompleteMultipartUpload", "ok") >= 2.0, "{body}");
    assert!(count("GetObject", "error") >= 1.0, "{body}");
    let denied: f64 = body
        .lines()
        .filter(|l| l.starts_with("cairn_requests_total{") && l.contains("outcome=\"denied\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        denied >= 3.0,
        "the badly signed requests count as denied: {body}"
    );
}

#[test]
fn aws_cli_and_the_mount_share_one_namespace() {
    let cluster = DevCluster::start().expect("cluster");
    let work = tempfile::tempdir().expect("tempdir");
    let w = |p: &str| work.path().join(p).to_str().expect("utf-8").to_string();
    // The aws cli's defaults: uploads and copies over 8 MiB go multipart.
    let config = work.path().join("aws.cfg");
    fs::write(&config, "[default]\ns3 =\n  addressing_style = path\n").expect("aws config");
    let aws = |args: &str| aws(&cluster, &config, args);
    aws("s3 mb s3://shared");

    // cp up (in two parts) and down, byte for byte.
    let big = random_bytes(9 << 20, 7);
    fs::write(w("big.bin"), &big).expect("write");
    aws(&format!("s3 cp {} s3://shared/blobs/big.bin", w("big.bin")));
    aws(&format!(
        "s3 cp s3://shared/blobs/big.bin {}",
        w("back.bin")
    ));
    assert!(
        fs::read(w("back.bin")).expect("read") == big,
        "aws s3 cp round trip"
    );
    let head = aws("s3api head-object --bucket shared --key blobs/big.bin");
    assert!(
        head.contains("-2\\\""),
        "9 MiB went up in two parts: {head}"
    );

    // A server-side copy (the cli copies this size part by part) stores
    // no new chunk bytes.
    cluster
        .wait_replicated(3, Duration::from_secs(60))
        .expect("replicated");
    let stored = cluster.stored_bytes();
    let moved = chunk_traffic(&cluster);
    aws("s3 cp s3://shared/blobs/big.bin s3://shared/blobs/copy.bin");
    assert_eq!(
        chunk_traffic(&cluster),
        moved,
        "the copy read or wrote no chunk"
    );
    assert_eq!(
        cluster.stored_bytes(),
        stored,
        "the copy added no chunk bytes"
    );
    aws(&format!(
        "s3 cp s3://shared/blobs/copy.bin {}",
        w("copy.bin")
    ));
    assert!(
        fs::read(w("copy.bin")).expect("read") == big,
        "the copy has the bytes"
    );
    aws("s3 rm s3://shared/blobs/copy.bin");

    // sync up twice: the second finds nothing to do.
    let tree = work.path().join("tree");
    for (p, n) in [
        ("a.txt", 10),
        ("sub/b.txt", 2000),
        ("sub/deep/c.bin", 70_000),
    ] {
        let f = tree.join(p);
        fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
        fs::write(&f, random_bytes(n, n as u64)).expect("write");
    }
    let up = aws(&format!("s3 sync {} s3://shared/tree", w("tree")));
    assert_eq!(up.matches("upload:").count(), 3, "{up}");
    let again = aws(&format!("s3 sync {} s3://shared/tree", w("tree")));
    assert!(
        !again.contains("upload:"),
        "the second sync uploads nothing: {again}"
    );
    // ... and down into an empty directory, twice.
    aws(&format!("s3 sync s3://shared/tree {}", w("down")));
    for p in ["a.txt", "sub/b.txt", "sub/deep/c.bin"] {
        let got = fs::read(work.path().join("down").join(p)).expect("read");
        assert_eq!(got, fs::read(tree.join(p)).expect("read"), "{p}");
    }
    let again = aws(&format!("s3 sync s3://shared/tree {}", w("down")));
    assert!(
        !again.contains("download:"),
        "the second sync downloads nothing: {again}"
    );

    let ls = aws("s3 ls --recursive s3://shared/");
    let listed: Vec<&str> = ls
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    let want = [
        "blobs/big.bin",
        "tree/a.txt",
        "tree/sub/b.txt",
        "tree/sub/deep/c.bin",
    ];
    assert_eq!(listed, want, "{ls}");

    // The mount sees what S3 wrote, and S3 what the mount writes.
    let mount = FuseMount::start(&cluster, &[]).expect("mount");
    let via_mount = fs::read(mount.join("shared/tree/sub/deep/c.bin")).expect("read via mount");
    assert_eq!(
        via_mount,
        fs::read(tree.join("sub/deep/c.bin")).expect("read")
    );
    fs::write(
        mount.join("shared/tree/from-mount.txt"),
        b"written by the mount",
    )
    .expect("write");
    // An object rewritten through the mount must not keep its old ETag.
    fs::write(mount.join("shared/tree/a.txt"), b"rewritten").expect("write");
    aws(&format!(
        "s3 cp s3://shared/tree/from-mount.txt {}",
        w("from-mount.txt")
    ));
    assert_eq!(
        fs::read(w("from-mount.txt")).expect("read"),
        b"written by the mount"
    );
    let head = aws("s3api head-object --bucket shared --key tree/a.txt");
    let md5_of_old = format!("{:x}", md5_of(&fs::read(tree.join("a.txt")).expect("read")));
    assert!(
        !head.contains(&md5_of_old),
        "a rewritten file keeps no stale ETag: {head}"
    );
    assert!(head.contains("\"ContentLength\": 9"), "{head}");

    // rm --recursive empties the prefix, and the mount sees it go.
    let rm = aws("s3 rm --recursive s3://shared/tree");
    assert_eq!(rm.matches("delete:").count(), 4, "{rm}");
    // (The mount's entry cache may hold the name a moment.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while mount.join("shared/tree").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !mount.join("shared/tree").exists(),
        "emptied directories go too"
    );
    assert!(mount.join("shared/blobs/big.bin").exists());
}

/// Chunk reads and writes the chunkservers have served.
fn chunk_traffic(cluster: &DevCluster) -> u64 {
    let mut n = 0;
    for name in cluster.chunkserver_names() {
        for op in ["Put", "Get", "GetRange"] {
            n += served_by(cluster, &name, op);
        }
    }
    n
}

/// MD5, for comparing with ETags (not a dependency of the suite).
fn md5_of(data: &[u8]) -> u128 {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let out = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(data)?;
            c.wait_with_output()
        })
        .expect("md5sum");
    let hex = String::from_utf8_lossy(&out.stdout);
    u128::from_str_radix(hex.split_whitespace().next().expect("a digest"), 16).expect("hex")
}

/// Runs `code` in boto3's Python, `s3` a client of the gateway; answers
/// what it printed.
fn boto3(cluster: &DevCluster, code: &str) -> String {
    let script = format!(
        "import boto3, os\nfrom botocore.config import Config\n\
         s3 = boto3.client('s3', config=Config(s3={{'addressing_style': 'path'}}))\n{code}"
    );
    let out = s3_clients::run(cluster, "python", &["-c", &script], &[]).expect("python");
    ok("boto3", out)
}

#[test]
fn uploads_never_completed_are_removed_with_their_parts() {
    let mut cluster = DevCluster::start().expect("cluster");
    // Expire uploads after a second, and look every second.
    cluster.stop_dev().expect("stop");
    let path = cluster.dir().join("s3.toml");
    let mut cfg: toml::Table =
        toml::from_str(&fs::read_to_string(&path).expect("read")).expect("parse");
    cfg.insert("upload_expiry_secs".into(), toml::Value::Integer(1));
    cfg.insert("upload_sweep_secs".into(), toml::Value::Integer(1));
    fs::write(&path, toml::to_string(&cfg).expect("toml")).expect("write");
    cluster.start_dev().expect("restart");

    let id = boto3(
        &cluster,
        "s3.create_bucket(Bucket='sweep')\n\
         u = s3.create_multipart_upload(Bucket='sweep', Key='k')['UploadId']\n\
         s3.upload_part(Bucket='sweep', Key='k', UploadId=u, PartNumber=1, Body=os.urandom(100000))\n\
         print(u)",
    );
    let id = id.trim();
    let dir = format!("/sweep/.cairn-s3/uploads/{id}");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = rt.block_on(cluster.client()).expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    let gone = loop {
        if rt.block_on(client.stat(&dir)).is_err() {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(gone, "the upload's parts are still in {dir}");
    let listed = boto3(
        &cluster,
        "print(len(s3.list_multipart_uploads(Bucket='sweep').get('Uploads', [])))",
    );
    assert_eq!(listed.trim(), "0");
}

/// The gateway's endpoint, key and secret.
fn endpoint(cluster: &DevCluster) -> (String, String, String) {
    let env = s3_clients::env(cluster).expect("gateway env");
    let get = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .expect("set")
    };
    (
        get("AWS_ENDPOINT_URL"),
        get("AWS_ACCESS_KEY_ID"),
        get("AWS_SECRET_ACCESS_KEY"),
    )
}

fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        // A machine-wide CA bundle for AWS makes rclone's SDK refuse to
        // start; the gateway here is plain HTTP.
        .env_remove("AWS_CA_BUNDLE")
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{program} (scripts/test installs it): {e}"));
    ok(&format!("{program} {}", args.join(" ")), out)
}

#[test]
fn rclone_and_s3cmd_copy_sync_check_and_list() {
    let cluster = DevCluster::start().expect("cluster");
    let (url, key, secret) = endpoint(&cluster);
    let work = tempfile::tempdir().expect("tempdir");
    let tree = work.path().join("tree");
    for (p, n) in [("a.txt", 10), ("b/c.bin", 300_000), ("b/d/e.txt", 1)] {
        let f = tree.join(p);
        fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
        fs::write(&f, random_bytes(n, n as u64 + 1)).expect("write");
    }
    let tree_s = tree.to_str().expect("utf-8");

    // rclone, configured by environment alone.
    let rclone_env = [
        ("RCLONE_CONFIG", "/nonexistent"),
        ("RCLONE_CONFIG_CAIRN_TYPE", "s3"),
        ("RCLONE_CONFIG_CAIRN_PROVIDER", "Other"),
        ("RCLONE_CONFIG_CAIRN_ENDPOINT", url.as_str()),
        ("RCLONE_CONFIG_CAIRN_ACCESS_KEY_ID", key.as_str()),
        ("RCLONE_CONFIG_CAIRN_SECRET_ACCESS_KEY", secret.as_str()),
        ("RCLONE_CONFIG_CAIRN_FORCE_PATH_STYLE", "true"),
    ];
    let rclone = |args: &[&str]| run("rclone", args, &rclone_env);
    rclone(&["mkdir", "cairn:rcl"]);
    rclone(&["copy", tree_s, "cairn:rcl/tree"]);
    // check compares sizes and MD5s (the ETags) of every file.
    rclone(&["check", tree_s, "cairn:rcl/tree"]);
    fs::remove_file(tree.join("a.txt")).expect("rm");
    fs::write(tree.join("b/new.txt"), b"new").expect("write");
    rclone(&["sync", tree_s, "cairn:rcl/tree"]);
    rclone(&["check", tree_s, "cairn:rcl/tree"]);
    let lsf = rclone(&["lsf", "-R", "--files-only", "cairn:rcl/tree"]);
    let mut listed: Vec<&str> = lsf.lines().collect();
    listed.sort();
    assert_eq!(listed, ["b/c.bin", "b/d/e.txt", "b/new.txt"], "{lsf}");

    // s3cmd, which checks each transfer's MD5 against the ETag. (Its
    // default region, "US", is not one s3s accepts: regions are lowercase
    // letters, digits and dashes.)
    let host = url.trim_start_matches("http://");
    let cfg = work.path().join("s3cmd.cfg");
    fs::write(
        &cfg,
        format!(
            "[default]\naccess_key = {key}\nsecret_key = {secret}\nhost_base = {host}\n\
             host_bucket = {host}\nuse_https = False\nsignature_v2 = False\n\
             bucket_location = us-east-1\n"
        ),
    )
    .expect("s3cmd config");
    let cfg_s = cfg.to_str().expect("utf-8");
    let s3cmd = |args: &[&str]| {
        let mut all = vec!["-c", cfg_s];
        all.extend_from_slice(args);
        run("s3cmd", &all, &[])
    };
    let file = tree.join("b/c.bin");
    let back = work.path().join("back.bin");
    s3cmd(&["mb", "s3://s3c"]);
    s3cmd(&["put", file.to_str().expect("utf-8"), "s3://s3c/x/c.bin"]);
    s3cmd(&["get", "s3://s3c/x/c.bin", back.to_str().expect("utf-8")]);
    assert_eq!(
        fs::read(&back).expect("read"),
        fs::read(&file).expect("read")
    );
    let ls = s3cmd(&["ls", "-r", "s3://s3c"]);
    assert!(
        ls.contains("s3://s3c/x/c.bin") && ls.contains("300000"),
        "{ls}"
    );
    s3cmd(&["del", "s3://s3c/x/c.bin"]);
    let ls = s3cmd(&["ls", "-r", "s3://s3c"]);
    assert!(!ls.contains("c.bin"), "{ls}");
}
