//! Nothing is served to a peer without a certificate from the cluster CA
//! in the right role, and one misbehaving client does not disturb others.
//! Against a real `cairn dev` cluster, with hand-made certificates and raw
//! QUIC streams.
//!
//! Long (about 640 lines) because each case needs its own certificates and
//! raw streams; the cases share the handshake and probe helpers at the top.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cairn::ca::{CertificateAuthority, Validity};
use cairn_net::call_chunk;
use cairn_net::serve::REQUEST_TIMEOUT;
use cairn_net::tls::TlsIdentity;
use cairn_net::{call, client_endpoint, connect};
use cairn_proto::chunk_rpc::{ChunkCall, ChunkReply, ChunkRequest};
use cairn_proto::frame::encode_frame;
use cairn_proto::identity::Role;
use cairn_proto::meta_rpc::{
    ChunkServerReport, ClusterQuery, ClusterReply, MetaCall, MetaRequest, MetaResponse, NsWrite,
    Owner, RaftRpcKind,
};
use cairn_proto::{ChunkId, ErrorCode, InodeId, RpcError, ALPN, FRAME_VERSION};
use cairn_tests::{cairn_bin, random_bytes, DevCluster};

/// How long one probe may take before it counts as hanging.
const PROBE: Duration = Duration::from_secs(8);

fn cluster_ca(cluster: &DevCluster) -> CertificateAuthority {
    let tls = cluster.dir().join("tls");
    CertificateAuthority {
        cert_pem: std::fs::read_to_string(tls.join("ca.pem")).expect("ca.pem"),
        key_pem: std::fs::read_to_string(tls.join("ca.key")).expect("ca.key"),
    }
}

/// An identity that trusts `trust` and presents a certificate from `ca`.
fn identity(trust: &CertificateAuthority, ca: &CertificateAuthority, role: Role) -> TlsIdentity {
    let (cert_pem, key_pem) = ca.issue(role, "probe", Validity::days(1)).expect("issue");
    TlsIdentity {
        ca_pem: trust.cert_pem.clone(),
        cert_pem,
        key_pem,
        source: None,
    }
}

fn meta_call(req: MetaRequest) -> MetaCall {
    MetaCall {
        session: None,
        req,
        follower_read: false,
        request_id: 1,
    }
}

/// Asks a metadata node for the ring over `conn`.
async fn get_ring(conn: &quinn::Connection) -> anyhow::Result<Result<MetaResponse, RpcError>> {
    let (answer, _) = tokio::time::timeout(
        PROBE,
        call::<_, MetaResponse>(
            conn,
            &meta_call(MetaRequest::Cluster(ClusterQuery::GetRing)),
            &[],
            1 << 20,
        ),
    )
    .await??;
    Ok(answer)
}

async fn stat_chunkserver(conn: &quinn::Connection) -> anyhow::Result<ChunkReply> {
    let (reply, _) =
        tokio::time::timeout(PROBE, call_chunk(conn, &ChunkRequest::Stat, &[])).await??;
    Ok(reply)
}

/// Connects with `id` and makes one request to the metadata node and one
/// to the chunkserver; true if either was served.
async fn served(id: &TlsIdentity, meta: &str, chunk: &str) -> bool {
    let ep = client_endpoint(id).expect("endpoint");
    let mut any = false;
    if let Ok(conn) = connect(&ep, meta).await {
        any |= matches!(get_ring(&conn).await, Ok(Ok(_)));
    }
    if let Ok(conn) = connect(&ep, chunk).await {
        any |= matches!(stat_chunkserver(&conn).await, Ok(r) if r.result.is_ok());
    }
    ep.close(0u32.into(), b"done");
    any
}

/// A client endpoint that presents no certificate at all.
fn endpoint_without_certificate(trust: &CertificateAuthority) -> quinn::Endpoint {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut trust.cert_pem.as_bytes()) {
        roots.add(cert.expect("CA pem")).expect("root");
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("TLS 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("quic tls");
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).expect("endpoint");
    ep.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    ep
}

