//! What the namespace is made of, as requests and answers carry it:
//! inode attributes, extents, directory entries, owners and attribute
//! changes. Re-exported from [`crate::meta_rpc`].

use serde::{Deserialize, Serialize};

use crate::{ChunkId, InodeId};

/// What an inode is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    /// A named pipe: no data of its own (the kernel of whoever opens it
    /// makes the pipe).
    Fifo,
    /// A Unix domain socket's name: no data of its own.
    Socket,
}

/// An inode's attributes, POSIX-shaped.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct InodeAttr {
    pub ino: InodeId,
    pub kind: FileKind,
    /// Permission bits (no file-type bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub nlink: u32,
    /// Nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    /// Bumped on every change to the inode or its extents; caches key on it.
    pub version: u64,
    /// Access time: set at creation and by an explicit change (utimensat);
    /// reads do not update it (as a `noatime` mount).
    pub atime_ns: i64,
}

/// One stretch of a file: `len` bytes at `offset`, stored in `chunk` starting
/// at `chunk_offset`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
    pub chunk: ChunkId,
    pub chunk_offset: u64,
}

/// One directory entry.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DirEntry {
    pub name: String,
    pub ino: InodeId,
    pub kind: FileKind,
}

/// A directory entry with the attributes of the inode it names: what a
/// lookup of the name would answer.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DirEntryPlus {
    pub name: String,
    pub attr: InodeAttr,
}

/// Who creates something, and with which permission bits.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Owner {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// What a set-attributes request changes (`None`: left as is): chmod,
/// chown, truncate (a file's size: shrinking drops what lies past it,
/// growing leaves a hole that reads as zeros) and the modification time.
/// Every change also sets the change time.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct AttrChange {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub mtime_ns: Option<i64>,
    pub atime_ns: Option<i64>,
}
