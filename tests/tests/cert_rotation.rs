//! Certificates change without restarts: a server takes a replacement
//! certificate from its files (and refuses one the cluster CA did not
//! sign, one whose key does not match, one not valid now), and a
//! connection whose peer certificate expires is closed.

use std::time::{Duration, Instant, SystemTime};

use cairn::ca::{CertificateAuthority, Validity};
use cairn_net::live_cert::LiveCert;
use cairn_net::tls::TlsIdentity;
use cairn_net::{call, client_endpoint, connect};
use cairn_proto::identity::Role;
use cairn_proto::meta_rpc::{ClusterQuery, ClusterReply, MetaCall, MetaRequest, MetaResponse};
use cairn_tests::{random_bytes, DevCluster};

fn cluster_ca(cluster: &DevCluster) -> CertificateAuthority {
    let tls = cluster.dir().join("tls");
    CertificateAuthority {
        cert_pem: std::fs::read_to_string(tls.join("ca.pem")).expect("ca.pem"),
        key_pem: std::fs::read_to_string(tls.join("ca.key")).expect("ca.key"),
    }
}

fn log_count(cluster: &DevCluster, server: &str, needle: &str) -> usize {
    let path = cluster.dir().join("logs").join(format!("{server}.log"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// Waits up to `secs` for `server`'s log to hold `n` lines with `needle`.
async fn wait_log(cluster: &DevCluster, server: &str, needle: &str, n: usize, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while log_count(cluster, server, needle) < n {
        assert!(
            Instant::now() < deadline,
            "{server} never logged {needle:?} ({n} times) within {secs} s:\n{}",
            cluster.log_tails(20)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The DER of the first certificate in `pem`.
fn der(pem: &str) -> Vec<u8> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .expect("a PEM certificate")
        .expect("readable PEM")
        .to_vec()
}

/// A client endpoint presenting a fresh `role` certificate named `name`
/// from `ca`, valid for `validity`.
fn endpoint(
    ca: &CertificateAuthority,
    role: Role,
    name: &str,
    validity: Validity,
) -> quinn::Endpoint {
    let (cert_pem, key_pem) = ca.issue(role, name, validity).unwrap();
    client_endpoint(&TlsIdentity {
        ca_pem: ca.cert_pem.clone(),
        cert_pem,
        key_pem,
        source: None,
    })
    .expect("endpoint")
}

/// The certificate `addr` presents to a new connection, as DER.
async fn presented(ca: &CertificateAuthority, addr: &str) -> Vec<u8> {
    let ep = endpoint(ca, Role::Client, "probe", Validity::days(1));
    let conn = connect(&ep, addr).await.expect("connects");
    let certs = conn
        .peer_identity()
        .and_then(|a| {
            a.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .expect("peer certificates");
    certs[0].to_vec()
}

/// Replaces `name`'s certificate and key in the cluster's `tls/` the way an
/// operator would: each file written aside, then renamed over the old one.
fn install(cluster: &DevCluster, name: &str, cert: &str, key: &str) {
    let tls = cluster.dir().join("tls");
    for (ext, text) in [("pem", cert), ("key", key)] {
        let aside = tls.join(format!("{name}.{ext}.new"));
        std::fs::write(&aside, text).expect("write");
        std::fs::rename(&aside, tls.join(format!("{name}.{ext}"))).expect("rename");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_takes_a_new_certificate_without_restarting() {
    let cluster = DevCluster::start().expect("cluster starts");
    let ca = cluster_ca(&cluster);
    let addr = cluster.listen_addr("chunk-1").unwrap().to_string();
    let old = std::fs::read_to_string(cluster.dir().join("tls/chunk-1.pem")).unwrap();
    assert_eq!(presented(&ca, &addr).await, der(&old));

    let (cert, key) = ca
        .issue(Role::ChunkServer, "chunk-1", Validity::days(2))
        .unwrap();
    install(&cluster, "chunk-1", &cert, &key);
    wait_log(&cluster, "chunk-1", "reloaded the certificate", 1, 20).await;
    assert_eq!(
        presented(&ca, &addr).await,
        der(&cert),
        "a new connection still gets the old certificate"
    );

    // One the cluster CA did not sign is refused; the good one stays.
    let other = CertificateAuthority::generate(Validity::days(1)).unwrap();
    let (foreign, foreign_key) = other
        .issue(Role::ChunkServer, "chunk-1", Validity::days(1))
        .unwrap();
    install(&cluster, "chunk-1", &foreign, &foreign_key);
    wait_log(
        &cluster,
        "chunk-1",
        "refused the replacement certificate",
        1,
        20,
    )
    .await;
    assert_eq!(presented(&ca, &addr).await, der(&cert));

    // The server works on under its new certificate: writes reach it.
    let client = cluster.client().await.expect("client");
    let data = random_bytes(6 << 20, 7);
    client.put("/after-rotation", &data[..]).await.expect("put");
    let mut back = Vec::new();
    client.get("/after-rotation", &mut back).await.expect("get");
    assert!(back == data, "read back differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closes_when_its_peer_certificate_expires() {
    let cluster = DevCluster::start().expect("cluster starts");
    let ca = cluster_ca(&cluster);
    let now = SystemTime::now();
    let lasts = Duration::from_secs(4);
    let ep = endpoint(
        &ca,
        Role::Client,
        "short-lived",
        Validity {
            not_before: now - Duration::from_secs(60),
            not_after: now + lasts,
        },
    );
    let meta = cluster.listen_addr("meta-1").unwrap().to_string();
    let conn = connect(&ep, &meta).await.expect("connects while valid");
    let status = || MetaCall {
        session: None,
        req: MetaRequest::Cluster(ClusterQuery::Status),
        follower_read: false,
        request_id: 1,
    };
    let (reply, _) = call::<_, MetaResponse>(&conn, &status(), &[], 1 << 20)
        .await
        .expect("an answer while valid");
    assert!(
        matches!(reply, Ok(MetaResponse::Cluster(ClusterReply::Status(_)))),
        "{reply:?}"
    );

    // Keep the connection busy past the expiry: it must be closed anyway.
    let deadline = Instant::now() + lasts + Duration::from_secs(10);
    loop {
        assert!(
            Instant::now() < deadline,
            "the connection outlived its certificate by 10 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let r = call::<_, MetaResponse>(&conn, &status(), &[], 1 << 20).await;
        if r.is_err() {
            break;
        }
    }
    // Certificates carry whole seconds: the expiry is `now + lasts`
    // rounded down.
    assert!(
        SystemTime::now() + Duration::from_secs(1) >= now + lasts,
        "closed before the certificate expired"
    );
    assert!(conn.close_reason().is_some());
    wait_log(&cluster, "meta-1", "the peer's certificate expired", 1, 5).await;
}

/// A metadata certificate named `name` from `ca`, as an identity.
fn identity(ca: &CertificateAuthority, name: &str) -> TlsIdentity {
    cairn_tests::identities::identity(ca, Role::Meta, name)
}

#[test]
fn a_valid_replacement_is_taken() {
    let ca = CertificateAuthority::generate(Validity::days(1)).unwrap();
    let live = LiveCert::new(&identity(&ca, "old")).unwrap();
    let before = live.current().cert.clone();
    let next = identity(&ca, "new");
    assert!(live.replace(&next.cert_pem, &next.key_pem).unwrap());
    assert_ne!(live.current().cert, before);
    assert!(
        !live.replace(&next.cert_pem, &next.key_pem).unwrap(),
        "same again"
    );
}

#[test]
fn a_bad_replacement_is_refused_and_the_old_kept() {
    let ca = CertificateAuthority::generate(Validity::days(1)).unwrap();
    let live = LiveCert::new(&identity(&ca, "old")).unwrap();
    let before = live.current().cert.clone();
    let other_ca = CertificateAuthority::generate(Validity::days(1)).unwrap();
    let foreign = identity(&other_ca, "foreign");
    let e = live
        .replace(&foreign.cert_pem, &foreign.key_pem)
        .unwrap_err();
    assert!(
        e.to_string().contains("not signed by the cluster CA"),
        "{e}"
    );
    let (a, b) = (identity(&ca, "a"), identity(&ca, "b"));
    assert!(
        live.replace(&a.cert_pem, &b.key_pem).is_err(),
        "mismatched key"
    );
    let now = SystemTime::now();
    let expired = Validity {
        not_before: now - Duration::from_secs(7200),
        not_after: now - Duration::from_secs(3600),
    };
    let (cert, key) = ca.issue(Role::Meta, "expired", expired).unwrap();
    let e = live.replace(&cert, &key).unwrap_err();
    assert!(e.to_string().contains("not valid now"), "{e}");
    assert!(live.replace("garbage", "garbage").is_err());
    assert_eq!(live.current().cert, before);
}
