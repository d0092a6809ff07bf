//! Commands on the chunkserver registry: register, remove, the down,
//! draining and full flags. Each change to what the ring is made of bumps its epoch.

use cairn_proto::ring::weight_for_capacity;
use cairn_proto::{ErrorCode, NodeId};

use super::{refuse, server_flags, NsError};
use crate::kv::{Cf, KvRead, Txn};
use crate::schema::{
    decode, encode, encode_server_flags, meta_keys, server_key, ServerFlags, ServerRecord,
};

/// Takes chunkserver `id` out of the registry (and so the ring).
pub(super) fn remove<R: KvRead>(t: &mut Txn<'_, R>, id: NodeId) -> Result<(), NsError> {
    let key = server_key(id);
    if t.get(Cf::Servers, &key)?.is_none() {
        return refuse(ErrorCode::NotFound, format!("no chunkserver {id}"));
    }
    t.delete(Cf::Servers, key);
    let mut flags = server_flags(t)?;
    if flags.remove(&id).is_some() {
        t.put(
            Cf::SmMeta,
            meta_keys::SERVER_FLAGS.to_vec(),
            encode_server_flags(&flags),
        );
    }
    bump_ring_epoch(t)
}

pub(super) fn register_server<R: KvRead>(
    t: &mut Txn<'_, R>,
    rec: ServerRecord,
) -> Result<(), NsError> {
    if rec.addr.is_empty() || rec.addr.len() > 256 || rec.zone.len() > 64 {
        return refuse(
            ErrorCode::InvalidRequest,
            "chunkserver address or zone out of bounds",
        );
    }
    let key = server_key(rec.id);
    let old: Option<ServerRecord> = match t.get(Cf::Servers, &key)? {
        Some(b) => Some(decode(&b)?),
        None => None,
    };
    let ring_changes = match &old {
        None => true,
        Some(o) => {
            o.addr != rec.addr
                || o.zone != rec.zone
                || weight_for_capacity(o.capacity_bytes) != weight_for_capacity(rec.capacity_bytes)
        }
    };
    if old.as_ref() == Some(&rec) {
        return Ok(());
    }
    t.put(Cf::Servers, key, encode(&rec));
    if ring_changes {
        bump_ring_epoch(t)?;
    }
    Ok(())
}

/// Changes chunkserver `id`'s flags; bumps the ring epoch if they changed.
pub(super) fn set_flags<R: KvRead>(
    t: &mut Txn<'_, R>,
    id: NodeId,
    change: impl FnOnce(&mut ServerFlags),
) -> Result<(), NsError> {
    if t.get(Cf::Servers, &server_key(id))?.is_none() {
        return refuse(ErrorCode::NotFound, format!("no chunkserver {id}"));
    }
    let mut all = server_flags(t)?;
    let old = all.get(&id).copied().unwrap_or_default();
    let mut new = old;
    change(&mut new);
    if new == old {
        return Ok(());
    }
    if new == ServerFlags::default() {
        all.remove(&id);
    } else {
        all.insert(id, new);
    }
    t.put(
        Cf::SmMeta,
        meta_keys::SERVER_FLAGS.to_vec(),
        encode_server_flags(&all),
    );
    bump_ring_epoch(t)
}

pub(super) fn bump_ring_epoch<R: KvRead>(t: &mut Txn<'_, R>) -> Result<(), NsError> {
    let epoch: u64 = match t.get(Cf::SmMeta, meta_keys::RING_EPOCH)? {
        Some(b) => decode(&b)?,
        None => 0,
    };
    t.put(
        Cf::SmMeta,
        meta_keys::RING_EPOCH.to_vec(),
        encode(&(epoch + 1)),
    );
    Ok(())
}
