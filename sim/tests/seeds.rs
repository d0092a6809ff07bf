//! A fixed set of seeds runs clean, and a seed replays the same trace.

use std::collections::BTreeMap;

use cairn_sim::world::{run, Config};

/// Runs `seeds` and checks that none broke an invariant and that the runs
/// did something: files acknowledged, faults of every kind injected.
fn run_clean(seeds: std::ops::Range<u64>) {
    let cfg = Config::default();
    let mut faults: BTreeMap<&str, u64> = BTreeMap::new();
    let mut acked = 0;
    for seed in seeds {
        let out = run(seed, &cfg);
        assert!(
            out.violations.is_empty(),
            "seed {seed}: {}",
            out.violations
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        );
        for (kind, n) in out.faults {
            *faults.entry(kind).or_default() += n;
        }
        acked += out.acked;
    }
    assert!(acked > 1_000, "only {acked} files acknowledged");
    for kind in [
        "crash",
        "power_loss",
        "crash_mid_call",
        "rot",
        "eio",
        "disk_full",
        "cut",
    ] {
        assert!(
            faults.get(kind).is_some_and(|n| *n > 50),
            "too few {kind} faults: {faults:?}"
        );
    }
}

// Two halves, so that the test runner runs them side by side.
#[test]
fn a_fixed_set_of_seeds_has_no_violations_first_half() {
    run_clean(0..200);
}

#[test]
fn a_fixed_set_of_seeds_has_no_violations_second_half() {
    run_clean(200..400);
}

#[test]
fn a_seed_replays_the_same_trace() {
    let cfg = Config {
        fault_steps: 400,
        ..Config::default()
    };
    let a = run(7, &cfg);
    let b = run(7, &cfg);
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.faults, b.faults);
    assert_ne!(run(8, &cfg).trace, a.trace, "different seeds, same trace");
}
