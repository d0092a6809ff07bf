//! The nemesis on real processes: about two minutes of `kill -9`, crash
//! restarts and `SIGSTOP`/`SIGCONT` of any server — metadata nodes too —
//! and cuts of any client↔chunkserver, chunkserver↔chunkserver or
//! chunkserver↔meta link, one way or both, while writers put, overwrite
//! and remove, two writers share three files and a mount writes and
//! fsyncs files. Nothing acknowledged may be lost, the shared files'
//! history must be linearizable, and afterwards the cluster must converge
//! to three copies of every referenced chunk and no garbage.
//!
//! `CAIRN_CHAOS_SECS` sets the length (default 120), `CAIRN_CHAOS_SEED`
//! the seed (default: from the clock, printed); `cairn-bench chaos
//! --minutes N` runs the same for longer.

use std::time::Duration;

use cairn_tests::chaos;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_under_process_faults() {
    let secs = env_u64("CAIRN_CHAOS_SECS").unwrap_or(120);
    let seed = env_u64("CAIRN_CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    eprintln!("chaos: seed {seed}, {secs} s (CAIRN_CHAOS_SEED={seed} replays the fault plan)");
    let (mut cluster, relays) = chaos::cluster().expect("cluster starts");
    let report = match chaos::run(&mut cluster, &relays, Duration::from_secs(secs), seed).await {
        Ok(r) => r,
        Err(e) => panic!(
            "seed {seed}: the chaos run failed: {e:#}\n{}",
            cluster.log_tails(30)
        ),
    };
    eprintln!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    assert!(
        report.faults.values().sum::<u64>() > 0,
        "no faults were injected"
    );
    assert!(report.ops_acked > 0, "no operation was acknowledged");
    assert!(
        report.lost.is_empty(),
        "seed {seed}: acknowledged writes lost: {:#?}\n{}",
        report.lost,
        cluster.log_tails(30)
    );
    assert!(
        report.shared_history_violation.is_none(),
        "seed {seed}: {}",
        report
            .shared_history_violation
            .as_deref()
            .unwrap_or_default()
    );
    assert!(
        report.shared_ops_checked > 0,
        "no shared-file history was checked"
    );
    assert!(
        report.converged_after.is_some(),
        "seed {seed}: not converged: {} referenced chunks short of 3 copies, {} garbage chunks\n{}",
        report.short_chunks,
        report.garbage_chunks,
        cluster.log_tails(30)
    );
}
