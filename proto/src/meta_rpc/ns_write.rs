//! Changes to the namespace, and what they answer. Sent by clients and
//! admins; each becomes one Raft command (the metadata crate's `Command`
//! embeds an [`NsWrite`] as sent), applied at most once per session.
//!
//! **Stored format**: the Raft log holds these by postcard, which encodes
//! an enum by its variant's index. New variants and fields go last, and
//! the metadata crate's golden-bytes tests pin every variant's bytes.

use serde::{Deserialize, Serialize};

use crate::inode::{AttrChange, Extent, FileKind, InodeAttr, Owner};
use crate::InodeId;

/// What a rename does when the target name exists (Linux `renameat2`
/// flags).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub enum RenameMode {
    /// Replace the target (a file, or an empty directory when the source
    /// is one).
    #[default]
    Replace,
    /// Refuse with `AlreadyExists` (`RENAME_NOREPLACE`).
    NoReplace,
    /// Swap the two entries atomically; both must exist
    /// (`RENAME_EXCHANGE`).
    Exchange,
}

/// How setting an extended attribute treats an existing one (`setxattr`
/// flags).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub enum XattrMode {
    /// Create or replace.
    #[default]
    Upsert,
    /// Refuse with `AlreadyExists` if it exists (`XATTR_CREATE`).
    Create,
    /// Refuse with `NoData` if it does not exist (`XATTR_REPLACE`).
    Replace,
}

/// A change to the namespace. Times are stamped by the metadata node that
/// proposes it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum NsWrite {
    Mkdir {
        parent: InodeId,
        name: String,
        owner: Owner,
    },
    /// Removes a non-directory entry.
    Unlink {
        parent: InodeId,
        name: String,
    },
    /// Removes an empty directory.
    Rmdir {
        parent: InodeId,
        name: String,
    },
    /// Moves an entry; by default atomically replaces a target file (or
    /// empty directory when the source is a directory), see [`RenameMode`].
    Rename {
        parent: InodeId,
        name: String,
        new_parent: InodeId,
        new_name: String,
        mode: RenameMode,
    },
    /// Creates or replaces a regular file with these extents, atomically:
    /// extents, dentry and chunk refcounts change in one Raft command.
    CommitFile {
        parent: InodeId,
        name: String,
        extents: Vec<Extent>,
        size: u64,
        owner: Owner,
    },
    /// Changes inode `ino`'s attributes; answers the new attributes.
    SetAttr {
        ino: InodeId,
        change: AttrChange,
    },
    /// Creates an empty regular file; refused with `AlreadyExists` if the
    /// name is taken. Answers its attributes.
    CreateFile {
        parent: InodeId,
        name: String,
        owner: Owner,
    },
    /// Writes part of file `ino`: each extent replaces whatever the file
    /// held at its byte range (older extents are cut around it); the size
    /// grows to the last extent's end if that lies past it. Answers the new
    /// attributes.
    WriteExtents {
        ino: InodeId,
        extents: Vec<Extent>,
    },
    /// Creates a named pipe or socket node (`kind` is `Fifo` or `Socket`).
    Mknod {
        parent: InodeId,
        name: String,
        kind: FileKind,
        owner: Owner,
    },
    /// Creates a symbolic link `name` in `parent` pointing at `target`.
    Symlink {
        parent: InodeId,
        name: String,
        target: String,
        owner: Owner,
    },
    /// Adds a hard link `new_name` in `new_parent` to non-directory `ino`.
    Link {
        ino: InodeId,
        new_parent: InodeId,
        new_name: String,
    },
    SetXattr {
        ino: InodeId,
        name: String,
        value: Vec<u8>,
        mode: XattrMode,
    },
    RemoveXattr {
        ino: InodeId,
        name: String,
    },
    /// Writes each `(offset, bytes)` part into file `ino`'s inline bytes
    /// (zeros fill any gap). Refused with `NotInline` when the file has
    /// chunks or would grow past `MAX_INLINE`.
    WriteInline {
        ino: InodeId,
        parts: Vec<(u64, Vec<u8>)>,
    },
    /// Sets aside `count` (at most `MAX_INODE_RESERVATION`) inode numbers
    /// for this client to create files under (`CreateWith`); answered with
    /// [`NsWriteReply::Inodes`]. Numbers never used are simply never used.
    /// Not once-only: a repeat sets more aside, which only leaves numbers
    /// unused.
    ReserveInodes {
        count: u32,
    },
    /// Creates regular file `name` in `parent` as inode `ino` (one this
    /// client reserved) holding `inline` (at most `MAX_INLINE` bytes): a
    /// file created and written in one commit. Refused with
    /// `AlreadyExists` if the name is taken, `InvalidRequest` if `ino` was
    /// never reserved or is in use. Answers its attributes. `created_ns`:
    /// when the client created it (and told its kernel so), recorded as
    /// the file's times if it is within `MAX_CREATE_SKEW_NS` of metadata's
    /// clock.
    CreateWith {
        parent: InodeId,
        name: String,
        owner: Owner,
        ino: InodeId,
        inline: Vec<u8>,
        created_ns: i64,
    },
    /// [`NsWrite::CommitFile`] that also sets the file's extended
    /// attributes to exactly `xattrs` (any it had are dropped), in the same
    /// command: an object and what describes it (the S3 gateway's ETag,
    /// content type, user metadata) change together or not at all.
    CommitObject {
        parent: InodeId,
        name: String,
        extents: Vec<Extent>,
        size: u64,
        owner: Owner,
        xattrs: Vec<(String, Vec<u8>)>,
    },
}

impl NsWrite {
    pub fn op_name(&self) -> &'static str {
        match self {
            NsWrite::Mkdir { .. } => "Mkdir",
            NsWrite::Unlink { .. } => "Unlink",
            NsWrite::Rmdir { .. } => "Rmdir",
            NsWrite::Rename { .. } => "Rename",
            NsWrite::CommitFile { .. } => "CommitFile",
            NsWrite::SetAttr { .. } => "SetAttr",
            NsWrite::CreateFile { .. } => "CreateFile",
            NsWrite::WriteExtents { .. } => "WriteExtents",
            NsWrite::Mknod { .. } => "Mknod",
            NsWrite::Symlink { .. } => "Symlink",
            NsWrite::Link { .. } => "Link",
            NsWrite::SetXattr { .. } => "SetXattr",
            NsWrite::RemoveXattr { .. } => "RemoveXattr",
            NsWrite::WriteInline { .. } => "WriteInline",
            NsWrite::ReserveInodes { .. } => "ReserveInodes",
            NsWrite::CreateWith { .. } => "CreateWith",
            NsWrite::CommitObject { .. } => "CommitObject",
        }
    }
}

/// What a [`NsWrite`] answers.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum NsWriteReply {
    /// Applied: the attributes after it of the inode it made or changed
    /// (none for a removal, a rename or an xattr change), and of each of
    /// [`NsWrite::changed_dirs`] (see the `dir_changes` module; a directory
    /// gone meanwhile is left out).
    Done {
        attr: Option<InodeAttr>,
        dirs: Vec<InodeAttr>,
    },
    /// `ReserveInodes`: numbers `first..first + count` are this client's to
    /// create files under.
    Inodes { first: InodeId, count: u32 },
}
