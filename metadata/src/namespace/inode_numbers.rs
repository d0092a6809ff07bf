//! Inode numbers: handed out one at a time to files made by a command,
//! or set aside in blocks for a client to create files under
//! (`ReserveInodes`, then `CreateWith`). One counter serves both, so no
//! number is ever handed out twice.

use cairn_proto::meta_rpc::MAX_INODE_RESERVATION;
use cairn_proto::{ErrorCode, InodeId};

use super::{ensure_root, refuse, NsError};
use crate::kv::{Cf, KvRead, Txn};
use crate::schema::{decode, encode, meta_keys};

/// The next number to hand out (every number below it has been).
fn next_ino<R: KvRead>(t: &Txn<'_, R>) -> Result<u64, NsError> {
    Ok(match t.get(Cf::SmMeta, meta_keys::NEXT_INO)? {
        Some(b) => decode(&b)?,
        None => 2,
    })
}

/// True if `ino` was handed out or set aside (the root's number is not).
pub(super) fn was_handed_out<R: KvRead>(t: &Txn<'_, R>, ino: InodeId) -> Result<bool, NsError> {
    Ok(ino.0 >= 2 && ino.0 < next_ino(t)?)
}

pub(super) fn alloc_ino<R: KvRead>(t: &mut Txn<'_, R>) -> Result<InodeId, NsError> {
    reserve_inodes(t, 1)
}

/// Sets `count` inode numbers aside; the first of them.
pub fn reserve_inodes<R: KvRead>(t: &mut Txn<'_, R>, count: u32) -> Result<InodeId, NsError> {
    // The counter starts with the root: a reservation made before any
    // other command must not be handed out again when the root is made.
    ensure_root(t)?;
    if count == 0 || count > MAX_INODE_RESERVATION {
        return refuse(
            ErrorCode::InvalidRequest,
            format!("inode reservations are 1..={MAX_INODE_RESERVATION}, not {count}"),
        );
    }
    let next = next_ino(t)?;
    t.put(
        Cf::SmMeta,
        meta_keys::NEXT_INO.to_vec(),
        encode(&(next + u64::from(count))),
    );
    Ok(InodeId(next))
}
