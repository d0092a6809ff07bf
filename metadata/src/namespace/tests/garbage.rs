//! Garbage records are purged once old, and only then: the collector's
//! verdicts for every copy stay what they were.

use super::*;
use cairn_proto::gc_rule::{decide, Verdict};
use cairn_proto::meta_rpc::ChunkState;
use std::time::Duration;

fn garbage_record(ns: &Ns, data: &[u8]) -> Option<i64> {
    ns.kv
        .get(Cf::Garbage, &chunk_key(&ChunkId::of(data)))
        .unwrap()
        .map(|b| decode(&b).unwrap())
}

#[test]
fn old_garbage_records_are_purged_young_and_referenced_ones_stay() {
    let mut ns = Ns::new();
    ns.commit(InodeId::ROOT, "old", &[(b"old", 3)]).unwrap();
    ns.commit(InodeId::ROOT, "young", &[(b"young", 5)]).unwrap();
    ns.commit(InodeId::ROOT, "back", &[(b"back", 4)]).unwrap();
    for (name, at) in [("old", 100), ("young", 5_000), ("back", 100)] {
        ns.run(Command::Ns {
            write: NsWrite::Unlink {
                parent: InodeId::ROOT,
                name: name.into(),
            },
            now_ns: at,
        })
        .unwrap();
    }
    assert_eq!(garbage_record(&ns, b"old"), Some(100));
    // Scanned as purgeable, then referenced again before the purge applies.
    let (ids, next) = purgeable(&ns.kv, 1_000, None, 100).unwrap();
    assert_eq!(next, None);
    let mut want = vec![ChunkId::of(b"old"), ChunkId::of(b"back")];
    want.sort();
    let mut got = ids.clone();
    got.sort();
    assert_eq!(got, want);
    ns.commit(InodeId::ROOT, "again", &[(b"back", 4)]).unwrap();
    ns.run(Command::PurgeGarbage {
        ids: ids.clone(),
        older_than_ns: 1_000,
    })
    .expect("purge applies");
    assert_eq!(garbage_record(&ns, b"old"), None);
    assert_eq!(garbage_record(&ns, b"young"), Some(5_000));
    assert_eq!(ns.refs(b"back"), 1);
    // A record stamped after the scan's cutoff is not purged by it.
    ns.run(Command::Ns {
        write: NsWrite::Unlink {
            parent: InodeId::ROOT,
            name: "again".into(),
        },
        now_ns: 6_000,
    })
    .unwrap();
    ns.run(Command::PurgeGarbage {
        ids,
        older_than_ns: 1_000,
    })
    .expect("purge applies");
    assert_eq!(garbage_record(&ns, b"back"), Some(6_000));
}

#[test]
fn the_scan_pages_through_every_record() {
    let mut ns = Ns::new();
    for i in 0..25u32 {
        let data = i.to_be_bytes();
        ns.commit(InodeId::ROOT, &format!("f{i}"), &[(&data, 4)])
            .unwrap();
        ns.run(Command::Ns {
            write: NsWrite::Unlink {
                parent: InodeId::ROOT,
                name: format!("f{i}"),
            },
            now_ns: 10,
        })
        .unwrap();
    }
    let (mut seen, mut after) = (Vec::new(), None);
    for _ in 0..10 {
        let (ids, next) = purgeable(&ns.kv, 10, after, 10).unwrap();
        seen.extend(ids);
        after = next;
        if after.is_none() {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 25);
}

/// Purging a record older than the purge age never changes what the
/// collector does with any copy: it is what makes the purge safe.
#[test]
fn a_purged_record_changes_no_collector_verdict() {
    let grace = Duration::from_secs(600);
    let g = grace.as_nanos() as i64;
    let since = 1_000 * g;
    let now = since + i64::from(PURGE_AFTER_GRACES) * g;
    for stored_for in [grace / 2, grace - Duration::from_nanos(1), grace, grace * 5] {
        for meta_now in [now, now + g, now + 100 * g] {
            let kept = decide(
                ChunkState::Unreferenced { since_ns: since },
                stored_for,
                meta_now,
                grace,
            );
            let purged = decide(ChunkState::Unknown, stored_for, meta_now, grace);
            assert_eq!(
                matches!(kept, Verdict::Delete(_)),
                matches!(purged, Verdict::Delete(_)),
                "stored for {stored_for:?} at {meta_now}"
            );
        }
    }
}
