//! A fixed set of seeds runs clean, and a seed replays the same trace.

use cairn_sim::world::{run, Config};

#[test]
fn a_fixed_set_of_seeds_has_no_violations() {
    let cfg = Config::default();
    let mut faults = 0;
    let mut acked = 0;
    for seed in 0..400 {
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
        faults += out.faults.values().sum::<u64>();
        acked += out.acked;
    }
    // The runs did something: files were acknowledged and faults injected.
    assert!(acked > 1_000, "only {acked} files acknowledged");
    assert!(faults > 1_000, "only {faults} faults injected");
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
