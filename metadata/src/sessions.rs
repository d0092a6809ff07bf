//! Exactly-once writes. A client names each write it may send again with a
//! [`Session`] (client, seq); the first time the command is applied, its
//! result is kept under that name, and a repeat — the client resending
//! after a lost answer or a failover — gets the kept result and changes
//! nothing. Records expire [`SESSION_RETENTION_SECS`] after they were
//! written, by the command's own timestamp, so every replica expires the
//! same records at the same log position.
//!
//! Keys in [`Cf::Sessions`]: `r` + client + seq → result; `t` + time +
//! client + seq → empty (the expiry index, oldest first). Pure over the
//! state machine's [`Txn`].

use cairn_proto::meta_rpc::{Session, SESSION_RETENTION_SECS};
use cairn_proto::ErrorCode;
use cairn_proto::RpcError;

use crate::command::{Command, CommandResult};
use crate::kv::{Cf, KvError, KvRead, Txn};
use crate::schema::{decode, encode, InodeAttrV1, INODE_V2, RECORD_V1};

/// Most expired records dropped per command (bounds the work of one apply;
/// expiry keeps up since each command writes one record).
const EXPIRE_PER_APPLY: usize = 64;

fn result_key(s: Session) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(b'r');
    k.extend_from_slice(&s.client.to_be_bytes());
    k.extend_from_slice(&s.seq.to_be_bytes());
    k
}

fn time_key(at_ns: i64, s: Session) -> Vec<u8> {
    let mut k = Vec::with_capacity(25);
    k.push(b't');
    k.extend_from_slice(&(at_ns.max(0) as u64).to_be_bytes());
    k.extend_from_slice(&s.client.to_be_bytes());
    k.extend_from_slice(&s.seq.to_be_bytes());
    k
}

/// Applies `cmd` under `session` at most once, with `apply`
/// ([`crate::apply::apply_one`], handed in so that this module depends on nothing but the
/// command); returns its result (the kept one for a repeat).
pub fn apply_once<R: KvRead>(
    t: &mut Txn<'_, R>,
    session: Session,
    now_ns: i64,
    cmd: &Command,
    apply: impl FnOnce(&mut Txn<'_, R>, &Command) -> Result<CommandResult, KvError>,
) -> Result<CommandResult, KvError> {
    expire(t, now_ns)?;
    if matches!(cmd, Command::Once { .. } | Command::Batch(_)) {
        return Ok(Err(RpcError::new(
            ErrorCode::InvalidRequest,
            "a session command must hold a single command",
        )));
    }
    let key = result_key(session);
    if let Some(kept) = t.get(Cf::Sessions, &key)? {
        return decode_result(&kept);
    }
    let result = apply(t, cmd)?;
    t.put(Cf::Sessions, key, encode_result(&result));
    t.put(Cf::Sessions, time_key(now_ns, session), Vec::new());
    Ok(result)
}

/// A kept result: format byte [`INODE_V2`], then the result.
fn encode_result(r: &CommandResult) -> Vec<u8> {
    postcard::to_extend(r, vec![INODE_V2]).expect("in-memory postcard encoding cannot fail")
}

/// Reads a kept result, also as earlier builds wrote it (format 1, inode
/// attributes without an access time).
fn decode_result(bytes: &[u8]) -> Result<CommandResult, KvError> {
    let corrupt = |e: postcard::Error| KvError(format!("corrupt session record: {e}"));
    match bytes.split_first() {
        Some((&RECORD_V1, rest)) => {
            let old: Result<Option<InodeAttrV1>, RpcError> =
                postcard::from_bytes(rest).map_err(corrupt)?;
            Ok(old.map(|a| a.map(Into::into)))
        }
        Some((&INODE_V2, rest)) => postcard::from_bytes(rest).map_err(corrupt),
        Some((v, _)) => Err(KvError(format!(
            "session record format {v} is newer than this build"
        ))),
        None => Err(KvError("empty session record".into())),
    }
}

/// Key of the [`ExpiryCursor`] in [`Cf::Sessions`] (outside the `r` and
/// `t` ranges).
const CURSOR_KEY: &[u8] = b"c";

/// Where expiry stopped. Index keys are deleted in key order, so the next
/// scan starts past them instead of walking their deletion markers again:
/// RocksDB keeps those until a compaction, and a busy cluster would
/// otherwise pay for every expired record on every write. Once per
/// retention period the scan starts from the beginning again, so a record
/// stamped behind the cursor (a new leader's clock behind the old one's)
/// still expires. Replicated like the records, so every replica deletes
/// the same ones.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct ExpiryCursor {
    /// The next scan starts here (empty: at the beginning).
    from: Vec<u8>,
    /// When the next scan starts at the beginning again.
    rescan_at_ns: i64,
}

