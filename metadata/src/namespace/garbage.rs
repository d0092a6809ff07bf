//! Garbage records (`garbage/id → when the chunk's last reference went`)
//! and their purge.
//!
//! A record lets the collector tell "unreferenced for the grace period"
//! from "never committed" ([`cairn_proto::gc_rule`]). Once a record is
//! older than the grace period, the two verdicts agree — each deletes a
//! copy stored here for the grace period, keeps a younger one — so the
//! record can go without reopening the races the rule guards against: a
//! writer whose dedup look saw the chunk referenced had to commit within
//! half the grace period of that look, long before. Records are purged at
//! twice the grace period ([`PURGE_AFTER_GRACES`]), leaving room for the
//! proposer's clock to differ from the collector's.

use cairn_proto::ChunkId;

use super::NsError;
use crate::kv::{Cf, KvRead, Txn};
use crate::schema::{chunk_key, decode};

/// A garbage record is purged once it is this many grace periods old.
pub const PURGE_AFTER_GRACES: u32 = 2;

/// Up to `limit` chunks whose garbage record is older than
/// `older_than_ns` (by the time their last reference went), scanning from
/// just after `after`; and where the next scan starts (None: the end was
/// reached).
pub fn purgeable(
    kv: &impl KvRead,
    older_than_ns: i64,
    after: Option<ChunkId>,
    limit: usize,
) -> Result<(Vec<ChunkId>, Option<ChunkId>), NsError> {
    let start = match after {
        Some(id) => {
            let mut k = chunk_key(&id);
            k.push(0);
            k
        }
        None => Vec::new(),
    };
    let rows = kv.scan(Cf::Garbage, &start, &[0xff; 33], limit)?;
    let next = (rows.len() == limit)
        .then(|| rows.last().and_then(|(k, _)| id_of(k)))
        .flatten();
    let mut out = Vec::new();
    for (k, v) in rows {
        if decode::<i64>(&v)? <= older_than_ns {
            out.extend(id_of(&k));
        }
    }
    Ok((out, next))
}

fn id_of(key: &[u8]) -> Option<ChunkId> {
    Some(ChunkId(key.try_into().ok()?))
}

/// Removes the garbage records of `ids` that are still older than
/// `older_than_ns` and whose chunk is still unreferenced (one referenced
/// again since the scan has no record any more; a newer one stays).
pub fn purge<R: KvRead>(
    t: &mut Txn<'_, R>,
    ids: &[ChunkId],
    older_than_ns: i64,
) -> Result<(), NsError> {
    for id in ids {
        let key = chunk_key(id);
        if t.get(Cf::Chunks, &key)?.is_some() {
            continue;
        }
        let Some(since) = t.get(Cf::Garbage, &key)? else {
            continue;
        };
        if decode::<i64>(&since)? <= older_than_ns {
            t.delete(Cf::Garbage, key);
        }
    }
    Ok(())
}
