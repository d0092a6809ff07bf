//! Snapshot files on disk: the one current snapshot, the one being
//! installed, and the [`SnapshotFile`] openraft streams through.
//!
//! A snapshot is a file `snap-*.bin` (see [`crate::snapshot_format`]) named
//! by a small sidecar: `CURRENT` for the snapshot served to followers,
//! `INSTALLING` for one this node is installing into its state machine.
//! Sidecars are replaced atomically (write aside, fsync, rename, fsync the
//! directory). `INSTALLING` exists from before the first state-machine
//! write of an install until after its last, so a crash mid-install is
//! finished on restart from the same, already verified, file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::{BasicNode, SnapshotMeta};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

use cairn_proto::NodeId;

const CURRENT: &str = "CURRENT";
const INSTALLING: &str = "INSTALLING";

/// What a sidecar says: a snapshot's metadata and its file's name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub meta: SnapshotMeta<NodeId, BasicNode>,
    pub file: String,
}

/// Format byte of sidecars written by this build. Sidecars of format 1
/// (the first release) are bare postcard, whose first byte is the tag of
/// `meta.last_log_id` (0 or 1); the byte 2 cannot begin one, so no marker
/// is needed to tell them apart.
pub const SIDECAR_V2: u8 = 2;

pub fn encode_sidecar(rec: &SnapshotRecord) -> Vec<u8> {
    postcard::to_extend(rec, vec![SIDECAR_V2]).expect("in-memory postcard encoding cannot fail")
}

pub fn decode_sidecar(bytes: &[u8]) -> Result<SnapshotRecord, String> {
    match bytes.first() {
        Some(0 | 1) => postcard::from_bytes(bytes).map_err(|e| e.to_string()),
        Some(&SIDECAR_V2) => postcard::from_bytes(&bytes[1..]).map_err(|e| e.to_string()),
        Some(v) => Err(format!(
            "snapshot sidecar format {v} is newer than this build reads ({SIDECAR_V2})"
        )),
        None => Err("empty snapshot sidecar".into()),
    }
}

/// The snapshot directory of one metadata node.
#[derive(Clone)]
pub struct SnapshotDir {
    dir: PathBuf,
    /// Serializes sidecar updates and clean-up.
    lock: Arc<Mutex<()>>,
    seq: Arc<AtomicU64>,
}

impl SnapshotDir {
    /// Opens (creating) `dir` and removes partial files a crash left.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".part") || name.ends_with(".tmp") {
                fs::remove_file(&path)?;
            }
        }
        Ok(SnapshotDir {
            dir: dir.to_path_buf(),
            lock: Arc::default(),
            seq: Arc::default(),
        })
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn unique(&self, prefix: &str, suffix: &str) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{nanos}-{n}{suffix}")
    }

    /// A fresh path for a snapshot being written (removed on restart
    /// unless promoted).
    pub fn new_part(&self, what: &str) -> PathBuf {
        self.dir.join(self.unique(what, ".part"))
    }

    /// Syncs a finished part file and renames it to a snapshot file;
    /// returns the new file name.
    pub fn promote(&self, part: &Path) -> io::Result<String> {
        File::open(part)?.sync_all()?;
        let name = self.unique("snap", ".bin");
        fs::rename(part, self.dir.join(&name))?;
        sync_dir(&self.dir)?;
        Ok(name)
    }

    fn read_sidecar(&self, name: &str) -> io::Result<Option<SnapshotRecord>> {
        let bytes = match fs::read(self.dir.join(name)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        decode_sidecar(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{name}: {e}")))
    }

    fn write_sidecar(&self, name: &str, rec: &SnapshotRecord) -> io::Result<()> {
        let bytes = encode_sidecar(rec);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, self.dir.join(name))?;
        sync_dir(&self.dir)
    }

    /// The snapshot served to followers, if any.
    pub fn current(&self) -> io::Result<Option<SnapshotRecord>> {
        self.read_sidecar(CURRENT)
    }

    /// The current snapshot and its file, open (read and opened under the
    /// lock that replacing it takes, so the file cannot be deleted in
    /// between; once open it stays readable even if it then is).
    pub fn open_current(&self) -> io::Result<Option<(SnapshotRecord, File)>> {
        let _g = self.guard();
        let Some(rec) = self.current()? else {
            return Ok(None);
        };
        let file = File::open(self.dir.join(&rec.file))?;
        Ok(Some((rec, file)))
    }

    /// An install that was started and not finished, if any.
    pub fn installing(&self) -> io::Result<Option<SnapshotRecord>> {
        self.read_sidecar(INSTALLING)
    }

    pub fn begin_install(&self, rec: &SnapshotRecord) -> io::Result<()> {
        let _g = self.guard();
        self.write_sidecar(INSTALLING, rec)
    }

    /// Makes `rec` current unless a newer snapshot already is, ends any
    /// install of it, and deletes snapshot files nothing names any more.
    pub fn set_current(&self, rec: &SnapshotRecord) -> io::Result<()> {
        let _g = self.guard();
        let newer_exists = self
            .current()?
            .is_some_and(|c| c.meta.last_log_id > rec.meta.last_log_id);
        if !newer_exists {
            self.write_sidecar(CURRENT, rec)?;
        }
        if self
            .installing()?
            .is_some_and(|i| i.meta.snapshot_id == rec.meta.snapshot_id)
        {
            fs::remove_file(self.dir.join(INSTALLING))?;
            sync_dir(&self.dir)?;
        }
        self.remove_unnamed()
    }

    fn remove_unnamed(&self) -> io::Result<()> {
        let keep: Vec<String> = [self.current()?, self.installing()?]
            .into_iter()
            .flatten()
            .map(|r| r.file)
            .collect();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.starts_with("snap-")
                && name.ends_with(".bin")
                && !keep.iter().any(|k| k == name)
            {
                // An open reader (a snapshot being sent) keeps its inode.
                fs::remove_file(&path)?;
            }
        }
        Ok(())
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guard protects no data, only ordering; a panic cannot leave
        // anything half-updated behind it.
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A snapshot file as openraft reads (to send) and writes (to receive) it.
pub struct SnapshotFile {
    pub file: tokio::fs::File,
    pub path: PathBuf,
}

impl SnapshotFile {
    /// A file already open (see [`SnapshotDir::open_current`]).
    pub fn from_std(file: File, path: PathBuf) -> Self {
        SnapshotFile {
            file: tokio::fs::File::from_std(file),
            path,
        }
    }

    pub async fn create(path: PathBuf) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(SnapshotFile {
            file: tokio::fs::File::from_std(file),
            path,
        })
    }
}