/// Panics unless `r` is a `PermissionDenied` refusal.
fn assert_denied<T: std::fmt::Debug>(r: &Result<T, RpcError>, what: &str) {
    match r {
        Err(e) if e.code == ErrorCode::PermissionDenied => {}
        other => panic!("{what}: expected PermissionDenied, got {other:?}"),
    }
}

fn count_in_log(cluster: &DevCluster, server: &str, needle: &str) -> usize {
    let path = cluster.dir().join("logs").join(format!("{server}.log"));
    std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// Waits (bounded) until server's log holds at least `want` lines with
/// `needle`; returns how many it holds.
async fn wait_log(cluster: &DevCluster, server: &str, needle: &str, want: usize) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = count_in_log(cluster, server, needle);
        if n >= want || tokio::time::Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_without_a_valid_certificate_are_refused_and_logged() {
    let cluster = DevCluster::start().expect("cluster starts");
    let ca = cluster_ca(&cluster);
    let meta = cluster.listen_addr("meta-1").unwrap().to_string();
    let chunk = cluster.listen_addr("chunk-1").unwrap().to_string();

    // The harness itself works: a certificate from the cluster CA is served.
    assert!(
        served(&identity(&ca, &ca, Role::Client), &meta, &chunk).await,
        "a valid client certificate was not served"
    );

    let other_ca = CertificateAuthority::generate(Validity::days(1)).unwrap();
    let self_signed = TlsIdentity {
        ca_pem: ca.cert_pem.clone(),
        cert_pem: other_ca.cert_pem.clone(),
        key_pem: other_ca.key_pem.clone(),
        source: None,
    };
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    let (cert_pem, key_pem) = ca
        .issue(
            Role::Client,
            "expired",
            Validity {
                not_before: now - 3 * day,
                not_after: now - day,
            },
        )
        .unwrap();
    let expired = TlsIdentity {
        ca_pem: ca.cert_pem.clone(),
        cert_pem,
        key_pem,
        source: None,
    };
    let cases = [
        ("self-signed", self_signed),
        ("another CA", identity(&ca, &other_ca, Role::Client)),
        ("expired", expired),
    ];
    let before_meta = count_in_log(&cluster, "meta-1", "refused connection");
    let before_chunk = count_in_log(&cluster, "chunk-1", "refused connection");
    for (what, id) in &cases {
        assert!(
            !served(id, &meta, &chunk).await,
            "a client with a {what} certificate was served"
        );
    }
    // No certificate at all.
    let bare = endpoint_without_certificate(&ca);
    for addr in [&meta, &chunk] {
        let refused = match connect(&bare, addr).await {
            Err(_) => true,
            Ok(conn) => {
                let ring = get_ring(&conn).await;
                let stat = stat_chunkserver(&conn).await;
                !matches!(ring, Ok(Ok(_))) && !matches!(stat, Ok(r) if r.result.is_ok())
            }
        };
        assert!(
            refused,
            "a client without a certificate was served by {addr}"
        );
    }
    bare.close(0u32.into(), b"done");

    // Every refusal is in the servers' logs, with its reason.
    let want = cases.len() + 1;
    let meta_refusals =
        wait_log(&cluster, "meta-1", "refused connection", before_meta + want).await;
    let chunk_refusals = wait_log(
        &cluster,
        "chunk-1",
        "refused connection",
        before_chunk + want,
    )
    .await;
    assert!(
        meta_refusals >= before_meta + want && chunk_refusals >= before_chunk + want,
        "expected {want} more refusals logged, meta-1 has {meta_refusals} (was {before_meta}), \
         chunk-1 has {chunk_refusals} (was {before_chunk}):\n{}",
        cluster.log_tails(20)
    );
    // rustls' words for: expired, another CA's signature, a self-signed
    // (CA) certificate, no certificate.
    for reason in [
        "certificate expired",
        "BadSignature",
        "CaUsedAsEndEntity",
        "peer sent no certificates",
    ] {
        assert!(
            count_in_log(&cluster, "meta-1", reason) > 0,
            "no refusal for {reason} in meta-1's log:\n{}",
            cluster.log_tails(20)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_may_call_only_its_own_requests() {
    let cluster = DevCluster::start().expect("cluster starts");
    let ca = cluster_ca(&cluster);
    let meta = cluster.listen_addr("meta-1").unwrap().to_string();
    let chunk = cluster.listen_addr("chunk-1").unwrap().to_string();
    let conn_as = |role: Role| {
        let ep = client_endpoint(&identity(&ca, &ca, role)).expect("endpoint");
        let (meta, chunk) = (meta.clone(), chunk.clone());
        async move {
            let m = connect(&ep, &meta).await.expect("meta connects");
            let c = connect(&ep, &chunk).await.expect("chunkserver connects");
            (ep, m, c)
        }
    };
    let ask = |conn: quinn::Connection, req: MetaRequest| async move {
        call::<_, MetaResponse>(&conn, &meta_call(req), &[], 1 << 20)
            .await
            .expect("an answer")
            .0
    };

    let (_client_ep, client_meta, client_chunk) = conn_as(Role::Client).await;
    let raft = MetaRequest::Raft {
        kind: RaftRpcKind::Vote,
        payload: vec![0; 16],
    };
    assert_denied(&ask(client_meta.clone(), raft).await, "client sending Raft");
    let beat = MetaRequest::ChunkServer(ChunkServerReport::Heartbeat {
        id: 1,
        capacity_bytes: 1,
        used_bytes: 0,
        available_bytes: 0,
        full: false,
        chunks: 0,
        under_replicated: 0,
        scrub: Default::default(),
        repair: Default::default(),
        gc: Default::default(),
    });
    assert_denied(&ask(client_meta.clone(), beat).await, "client heartbeat");
    let id = ChunkId::of(b"x");
    let (reply, _) = call_chunk(&client_chunk, &ChunkRequest::Replicate { id, len: 1 }, b"x")
        .await
        .expect("an answer");
    assert_denied(&reply.result, "client sending a chunkserver copy");

    let (_cs_ep, cs_meta, cs_chunk) = conn_as(Role::ChunkServer).await;
    let mkdir = MetaRequest::NsWrite(NsWrite::Mkdir {
        parent: InodeId::ROOT,
        name: "made-by-a-chunkserver".into(),
        owner: Owner {
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
    });
    assert_denied(&ask(cs_meta.clone(), mkdir).await, "chunkserver mkdir");
    assert!(
        matches!(
            ask(cs_meta.clone(), MetaRequest::Cluster(ClusterQuery::GetRing)).await,
            Ok(MetaResponse::Cluster(ClusterReply::Ring(_)))
        ),
        "a chunkserver may read the ring"
    );
    let put = ChunkRequest::Put {
        id,
        len: 1,
        backups: vec![],
        async_copies: vec![],
    };
    let (reply, _) = call_chunk(&cs_chunk, &put, b"x").await.expect("an answer");
    assert_denied(&reply.result, "chunkserver sending a client put");

    let (_meta_ep, _, meta_chunk) = conn_as(Role::Meta).await;
    let (reply, _) = call_chunk(&meta_chunk, &ChunkRequest::Get { id }, &[])
        .await
        .expect("an answer");
    assert_denied(&reply.result, "metadata node reading a chunk");

    // Nothing changed, and the refusals were logged.
    let client = cluster.client().await.expect("client");
    assert!(client.stat("/made-by-a-chunkserver").await.is_err());
    let n = wait_log(&cluster, "meta-1", "refused a request", 3).await;
    assert!(n >= 3, "meta-1 logged {n} refused requests, expected 3");
    let n = wait_log(&cluster, "chunk-1", "refused a request", 3).await;
    assert!(n >= 3, "chunk-1 logged {n} refused requests, expected 3");
}

/// Reads whatever answer `recv` gets within `within`: Ok(bytes) for an
/// answer or a reset stream, Err if the server never let go of it.
async fn released(mut recv: quinn::RecvStream, within: Duration) -> Result<(), ()> {
    match tokio::time::timeout(within, recv.read_to_end(1 << 20)).await {
        Ok(_) => Ok(()),
        Err(_) => Err(()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_client_does_not_disturb_others() {
    let cluster = DevCluster::start().expect("cluster starts");
    let ca = cluster_ca(&cluster);
    let good = cluster.client().await.expect("client");
    let before = random_bytes(3 << 20, 11);
    good.put("/before", &before[..]).await.expect("put before");

    let bad_ep = client_endpoint(&identity(&ca, &ca, Role::Client)).expect("endpoint");
    let mut conns = Vec::new();
    let mut stalled = Vec::new();
    let mut answered = Vec::new();
    for server in ["meta-1", "chunk-1", "chunk-2", "chunk-3"] {
        let addr = cluster.listen_addr(server).unwrap().to_string();
        let conn = connect(&bad_ep, &addr).await.expect("connects");
        // Streams opened and never finished: half a header, or a whole
        // header and part of its body.
        for i in 0..100 {
            let (mut send, recv) = conn.open_bi().await.expect("stream");
            let partial: &[u8] = if i % 2 == 0 {
                &[FRAME_VERSION, 0]
            } else {
                &[FRAME_VERSION, 0, 0, 1, 0, 7, 7]
            };
            send.write_all(partial).await.expect("write");
            stalled.push((server, send, recv));
        }
        // A header announcing 4 GiB.
        let (mut send, recv) = conn.open_bi().await.expect("stream");
        send.write_all(&[FRAME_VERSION, 0xff, 0xff, 0xff, 0xff])
            .await
            .expect("write");
        let _ = send.finish();
        answered.push((server, "oversized header", recv));
        // A valid header followed by garbage.
        let (mut send, recv) = conn.open_bi().await.expect("stream");
        let mut garbage = vec![FRAME_VERSION, 0, 0, 0, 64];
        garbage.extend(std::iter::repeat_n(0xff, 64 + 4096));
        // The server may answer (and stop reading) before all of it arrives.
        let _ = send.write_all(&garbage).await;
        let _ = send.finish();
        answered.push((server, "garbage body", recv));
        if server != "meta-1" {
            // A valid put whose body is not the chunk it names.
            let id = ChunkId::of(b"the real chunk");
            let put = ChunkRequest::Put {
                id,
                len: 14,
                backups: vec![],
                async_copies: vec![],
            };
            let (reply, _) = call_chunk(&conn, &put, b"something else")
                .await
                .expect("an answer");
            assert!(
                matches!(&reply.result, Err(e) if e.code == ErrorCode::HashMismatch),
                "{server}: a put of the wrong bytes was answered {:?}",
                reply.result
            );
            // A put announcing more bytes than it sends, then stalling.
            let put = ChunkRequest::Put {
                id,
                len: 4 << 20,
                backups: vec![],
                async_copies: vec![],
            };
            let (mut send, recv) = conn.open_bi().await.expect("stream");
            let call = ChunkCall {
                request_id: 2,
                req: put,
            };
            send.write_all(&encode_frame(&call).unwrap())
                .await
                .expect("write");
            send.write_all(&[0; 1000]).await.expect("write");
            stalled.push((server, send, recv));
        }
        // Keep the connection (and its streams) open for the test.
        conns.push(conn);
    }
    for (server, what, recv) in answered {
        let mut recv = recv;
        let bytes = tokio::time::timeout(PROBE, recv.read_to_end(1 << 20))
            .await
            .unwrap_or_else(|_| panic!("{server}: no answer to the {what}"))
            .unwrap_or_else(|e| panic!("{server}: {what} stream failed: {e}"));
        // The answer is an error frame, whatever the service.
        let message = if server == "meta-1" {
            let (r, _): (Result<MetaResponse, RpcError>, _) =
                cairn_proto::frame::decode_frame(&bytes, 1 << 20).expect("an answer frame");
            r.expect_err("an error")
        } else {
            let (r, _): (ChunkReply, _) =
                cairn_proto::frame::decode_frame(&bytes, 1 << 20).expect("an answer frame");
            r.result.expect_err("an error")
        };
        assert_eq!(message.code, ErrorCode::InvalidRequest, "{server}: {what}");
    }

    // Meanwhile, another client's puts and gets go on as usual.
    let started = std::time::Instant::now();
    let data = random_bytes(8 << 20, 12);
    good.put("/during", &data[..])
        .await
        .expect("put while attacked");
    let mut out = Vec::new();
    good.get("/during", &mut out)
        .await
        .expect("get while attacked");
    assert!(out == data, "/during read back different bytes");
    let mut out = Vec::new();
    good.get("/before", &mut out).await.expect("get before");
    assert!(out == before, "/before read back different bytes");
    assert!(
        started.elapsed() < REQUEST_TIMEOUT,
        "the good client waited {:?}, as long as the stalled streams",
        started.elapsed()
    );
    let listing = cluster.cairn(&["ls", "/"]);
    assert!(listing.status.success(), "ls failed while attacked");

    // The servers let go of every stalled stream after the request timeout.
    for (server, _send, recv) in stalled {
        assert!(
            released(recv, REQUEST_TIMEOUT * 2).await.is_ok(),
            "{server} still holds a stalled stream after {:?}",
            REQUEST_TIMEOUT * 2
        );
    }
    for server in ["meta-1", "chunk-1", "chunk-2", "chunk-3"] {
        let pid = cluster.pid(server).expect("pid");
        assert_eq!(
            unsafe { libc::kill(pid as i32, 0) },
            0,
            "{server} (pid {pid}) died"
        );
    }
    let mut out = Vec::new();
    good.get("/during", &mut out).await.expect("get after");
    assert!(out == data);
    drop(conns);
    bad_ep.close(0u32.into(), b"done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_made_with_the_cli_are_private_and_carry_their_role() {
    use std::os::unix::fs::PermissionsExt;
    let cluster = DevCluster::start().expect("cluster starts");
    let tmp = tempfile::tempdir().unwrap();
    let ca_dir = tmp.path().join("ca");
    let ca = ca_dir.to_str().unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(cairn_bin())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("running cairn");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    let (ok, _, err) = run(&["init", ca]);
    assert!(ok, "cairn init failed: {err}");
    assert_eq!(mode(&ca_dir), 0o700, "CA directory mode");
    assert_eq!(mode(&ca_dir.join("ca.key")), 0o600, "CA key mode");
    let (ok, _, err) = run(&["init", ca]);
    assert!(!ok && err.contains("already holds"), "second init: {err}");

    let (ok, out, err) = run(&[
        "cert", "issue", "--role", "client", "--name", "alice", "--ca-dir", ca, "--json",
    ]);
    assert!(ok, "cert issue failed: {err}");
    let written: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let key = std::path::PathBuf::from(written["key"].as_str().expect("key path"));
    assert_eq!(mode(&key), 0o600, "client key mode");
    let (ok, _, err) = run(&[
        "cert", "issue", "--role", "client", "--name", "alice", "--ca-dir", ca,
    ]);
    assert!(!ok && err.contains("exists"), "re-issue over a key: {err}");
    for bad in ["../evil", ".hidden", ""] {
        let (ok, _, err) = run(&[
            "cert", "issue", "--role", "client", "--name", bad, "--ca-dir", ca,
        ]);
        assert!(!ok, "name {bad:?} accepted");
        assert!(err.contains("certificate name"), "name {bad:?}: {err}");
    }
    let (ok, out, err) = run(&[
        "cert",
        "show",
        ca_dir.join("alice.pem").to_str().unwrap(),
        "--ca-dir",
        ca,
        "--json",
    ]);
    assert!(ok, "cert show failed: {err}");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(shown["role"], "client");
    assert_eq!(shown["name"], "alice");
    assert_eq!(shown["signed_by_ca"], true);
    assert_eq!(shown["valid_now"], true);
    // The dev cluster's own client certificate was not signed by this CA.
    let dev_client = cluster.dir().join("tls").join("client.pem");
    let (_, out, _) = run(&[
        "cert",
        "show",
        dev_client.to_str().unwrap(),
        "--ca-dir",
        ca,
        "--json",
    ]);
    let shown: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(shown["signed_by_ca"], false);

    // A chunkserver certificate issued by the CLI from the cluster's CA is
    // accepted by the cluster as a chunkserver, and only as one.
    let dev_ca = cluster.dir().join("tls");
    let out_dir = tmp.path().join("issued");
    let (ok, _, err) = run(&[
        "cert",
        "issue",
        "--role",
        "chunkserver",
        "--name",
        "rogue",
        "--ca-dir",
        dev_ca.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(ok, "issuing from the cluster CA failed: {err}");
    let id = TlsIdentity::load(
        &dev_ca.join("ca.pem"),
        &out_dir.join("rogue.pem"),
        &out_dir.join("rogue.key"),
    )
    .expect("load");
    let ep = client_endpoint(&id).expect("endpoint");
    let meta = cluster.listen_addr("meta-1").unwrap().to_string();
    let conn = connect(&ep, &meta).await.expect("connects");
    assert!(matches!(
        get_ring(&conn).await,
        Ok(Ok(MetaResponse::Cluster(ClusterReply::Ring(_))))
    ));
    let mkdir = MetaRequest::NsWrite(NsWrite::Mkdir {
        parent: InodeId::ROOT,
        name: "rogue".into(),
        owner: Owner {
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
    });
    let (answer, _) = call::<_, MetaResponse>(&conn, &meta_call(mkdir), &[], 1 << 20)
        .await
        .expect("an answer");
    assert_denied(&answer, "a chunkserver certificate making a directory");

    // ...and only as the chunkserver its name is bound to: `rogue` may not
    // register (re-address) or heartbeat as chunkserver 1.
    let ring_addr = |r: &Result<MetaResponse, RpcError>| match r {
        Ok(MetaResponse::Cluster(ClusterReply::Ring(ring))) => ring
            .members
            .iter()
            .find(|m| m.id == 1)
            .map(|m| m.addr.clone()),
        other => panic!("no ring: {other:?}"),
    };
    let before = ring_addr(&get_ring(&conn).await.expect("ring"));
    assert!(before.is_some(), "chunkserver 1 is in the ring");
    let register = MetaRequest::ChunkServer(ChunkServerReport::Register {
        id: 1,
        addr: "127.0.0.1:9".into(),
        zone: String::new(),
        capacity_bytes: 1 << 40,
    });
    let (answer, _) = call::<_, MetaResponse>(&conn, &meta_call(register), &[], 1 << 20)
        .await
        .expect("an answer");
    assert_denied(
        &answer,
        "a chunkserver certificate registering as another id",
    );
    let beat = MetaRequest::ChunkServer(ChunkServerReport::Heartbeat {
        id: 1,
        capacity_bytes: 0,
        used_bytes: 0,
        available_bytes: 0,
        full: false,
        chunks: 0,
        under_replicated: 0,
        scrub: Default::default(),
        repair: Default::default(),
        gc: Default::default(),
    });
    let (answer, _) = call::<_, MetaResponse>(&conn, &meta_call(beat), &[], 1 << 20)
        .await
        .expect("an answer");
    assert_denied(
        &answer,
        "a chunkserver certificate heartbeating as another id",
    );
    assert_eq!(
        ring_addr(&get_ring(&conn).await.expect("ring")),
        before,
        "chunkserver 1 was re-addressed"
    );
    ep.close(0u32.into(), b"done");
}
