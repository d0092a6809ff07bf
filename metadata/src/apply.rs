//! Applying one [`Command`] to the state machine's key-value view: the
//! namespace's writes to [`crate::namespace`], the registry's to
//! [`crate::registry`], sessions through [`crate::sessions`]. No IO of its
//! own: the state machine feeds it a [`Txn`] and commits what it wrote; the
//! tests and the simulator feed it a [`MemKv`](crate::kv::MemKv).

use cairn_proto::meta_rpc::InodeAttr;
use cairn_proto::ErrorCode;

use crate::command::{Command, CommandResult};
use crate::kv::{KvError, KvRead, Txn};
use crate::namespace::{self, refuse, NsError};

/// Applies one command. On `Err(Refused)` the caller must discard the
/// writes this call made.
fn apply<R: KvRead>(t: &mut Txn<'_, R>, cmd: &Command) -> Result<Option<InodeAttr>, NsError> {
    // The root exists from the first command on, whatever it is.
    namespace::ensure_root(t)?;
    match cmd {
        Command::Ns { write, now_ns } => namespace::apply(t, write, *now_ns),
        Command::Registry(change) => crate::registry::apply(t, change).map(|()| None),
        Command::PurgeGarbage { ids, older_than_ns } => {
            namespace::purge(t, ids, *older_than_ns).map(|()| None)
        }
        Command::Batch(_) => refuse(ErrorCode::InvalidRequest, "a batch cannot nest in a batch"),
        Command::Once { .. } => refuse(
            ErrorCode::InvalidRequest,
            "a session command cannot nest in another",
        ),
    }
}

/// Applies one command as a unit: a refused command leaves `t` exactly as
/// it was. Only a storage failure is an `Err`.
pub fn apply_one<R: KvRead>(t: &mut Txn<'_, R>, cmd: &Command) -> Result<CommandResult, KvError> {
    if let Command::Once {
        session,
        now_ns,
        cmd,
    } = cmd
    {
        return crate::sessions::apply_once(t, *session, *now_ns, cmd, apply_one);
    }
    let save = t.savepoint();
    match apply(t, cmd) {
        Ok(attr) => Ok(Ok(attr)),
        Err(NsError::Refused(e)) => {
            t.rollback(save);
            Ok(Err(e))
        }
        Err(NsError::Storage(e)) => Err(e),
    }
}
