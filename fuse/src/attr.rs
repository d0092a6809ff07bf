//! Cairn attributes as FUSE reports them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_proto::meta_rpc::{FileKind, InodeAttr};
use cairn_proto::InodeId;
use fuser::{FileAttr, FileType, INodeNo};

/// `st_blksize`: tools size their reads and writes by it; big IOs suit a
/// store whose chunks average 1 MiB.
const BLOCK_SIZE: u32 = 1 << 20;

pub fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::File => FileType::RegularFile,
        FileKind::Dir => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
    }
}

pub fn time_of(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

pub fn ns_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// `size` overrides the committed size (a file with buffered writes).
pub fn to_file_attr(a: &InodeAttr, size: u64) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino.0),
        size,
        blocks: size.div_ceil(512),
        atime: time_of(a.atime_ns),
        mtime: time_of(a.mtime_ns),
        ctime: time_of(a.ctime_ns),
        crtime: time_of(a.ctime_ns),
        kind: file_type(a.kind),
        perm: (a.mode & 0o7777) as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}

/// Attributes for the `.` and `..` entries of a listing with attributes:
/// the kernel keeps neither, only their number and type are read.
pub fn dot_attr(ino: InodeId) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino.0),
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: FileType::Directory,
        perm: 0o755,
        nlink: 2,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}

/// A regular file's attributes for tests: inode `ino`, `ino` bytes.
#[cfg(test)]
pub fn test_file(ino: u64) -> InodeAttr {
    InodeAttr {
        ino: InodeId(ino),
        kind: FileKind::File,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: ino,
        nlink: 1,
        mtime_ns: 0,
        ctime_ns: 0,
        atime_ns: 0,
        version: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_both_sides_of_the_epoch() {
        for ns in [0, 1, 1_700_000_000_123_456_789, -5_000_000_001] {
            assert_eq!(ns_of(time_of(ns)), ns);
        }
    }
}
