//! The real chunk store over the simulated disk, killed at every call of a
//! put, with and without losing power: no acknowledged copy is lost, no
//! torn copy appears under a chunk's name.

use cairn_sim::disk::SimDisk;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// More calls than any put makes, so the last rounds die after the put.
const CALLS: u32 = 16;
const POWER_CUTS: u64 = 24;

#[test]
fn a_put_killed_at_any_call_then_a_power_cut_leaves_no_torn_copy() {
    let mut died = 0;
    for calls in 0..CALLS {
        for seed in 0..POWER_CUTS {
            let mut disk = SimDisk::new();
            disk.put(b"an earlier chunk", 1)
                .expect("a put on a healthy disk");
            disk.die_after(calls);
            let acked = disk.put(b"the chunk being stored", 2).is_ok();
            died += u32::from(disk.has_died());
            let damage = disk.crash(true, &mut StdRng::seed_from_u64(seed));
            assert!(
                damage.is_empty(),
                "killed after {calls} calls (acknowledged: {acked}), power cut {seed}: {damage:?}"
            );
        }
    }
    assert!(died > 0, "no put was killed");
}

/// A put killed after its rename but before its directory fsync leaves a
/// name only the page cache holds; after the restart, a put of the same
/// chunk finds it and acknowledges it — so the restart must have made it
/// durable.
#[test]
fn a_chunk_stored_again_after_a_killed_put_survives_a_power_cut() {
    let data = b"a chunk whose first put was killed";
    for calls in 0..CALLS {
        for seed in 0..POWER_CUTS {
            let mut disk = SimDisk::new();
            disk.die_after(calls);
            let _ = disk.put(data, 1);
            // Killed (or not), restarted with the page cache intact.
            assert!(disk
                .crash(false, &mut StdRng::seed_from_u64(seed))
                .is_empty());
            disk.put(data, 2).expect("a put after the restart");
            let damage = disk.crash(true, &mut StdRng::seed_from_u64(seed));
            assert!(
                damage.is_empty(),
                "killed after {calls} calls, stored again, power cut {seed}: {damage:?}"
            );
        }
    }
}
