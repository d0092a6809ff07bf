//! The replicated chunkserver registry: applying [`RegistryChange`]s —
//! register, remove, the down, draining and full flags, the replication
//! policy. Each change to what the ring is made of bumps its epoch. (What
//! the registry answers is read by `namespace::ring`; the leader's
//! in-memory view of heartbeats is [`crate::liveness`].)

use cairn_proto::ring::weight_for_capacity;
use cairn_proto::{ErrorCode, NodeId, RpcError};

use crate::command::RegistryChange;
use crate::kv::{Cf, KvRead, Txn};
use crate::namespace::{refuse, replication, server_flags, NsError};
use crate::schema::{
    decode, encode, encode_server_flags, meta_keys, server_key, ServerFlags, ServerRecord,
};

/// Applies `change`. On `Err(Refused)` the caller must discard the writes
/// this call made (see [`crate::apply::apply_one`]).
pub fn apply<R: KvRead>(t: &mut Txn<'_, R>, change: &RegistryChange) -> Result<(), NsError> {
    match change {
        RegistryChange::Register {
            id,
            addr,
            zone,
            capacity_bytes,
        } => register_server(
            t,
            ServerRecord {
                id: *id,
                addr: addr.clone(),
                zone: zone.clone(),
                capacity_bytes: *capacity_bytes,
            },
        ),
        RegistryChange::Remove { id } => remove(t, *id),
        RegistryChange::SetDown { id, down } => set_flags(t, *id, |f| f.down = *down),
        RegistryChange::SetFull { id, full } => set_flags(t, *id, |f| f.full = *full),
        RegistryChange::Drain { id, drain } => set_flags(t, *id, |f| f.draining = *drain),
        RegistryChange::SetReplication { policy } => {
            policy
                .validate()
                .map_err(|m| RpcError::new(ErrorCode::InvalidRequest, m))?;
            if replication(t)? != *policy {
                t.put(Cf::SmMeta, meta_keys::REPLICATION.to_vec(), encode(policy));
                bump_ring_epoch(t)?;
            }
            Ok(())
        }
    }
}

/// Takes chunkserver `id` out of the registry (and so the ring).
fn remove<R: KvRead>(t: &mut Txn<'_, R>, id: NodeId) -> Result<(), NsError> {
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

fn register_server<R: KvRead>(t: &mut Txn<'_, R>, rec: ServerRecord) -> Result<(), NsError> {
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
fn set_flags<R: KvRead>(
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

fn bump_ring_epoch<R: KvRead>(t: &mut Txn<'_, R>) -> Result<(), NsError> {
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