/// Drops records written more than the retention period before `now_ns`.
fn expire<R: KvRead>(t: &mut Txn<'_, R>, now_ns: i64) -> Result<(), KvError> {
    let retention = (SESSION_RETENTION_SECS as i64).saturating_mul(1_000_000_000);
    let cutoff = now_ns.saturating_sub(retention);
    let end = {
        let mut k = vec![b't'];
        k.extend_from_slice(&(cutoff.max(0) as u64).to_be_bytes());
        k
    };
    let mut cursor: ExpiryCursor = match t.get(Cf::Sessions, CURSOR_KEY)? {
        Some(b) => decode(&b)?,
        None => ExpiryCursor::default(),
    };
    let mut moved = false;
    if cursor.from.is_empty() || now_ns >= cursor.rescan_at_ns {
        cursor.from = b"t".to_vec();
        cursor.rescan_at_ns = now_ns.saturating_add(retention);
        moved = true;
    }
    let rows = t.scan(Cf::Sessions, &cursor.from, &end, EXPIRE_PER_APPLY)?;
    for (k, _) in &rows {
        if k.len() == 25 {
            let mut r = vec![b'r'];
            r.extend_from_slice(&k[9..]);
            t.delete(Cf::Sessions, r);
        }
        t.delete(Cf::Sessions, k.clone());
    }
    let next = match rows.last() {
        // A full batch: more may wait right after the last one.
        Some((last, _)) if rows.len() == EXPIRE_PER_APPLY => {
            let mut k = last.clone();
            k.push(0); // strictly after it
            k
        }
        // Everything before the cutoff is gone now.
        _ => end,
    };
    if next > cursor.from {
        cursor.from = next;
        moved = true;
    }
    if moved {
        t.put(Cf::Sessions, CURSOR_KEY.to_vec(), encode(&cursor));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemKv;

    fn mkdir(name: &str) -> Command {
        Command::mkdir_in_root(name)
    }

    fn run(kv: &mut MemKv, cmd: &Command) -> CommandResult {
        let mut t = Txn::new(&*kv);
        let r = crate::apply::apply_one(&mut t, cmd).expect("memory store does not fail");
        let writes = t.into_writes();
        kv.commit(writes);
        r
    }

    fn once(client: u64, seq: u64, now_ns: i64, cmd: Command) -> Command {
        Command::Once {
            session: Session { client, seq },
            now_ns,
            cmd: Box::new(cmd),
        }
    }

    #[test]
    fn results_kept_by_earlier_builds_still_decode() {
        let v1: Result<Option<InodeAttrV1>, RpcError> = Ok(Some(InodeAttrV1 {
            ino: cairn_proto::InodeId(4),
            kind: cairn_proto::meta_rpc::FileKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            nlink: 2,
            mtime_ns: 12,
            ctime_ns: 12,
            version: 1,
        }));
        let old = crate::schema::encode(&v1);
        let got = decode_result(&old).unwrap().unwrap().unwrap();
        assert_eq!((got.ino.0, got.atime_ns), (4, 12));
        let refused: CommandResult = Err(RpcError::new(ErrorCode::NotFound, "x"));
        assert_eq!(decode_result(&encode_result(&refused)).unwrap(), refused);
    }

    #[test]
    fn a_repeat_returns_the_first_result_and_changes_nothing() {
        let mut kv = MemKv::default();
        let first = run(&mut kv, &once(7, 1, 10, mkdir("a")));
        let attr = first.clone().unwrap().unwrap();
        // Without a session the same mkdir is refused: the name exists.
        assert!(run(&mut kv, &mkdir("a")).is_err());
        // With the same session it answers as the first time did.
        assert_eq!(run(&mut kv, &once(7, 1, 20, mkdir("a"))), first);
        // Another seq is another write.
        assert!(run(&mut kv, &once(7, 2, 30, mkdir("a"))).is_err());
        // A refusal is kept too.
        let refused = run(&mut kv, &once(7, 3, 40, mkdir("a")));
        assert!(refused.is_err());
        assert_eq!(run(&mut kv, &once(7, 3, 50, mkdir("b"))), refused);
        assert_eq!(attr.ino, first.unwrap().unwrap().ino);
    }

    #[test]
    fn records_expire_after_the_retention() {
        let mut kv = MemKv::default();
        let sec = 1_000_000_000i64;
        assert!(run(&mut kv, &once(1, 1, sec, mkdir("a"))).is_ok());
        let later = sec + (SESSION_RETENTION_SECS as i64 + 1) * sec;
        // The old record is gone: the same session is a new write now.
        assert!(run(&mut kv, &once(1, 1, later, mkdir("a"))).is_err());
        let left = kv.scan(Cf::Sessions, b"r", &[0xff], usize::MAX).unwrap();
        // Only the new (refused) record and its index entry remain.
        assert_eq!(left.len(), 2);
    }

    #[test]
    fn expiry_goes_on_past_its_cursor_and_catches_records_stamped_behind_it() {
        let mut kv = MemKv::default();
        let sec = 1_000_000_000i64;
        let retention = SESSION_RETENTION_SECS as i64 * sec;
        let records = |kv: &MemKv| kv.scan(Cf::Sessions, b"t", b"u", usize::MAX).unwrap().len();
        // More records than one apply expires, all at once.
        let n = 3 * EXPIRE_PER_APPLY as u64;
        for seq in 0..n {
            assert!(run(&mut kv, &once(1, seq, sec, mkdir(&format!("d{seq}")))).is_ok());
        }
        // Later writes expire them a bounded number at a time, each apply
        // starting where the last one stopped.
        let later = sec + retention + sec;
        for seq in 0..3 {
            assert!(run(&mut kv, &once(2, seq, later, mkdir(&format!("e{seq}")))).is_ok());
        }
        assert_eq!(records(&kv), 3, "only the three new records are left");
        // A record stamped behind the cursor (a leader whose clock lags)...
        assert!(run(&mut kv, &once(3, 0, sec, mkdir("late"))).is_ok());
        assert_eq!(records(&kv), 4);
        // ...still expires once expiry scans from the start again.
        let much_later = later + retention + sec;
        assert!(run(&mut kv, &once(4, 0, much_later, mkdir("f"))).is_ok());
        assert_eq!(records(&kv), 1, "everything but the newest expired");
    }

    #[test]
    fn nesting_is_refused() {
        let mut kv = MemKv::default();
        let nested = once(1, 1, 1, once(1, 2, 1, mkdir("a")));
        assert!(run(&mut kv, &nested).is_err());
    }
}
