//! Chunk reference counts: how many extents of committed files name each
//! chunk. A chunk's first reference drops its garbage record; its last
//! one going away records when, which is what the garbage collector's
//! rule (`cairn_proto::gc_rule`) reads back. The counter of referenced
//! chunks follows both.

use cairn_proto::ChunkId;

use super::{update_counters, NsError};
use crate::kv::{Cf, KvError, KvRead, Txn};
use crate::schema::{chunk_key, decode, encode, ChunkRecord};

/// One more extent names chunk `id`.
pub(super) fn incref<R: KvRead>(t: &mut Txn<'_, R>, id: &ChunkId) -> Result<(), NsError> {
    let key = chunk_key(id);
    let refs = match t.get(Cf::Chunks, &key)? {
        Some(b) => decode::<ChunkRecord>(&b)?.refs,
        None => {
            t.delete(Cf::Garbage, key.clone());
            update_counters(t, |c| c.chunks_referenced += 1)?;
            0
        }
    };
    t.put(Cf::Chunks, key, encode(&ChunkRecord { refs: refs + 1 }));
    Ok(())
}

/// One extent fewer names chunk `id` (as of `now_ns`); at zero it becomes
/// garbage.
pub(super) fn decref<R: KvRead>(
    t: &mut Txn<'_, R>,
    id: &ChunkId,
    now_ns: i64,
) -> Result<(), NsError> {
    let key = chunk_key(id);
    let refs = match t.get(Cf::Chunks, &key)? {
        Some(b) => decode::<ChunkRecord>(&b)?.refs,
        None => return Err(KvError(format!("refcount of {id} already zero")).into()),
    };
    if refs <= 1 {
        t.delete(Cf::Chunks, key.clone());
        t.put(Cf::Garbage, key, encode(&now_ns));
        update_counters(t, |c| {
            c.chunks_referenced = c.chunks_referenced.saturating_sub(1)
        })?;
    } else {
        t.put(Cf::Chunks, key, encode(&ChunkRecord { refs: refs - 1 }));
    }
    Ok(())
}
