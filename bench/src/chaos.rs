//! `cairn-bench chaos`: the nemesis of `cairn_tests::chaos`, for as long
//! as asked, with its report printed (and written as JSON).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

pub async fn run(minutes: u64, seed: Option<u64>, json: Option<PathBuf>) -> anyhow::Result<()> {
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    eprintln!("chaos: {minutes} min of faults, seed {seed} (--seed {seed} replays the fault plan)");
    let (mut cluster, relays) = cairn_tests::chaos::cluster()?;
    let report = cairn_tests::chaos::run(
        &mut cluster,
        &relays,
        Duration::from_secs(minutes * 60),
        seed,
    )
    .await?;
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(path) = json {
        std::fs::write(&path, &text)?;
    }
    println!(
        "{:.1} min of faults ({} injected), {} operations acknowledged + {} mount files fsynced, {} lost; converged {}",
        report.fault_seconds / 60.0,
        report.faults.values().sum::<u64>(),
        report.ops_acked,
        report.mount_files_acked,
        report.lost.len(),
        report
            .converged_after
            .map_or("NOT within the bound".to_string(), |s| format!("{s:.1} s after the faults stopped"))
    );
    if !report.ok() {
        bail!("seed {seed}: the chaos run found violations");
    }
    Ok(())
}
