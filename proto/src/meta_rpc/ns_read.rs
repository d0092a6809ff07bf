//! Reads of the namespace, and what they answer. Open to every role; each
//! may be answered by a follower from its applied state when the caller
//! opts into follower reads (`MetaCall::follower_read`),
//! else after a read barrier on the leader.

use serde::{Deserialize, Serialize};

use crate::inode::{DirEntry, DirEntryPlus, Extent, InodeAttr};
use crate::InodeId;

/// A read of the namespace.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum NsRead {
    /// The attributes of `name` in directory `parent`.
    Lookup {
        parent: InodeId,
        name: String,
    },
    /// The attributes of the inode at `path` (from the root).
    ResolvePath {
        path: String,
    },
    GetAttr {
        ino: InodeId,
    },
    /// Up to `limit` entries of directory `ino` whose names sort after
    /// `after` (at most `MAX_DIR_PAGE`).
    ReadDir {
        ino: InodeId,
        after: Option<String>,
        limit: u32,
    },
    /// As `ReadDir`, each entry with its attributes (at most
    /// `MAX_DIR_PLUS_PAGE` a page).
    ReadDirPlus {
        ino: InodeId,
        after: Option<String>,
        limit: u32,
    },
    /// Up to `limit` extents of file `ino` that end after `from`.
    GetExtents {
        ino: InodeId,
        from: u64,
        limit: u32,
    },
    /// A file's content: its inline bytes, or (paged as `GetExtents`) its
    /// extents.
    GetContent {
        ino: InodeId,
        from: u64,
        limit: u32,
    },
    /// The target of symbolic link `ino`.
    ReadLink {
        ino: InodeId,
    },
    /// Answered with the value, or `NoData`.
    GetXattr {
        ino: InodeId,
        name: String,
    },
    ListXattr {
        ino: InodeId,
    },
    /// What an open for reading needs, in one round trip: the attributes
    /// of `ino` and, for a file whose content fits one reply (inline
    /// bytes, or at most `limit` extents), that content, read at the
    /// version the attributes carry.
    Open {
        ino: InodeId,
        limit: u32,
    },
}

impl NsRead {
    pub fn op_name(&self) -> &'static str {
        match self {
            NsRead::Lookup { .. } => "Lookup",
            NsRead::ResolvePath { .. } => "ResolvePath",
            NsRead::GetAttr { .. } => "GetAttr",
            NsRead::ReadDir { .. } => "ReadDir",
            NsRead::ReadDirPlus { .. } => "ReadDirPlus",
            NsRead::GetExtents { .. } => "GetExtents",
            NsRead::GetContent { .. } => "GetContent",
            NsRead::ReadLink { .. } => "ReadLink",
            NsRead::GetXattr { .. } => "GetXattr",
            NsRead::ListXattr { .. } => "ListXattr",
            NsRead::Open { .. } => "Open",
        }
    }
}

/// What a [`NsRead`] answers.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum NsReadReply {
    /// `Lookup`, `ResolvePath`, `GetAttr`.
    Attr(InodeAttr),
    /// `ReadDir`: `more` when entries follow.
    DirPage { entries: Vec<DirEntry>, more: bool },
    /// `ReadDirPlus`: `more` when entries follow, and then the next page
    /// starts after `last` (the last name read, which may be one left out
    /// because it was removed meanwhile).
    DirPlusPage {
        entries: Vec<DirEntryPlus>,
        more: bool,
        last: Option<String>,
    },
    /// `GetExtents`; `version`: the file's inode version the page was read
    /// at.
    Extents {
        extents: Vec<Extent>,
        more: bool,
        version: u64,
    },
    /// `GetContent`: a file's inline bytes (then no extents; bytes past
    /// them up to the size read as zeros), or a page of its extents as
    /// `Extents`; `version` as there.
    Content {
        inline: Option<Vec<u8>>,
        extents: Vec<Extent>,
        more: bool,
        version: u64,
    },
    /// `ReadLink`.
    SymlinkTarget(String),
    /// `GetXattr`.
    Xattr(Vec<u8>),
    /// `ListXattr`.
    XattrNames(Vec<String>),
    /// `Open`: `content` is the file's inline bytes or its extents (as
    /// `Content`, all of them), or `None` when they do not fit one reply
    /// or `attr` is not a file.
    Opened {
        attr: InodeAttr,
        content: Option<(Option<Vec<u8>>, Vec<Extent>)>,
    },
}
