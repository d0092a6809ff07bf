//! The S3 gateway `cairn dev` starts, driven by real clients: boto3
//! through every operation it serves and the errors clients expect
//! (`tests/s3/boto3_suite.py`), the aws cli's cp / sync / ls / rm, and
//! the mount seeing what S3 wrote and the reverse.

use std::fs;
use std::path::Path;
use std::process::Output;

use cairn_tests::fuse_mount::FuseMount;
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

fn aws(cluster: &DevCluster, config: &Path, args: &[&str]) -> String {
    let cfg = config.to_str().expect("utf-8 path");
    let out = s3_clients::run(cluster, "aws", args, &[("AWS_CONFIG_FILE", cfg)]).expect("aws");
    ok(&format!("aws {}", args.join(" ")), out)
}

#[test]
fn boto3_sees_every_operation_and_error_as_s3_defines_them() {
    let cluster = DevCluster::start().expect("cluster");
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("s3/boto3_suite.py");
    let out =
        s3_clients::run(&cluster, "python", &[suite.to_str().expect("path")], &[]).expect("python");
    let text = ok("the boto3 suite", out);
    assert!(text.contains("boto3 suite passed"), "{text}");
}

#[test]
fn aws_cli_and_the_mount_share_one_namespace() {
    let cluster = DevCluster::start().expect("cluster");
    let work = tempfile::tempdir().expect("tempdir");
    // Uploads stay single-part (multipart is not served yet).
    let config = work.path().join("aws.cfg");
    fs::write(
        &config,
        "[default]\ns3 =\n  multipart_threshold = 4GB\n  addressing_style = path\n",
    )
    .expect("aws config");
    aws(&cluster, &config, &["s3", "mb", "s3://shared"]);

    // cp up and down, byte for byte.
    let big = random_bytes(9 << 20, 7);
    let src = work.path().join("big.bin");
    fs::write(&src, &big).expect("write");
    aws(
        &cluster,
        &config,
        &[
            "s3",
            "cp",
            src.to_str().unwrap(),
            "s3://shared/blobs/big.bin",
        ],
    );
    let back = work.path().join("back.bin");
    aws(
        &cluster,
        &config,
        &[
            "s3",
            "cp",
            "s3://shared/blobs/big.bin",
            back.to_str().unwrap(),
        ],
    );
    assert!(
        fs::read(&back).expect("read") == big,
        "aws s3 cp round trip"
    );

    // sync up twice: the second finds nothing to do.
    let tree = work.path().join("tree");
    for (p, n) in [
        ("a.txt", 10),
        ("sub/b.txt", 2000),
        ("sub/deep/c.bin", 70_000),
    ] {
        let f = tree.join(p);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, random_bytes(n, n as u64)).unwrap();
    }
    let up = aws(
        &cluster,
        &config,
        &["s3", "sync", tree.to_str().unwrap(), "s3://shared/tree"],
    );
    assert_eq!(up.matches("upload:").count(), 3, "{up}");
    let again = aws(
        &cluster,
        &config,
        &["s3", "sync", tree.to_str().unwrap(), "s3://shared/tree"],
    );
    assert!(
        !again.contains("upload:"),
        "the second sync uploads nothing: {again}"
    );
    // ... and down into an empty directory, twice.
    let down = work.path().join("down");
    aws(
        &cluster,
        &config,
        &["s3", "sync", "s3://shared/tree", down.to_str().unwrap()],
    );
    for p in ["a.txt", "sub/b.txt", "sub/deep/c.bin"] {
        assert_eq!(
            fs::read(down.join(p)).unwrap(),
            fs::read(tree.join(p)).unwrap(),
            "{p}"
        );
    }
    let again = aws(
        &cluster,
        &config,
        &["s3", "sync", "s3://shared/tree", down.to_str().unwrap()],
    );
    assert!(
        !again.contains("download:"),
        "the second sync downloads nothing: {again}"
    );

    let ls = aws(
        &cluster,
        &config,
        &["s3", "ls", "--recursive", "s3://shared/"],
    );
    let listed: Vec<&str> = ls
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert_eq!(
        listed,
        [
            "blobs/big.bin",
            "tree/a.txt",
            "tree/sub/b.txt",
            "tree/sub/deep/c.bin"
        ],
        "{ls}"
    );

    // The mount sees what S3 wrote, and S3 what the mount writes.
    let mount = FuseMount::start(&cluster, &[]).expect("mount");
    let via_mount = fs::read(mount.join("shared/tree/sub/deep/c.bin")).expect("read via mount");
    assert_eq!(via_mount, fs::read(tree.join("sub/deep/c.bin")).unwrap());
    fs::write(
        mount.join("shared/tree/from-mount.txt"),
        b"written by the mount",
    )
    .unwrap();
    // An object rewritten through the mount must not keep its old ETag.
    fs::write(mount.join("shared/tree/a.txt"), b"rewritten").unwrap();
    let got = work.path().join("from-mount.txt");
    aws(
        &cluster,
        &config,
        &[
            "s3",
            "cp",
            "s3://shared/tree/from-mount.txt",
            got.to_str().unwrap(),
        ],
    );
    assert_eq!(fs::read(&got).unwrap(), b"written by the mount");
    let head = aws(
        &cluster,
        &config,
        &[
            "s3api",
            "head-object",
            "--bucket",
            "shared",
            "--key",
            "tree/a.txt",
        ],
    );
    let md5_of_old = format!("{:x}", md5_of(&fs::read(tree.join("a.txt")).unwrap()));
    assert!(
        !head.contains(&md5_of_old),
        "a rewritten file keeps no stale ETag: {head}"
    );
    assert!(head.contains("\"ContentLength\": 9"), "{head}");

    // rm --recursive empties the prefix, and the mount sees it go.
    let rm = aws(
        &cluster,
        &config,
        &["s3", "rm", "--recursive", "s3://shared/tree"],
    );
    assert_eq!(rm.matches("delete:").count(), 4, "{rm}");
    // (The mount's entry cache may hold the name a moment.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while mount.join("shared/tree").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        !mount.join("shared/tree").exists(),
        "emptied directories go too"
    );
    assert!(mount.join("shared/blobs/big.bin").exists());
}

/// MD5, for comparing with ETags (not a dependency of the suite).
fn md5_of(data: &[u8]) -> u128 {
    let out = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(data)?;
            c.wait_with_output()
        })
        .expect("md5sum");
    let hex = String::from_utf8_lossy(&out.stdout);
    u128::from_str_radix(hex.split_whitespace().next().expect("a digest"), 16).expect("hex")
}
