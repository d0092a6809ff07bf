//! `cairn-sim --seeds N` runs N seeds and ends with `N seeds, V
//! violations`; `--seed S` replays one seed and prints its trace hash and
//! the faults it injected.

use clap::Parser;

use cairn_sim::world::{run, Config};

#[derive(Parser)]
#[command(about = "Deterministic simulation of Cairn's repair, GC and replication under faults")]
struct Args {
    /// Run this many seeds (from --first).
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed of --seeds.
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Replay just this seed, printing what it did.
    #[arg(long)]
    seed: Option<u64>,
    /// Steps with clients and faults per seed.
    #[arg(long, default_value_t = Config::default().fault_steps)]
    steps: u32,
    /// With --seed: print each event of the trace as it happens.
    #[arg(long)]
    events: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = Config {
        fault_steps: args.steps,
        print_events: args.events && args.seed.is_some(),
        ..Config::default()
    };
    let seeds: Vec<u64> = match args.seed {
        Some(s) => vec![s],
        None => (args.first..args.first + args.seeds).collect(),
    };
    let mut violations = 0usize;
    let mut faults = 0u64;
    let mut acked = 0u64;
    for seed in &seeds {
        let out = run(*seed, &cfg);
        faults += out.faults.values().sum::<u64>();
        acked += out.acked;
        if args.seed.is_some() {
            println!(
                "seed {seed}: {} steps, {} files acknowledged, trace {}",
                out.steps, out.acked, out.trace
            );
            for (kind, n) in &out.faults {
                println!("  {kind}: {n}");
            }
        }
        for v in &out.violations {
            println!("seed {seed}: {v}");
        }
        violations += out.violations.len();
    }
    println!("({faults} faults injected, {acked} files acknowledged)");
    println!("{} seeds, {violations} violations", seeds.len());
    if violations > 0 {
        std::process::exit(1);
    }
    Ok(())
}