impl AsyncRead for SnapshotFile {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.file).poll_read(cx, buf)
    }
}

impl AsyncWrite for SnapshotFile {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.file).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.file).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

impl AsyncSeek for SnapshotFile {
    fn start_seek(mut self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        Pin::new(&mut self.file).start_seek(position)
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Pin::new(&mut self.file).poll_complete(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId, StoredMembership};

    fn rec(index: u64, file: &str) -> SnapshotRecord {
        SnapshotRecord {
            meta: SnapshotMeta {
                last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
                last_membership: StoredMembership::default(),
                snapshot_id: format!("s{index}"),
            },
            file: file.into(),
        }
    }

    fn snap_file(d: &SnapshotDir) -> String {
        let part = d.new_part("t");
        fs::write(&part, b"x").unwrap();
        d.promote(&part).unwrap()
    }

    #[test]
    fn sidecars_of_both_formats_decode() {
        // rec(7, "snap-a.bin") as the first release wrote it (bare
        // postcard), then with its empty membership and no log id.
        let v1: &[u8] = &[
            1, 1, 1, 7, 0, 0, 0, 2, b's', b'7', 10, b's', b'n', b'a', b'p', b'-', b'a', b'.', b'b',
            b'i', b'n',
        ];
        assert_eq!(postcard::to_allocvec(&rec(7, "snap-a.bin")).unwrap(), v1);
        let got = decode_sidecar(v1).unwrap();
        assert_eq!(
            (got.meta, got.file),
            (rec(7, "snap-a.bin").meta, "snap-a.bin".into())
        );
        let mut none = rec(0, "f");
        none.meta.last_log_id = None;
        let old = postcard::to_allocvec(&none).unwrap();
        assert_eq!(old[0], 0);
        assert_eq!(decode_sidecar(&old).unwrap().meta, none.meta);
        let new = encode_sidecar(&rec(9, "g"));
        assert_eq!(new[0], SIDECAR_V2);
        assert_eq!(decode_sidecar(&new).unwrap().meta, rec(9, "g").meta);
        assert!(decode_sidecar(&[3, 0]).is_err());
        assert!(decode_sidecar(&[]).is_err());
    }

    #[test]
    fn an_older_snapshot_never_replaces_a_newer_one() {
        let tmp = tempfile::tempdir().unwrap();
        let d = SnapshotDir::open(tmp.path()).unwrap();
        let (a, b) = (snap_file(&d), snap_file(&d));
        d.set_current(&rec(10, &b)).unwrap();
        d.set_current(&rec(5, &a)).unwrap();
        assert_eq!(d.current().unwrap().unwrap().file, b);
        assert!(!d.path(&a).exists(), "the unnamed file is removed");
        assert!(d.path(&b).exists());
    }

    #[test]
    fn the_current_snapshot_stays_readable_once_opened_while_a_newer_one_replaces_it() {
        use std::io::Read;
        let tmp = tempfile::tempdir().unwrap();
        let d = SnapshotDir::open(tmp.path()).unwrap();
        assert!(d.open_current().unwrap().is_none());
        let a = snap_file(&d);
        d.set_current(&rec(5, &a)).unwrap();
        let (got, mut file) = d.open_current().unwrap().unwrap();
        assert_eq!(got.file, a);
        // A newer snapshot becomes current and the old file is deleted...
        let b = snap_file(&d);
        d.set_current(&rec(10, &b)).unwrap();
        assert!(!d.path(&a).exists());
        // ...while the reader that opened it still reads it whole.
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"x");
        assert_eq!(d.open_current().unwrap().unwrap().0.file, b);
    }

    #[test]
    fn an_unfinished_install_survives_reopen_and_partials_do_not() {
        let tmp = tempfile::tempdir().unwrap();
        let d = SnapshotDir::open(tmp.path()).unwrap();
        let f = snap_file(&d);
        d.begin_install(&rec(7, &f)).unwrap();
        let part = d.new_part("incoming");
        fs::write(&part, b"half").unwrap();
        let d = SnapshotDir::open(tmp.path()).unwrap();
        assert!(!part.exists());
        assert_eq!(d.installing().unwrap().unwrap().file, f);
        d.set_current(&rec(7, &f)).unwrap();
        assert!(d.installing().unwrap().is_none());
        assert_eq!(d.current().unwrap().unwrap().file, f);
    }
}
