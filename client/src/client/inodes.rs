//! The inode-level API a filesystem (the FUSE mount) builds on: operations
//! name a directory inode and an entry name, or an inode, rather than a
//! path; files are written in parts (each part replaces the bytes it
//! covers, leaving the rest of the file as it was) and read chunk by chunk.

use bytes::Bytes;
use cairn_proto::meta_rpc::{
    AttrChange, DirEntry, DirEntryPlus, Extent, FileKind, InodeAttr, NsRead, NsReadReply, NsWrite,
    Owner, RenameMode, XattrMode, MAX_DIR_PAGE, MAX_DIR_PLUS_PAGE, MAX_INLINE,
};
use cairn_proto::trace;
use cairn_proto::{ChunkId, ErrorCode, InodeId};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::{unexpected, Client, EXTENT_PAGE};
use crate::chunk_io::download_range;
use crate::chunker::cut_points;
use crate::error::ClientError;
use crate::inline::under_parts;
use crate::pack;

/// Tries at moving a file's inline bytes into chunks along with a write
/// before giving up because another client keeps rewriting them.
const INLINE_MOVE_TRIES: usize = 3;
/// Tries at reading a file's whole extent list before giving up because
/// the file keeps changing underneath.
const EXTENT_LIST_TRIES: usize = 5;

/// What a file's bytes are: inline bytes kept by metadata (bytes past them
/// up to the file's size are zeros), or extents pointing into chunks
/// (holes between them are zeros).
#[derive(Clone, Debug, Default)]
pub struct FileContent {
    pub inline: Option<Bytes>,
    pub extents: Vec<Extent>,
}

/// The namespace by inode number rather than path, as a filesystem (the
/// FUSE mount) uses it: `client.inodes().mkdir(parent, name, owner)`.
#[derive(Clone, Copy)]
pub struct Inodes<'a> {
    pub(super) client: &'a Client,
}

impl Client {
    /// The inode-level API (see [`Inodes`]).
    pub fn inodes(&self) -> Inodes<'_> {
        Inodes { client: self }
    }
}

impl Inodes<'_> {
    /// Attributes of `name` in directory `parent`.
    pub async fn lookup(self, parent: InodeId, name: &str) -> Result<InodeAttr, ClientError> {
        self.client
            .attr_of(NsRead::Lookup {
                parent,
                name: name.to_string(),
            })
            .await
    }

    pub async fn get_attr(self, ino: InodeId) -> Result<InodeAttr, ClientError> {
        self.client.attr_of(NsRead::GetAttr { ino }).await
    }

    pub async fn set_attr(
        self,
        ino: InodeId,
        change: AttrChange,
    ) -> Result<InodeAttr, ClientError> {
        self.client
            .write_attr(NsWrite::SetAttr { ino, change })
            .await
    }

    pub async fn mkdir(
        self,
        parent: InodeId,
        name: &str,
        owner: Owner,
    ) -> Result<InodeAttr, ClientError> {
        self.client
            .write_attr(NsWrite::Mkdir {
                parent,
                name: name.to_string(),
                owner,
            })
            .await
    }

    /// Creates an empty file; `AlreadyExists` if the name is taken.
    pub async fn create(
        self,
        parent: InodeId,
        name: &str,
        owner: Owner,
    ) -> Result<InodeAttr, ClientError> {
        self.client
            .write_attr(NsWrite::CreateFile {
                parent,
                name: name.to_string(),
                owner,
            })
            .await
    }

    /// Creates a fifo or socket node.
    pub async fn mknod(
        self,
        parent: InodeId,
        name: &str,
        kind: FileKind,
        owner: Owner,
    ) -> Result<InodeAttr, ClientError> {
        self.client
            .write_attr(NsWrite::Mknod {
                parent,
                name: name.to_string(),
                kind,
                owner,
            })
            .await
    }

    pub async fn symlink(
        self,
        parent: InodeId,
        name: &str,
        target: &str,
        owner: Owner,
    ) -> Result<InodeAttr, ClientError> {
        self.client
            .write_attr(NsWrite::Symlink {
                parent,
                name: name.to_string(),
                target: target.to_string(),
                owner,
            })
            .await
    }

    pub async fn read_link(self, ino: InodeId) -> Result<String, ClientError> {
        match self.client.read(NsRead::ReadLink { ino }).await? {
            NsReadReply::SymlinkTarget(t) => Ok(t),
            r => Err(unexpected(r)),
        }
    }

    /// Adds hard link `new_name` in `new_parent` to `ino`.
    pub async fn link(
        self,
        ino: InodeId,
        new_parent: InodeId,
        new_name: &str,
    ) -> Result<InodeAttr, ClientError> {
        self.client
            .write_attr(NsWrite::Link {
                ino,
                new_parent,
                new_name: new_name.to_string(),
            })
            .await
    }

    pub async fn unlink(self, parent: InodeId, name: &str) -> Result<(), ClientError> {
        self.client
            .write_ok(NsWrite::Unlink {
                parent,
                name: name.to_string(),
            })
            .await
    }

    pub async fn rmdir(self, parent: InodeId, name: &str) -> Result<(), ClientError> {
        self.client
            .write_ok(NsWrite::Rmdir {
                parent,
                name: name.to_string(),
            })
            .await
    }

    pub async fn rename(
        self,
        (parent, name): (InodeId, &str),
        (new_parent, new_name): (InodeId, &str),
        mode: RenameMode,
    ) -> Result<(), ClientError> {
        self.client
            .write_ok(NsWrite::Rename {
                parent,
                name: name.to_string(),
                new_parent,
                new_name: new_name.to_string(),
                mode,
            })
            .await
    }

    pub async fn set_xattr(
        self,
        ino: InodeId,
        name: &str,
        value: &[u8],
        mode: XattrMode,
    ) -> Result<(), ClientError> {
        self.client
            .write_ok(NsWrite::SetXattr {
                ino,
                name: name.to_string(),
                value: value.to_vec(),
                mode,
            })
            .await
    }

    /// The value of attribute `name`; `NoData` if there is none.
    pub async fn get_xattr(self, ino: InodeId, name: &str) -> Result<Vec<u8>, ClientError> {
        match self
            .client
            .read(NsRead::GetXattr {
                ino,
                name: name.to_string(),
            })
            .await?
        {
            NsReadReply::Xattr(v) => Ok(v),
            r => Err(unexpected(r)),
        }
    }

    pub async fn list_xattrs(self, ino: InodeId) -> Result<Vec<String>, ClientError> {
        match self.client.read(NsRead::ListXattr { ino }).await? {
            NsReadReply::XattrNames(v) => Ok(v),
            r => Err(unexpected(r)),
        }
    }

    pub async fn remove_xattr(self, ino: InodeId, name: &str) -> Result<(), ClientError> {
        self.client
            .write_ok(NsWrite::RemoveXattr {
                ino,
                name: name.to_string(),
            })
            .await
    }

    /// File `ino`'s whole content (its inline bytes, or every extent) and
    /// the inode version it belongs to (all pages read at one version).
    pub async fn content(self, ino: InodeId) -> Result<(FileContent, u64), ClientError> {
        'again: for _ in 0..EXTENT_LIST_TRIES {
            let mut extents: Vec<Extent> = Vec::new();
            let mut at_version = None;
            loop {
                let from = extents.last().map_or(0, |e| e.offset + e.len);
                match self
                    .client
                    .read(NsRead::GetContent {
                        ino,
                        from,
                        limit: EXTENT_PAGE,
                    })
                    .await?
                {
                    NsReadReply::Content {
                        inline,
                        extents: page,
                        more,
                        version,
                    } => {
                        if *at_version.get_or_insert(version) != version {
                            continue 'again;
                        }
                        if let Some(bytes) = inline {
                            let content = FileContent {
                                inline: Some(Bytes::from(bytes)),
                                extents: Vec::new(),
                            };
                            return Ok((content, version));
                        }
                        extents.extend(page);
                        if !more {
                            let content = FileContent {
                                inline: None,
                                extents,
                            };
                            return Ok((content, version));
                        }
                    }
                    r => return Err(unexpected(r)),
                }
            }
        }
        Err(ClientError::Changed { ino: ino.0 })
    }

    /// What an open for reading needs, in one round trip: `ino`'s
    /// attributes and, when that reply holds all of it (inline bytes, or
    /// at most one page of extents), the file's content, read at the
    /// version the attributes carry.
    pub async fn open(self, ino: InodeId) -> Result<(InodeAttr, Option<FileContent>), ClientError> {
        match self
            .client
            .read(NsRead::Open {
                ino,
                limit: EXTENT_PAGE,
            })
            .await?
        {
            NsReadReply::Opened { attr, content } => {
                let content = content.map(|(inline, extents)| FileContent {
                    inline: inline.map(Bytes::from),
                    extents,
                });
                Ok((attr, content))
            }
            r => Err(unexpected(r)),
        }
    }

    /// Chunk `id`, verified against its hash.
    pub async fn fetch_chunk(self, id: ChunkId) -> Result<Vec<u8>, ClientError> {
        tokio::spawn(self.client.inner.clone().fetch_chunk(id))
            .await
            .map_err(ClientError::Task)?
    }

    /// Bytes `start..start + len` of chunk `id`, verified against its hash
    /// without fetching the rest of the chunk.
    pub async fn fetch_chunk_range(
        self,
        id: ChunkId,
        start: u32,
        len: u32,
    ) -> Result<Vec<u8>, ClientError> {
        let inner = self.client.inner.clone();
        tokio::spawn(async move {
            inner.refresh_ring_if_stale().await;
            let servers = inner.ring.read_order(&id);
            download_range(
                &inner.pool,
                &inner.ring,
                &inner.suspects,
                servers,
                id,
                start,
                len,
            )
            .await
        })
        .await
        .map_err(ClientError::Task)?
    }

    /// Writes each `(offset, bytes)` part into file `ino`, which the
    /// caller expects to be `file_size` bytes long afterwards. A file that
    /// stays within [`MAX_INLINE`] keeps its bytes inline in metadata (one
    /// commit, no chunk upload). Otherwise the parts are chunked, stored on
    /// their owners (as many in flight as the upload concurrency allows),
    /// then committed in one metadata command, so readers see all of the
    /// parts or none; inline bytes the file had move into a chunk with
    /// them. Returns the new attributes.
    pub async fn write_parts(
        self,
        ino: InodeId,
        parts: &[(u64, Bytes)],
        file_size: u64,
    ) -> Result<InodeAttr, ClientError> {
        trace::operation(async {
            if file_size <= MAX_INLINE {
                let req = NsWrite::WriteInline {
                    ino,
                    parts: parts.iter().map(|(o, d)| (*o, d.to_vec())).collect(),
                };
                match self.client.write_attr(req).await {
                    Err(ClientError::Rpc(e)) if e.code == ErrorCode::NotInline => {}
                    done => return done,
                }
            }
            match self.write_parts_traced(ino, parts).await {
                Err(ClientError::Rpc(e)) if e.code == ErrorCode::InlineData => {}
                done => return done,
            }
            // The file keeps bytes inline that these parts do not cover:
            // store them along, under the parts (again if another client
            // rewrote them meanwhile).
            for _ in 0..INLINE_MOVE_TRIES {
                let (content, _) = self.content(ino).await?;
                let merged = match content.inline {
                    Some(inline) => under_parts(&inline, parts),
                    None => parts.to_vec(),
                };
                match self.write_parts_traced(ino, &merged).await {
                    Err(ClientError::Rpc(e)) if e.code == ErrorCode::InlineData => {}
                    done => return done,
                }
            }
            Err(ClientError::Changed { ino: ino.0 })
        })
        .await
    }

    async fn write_parts_traced(
        self,
        ino: InodeId,
        parts: &[(u64, Bytes)],
    ) -> Result<InodeAttr, ClientError> {
        self.client.wait_for_ring().await?;
        let started = std::time::Instant::now();
        // (file offset, the chunk's bytes: a view into its part, no copy)
        let mut pieces: Vec<(u64, Bytes)> = Vec::new();
        for (offset, data) in parts {
            for (start, len) in cut_points(data) {
                pieces.push((offset + start as u64, data.slice(start..start + len)));
            }
        }
        // Small pieces share a chunk (`pack`): one put for many scattered
        // writes.
        let lens: Vec<usize> = pieces.iter().map(|(_, b)| b.len()).collect();
        let packs: Vec<Vec<(u64, Bytes)>> = pack::groups(&lens)
            .into_iter()
            .map(|g| pieces[g].to_vec())
            .collect();
        let extents: Vec<Vec<Extent>> = stream::iter(packs)
            .map(|members| {
                let inner = self.client.inner.clone();
                async move {
                    let bytes = match &members[..] {
                        [(_, one)] => one.clone(),
                        many => {
                            let total = many.iter().map(|(_, b)| b.len()).sum();
                            let mut all = bytes::BytesMut::with_capacity(total);
                            for (_, b) in many {
                                all.extend_from_slice(b);
                            }
                            all.freeze()
                        }
                    };
                    let id = tokio::spawn(trace::scope(trace::current(), inner.store_chunk(bytes)))
                        .await
                        .map_err(ClientError::Task)??;
                    let mut chunk_offset = 0u64;
                    let extents = members
                        .iter()
                        .map(|(offset, b)| {
                            let e = Extent {
                                offset: *offset,
                                len: b.len() as u64,
                                chunk: id,
                                chunk_offset,
                            };
                            chunk_offset += b.len() as u64;
                            e
                        })
                        .collect();
                    Ok::<_, ClientError>(extents)
                }
            })
            .buffered(self.client.inner.config.upload_concurrency)
            .try_collect()
            .await?;
        let extents = extents.into_iter().flatten().collect();
        self.client
            .commit_in_time(started, NsWrite::WriteExtents { ino, extents })
            .await
    }

    /// Every entry of directory `ino`, in name order.
    pub async fn list(self, ino: InodeId) -> Result<Vec<DirEntry>, ClientError> {
        let mut out: Vec<DirEntry> = Vec::new();
        loop {
            let after = out.last().map(|e| e.name.clone());
            let (entries, more) = self.dir_page(ino, after, MAX_DIR_PAGE).await?;
            out.extend(entries);
            if !more {
                return Ok(out);
            }
        }
    }

    /// Up to `limit` entries of directory `ino` after the name `after`
    /// (from the first with `None`), in name order; the flag says whether
    /// more follow.
    pub async fn dir_page(
        self,
        ino: InodeId,
        after: Option<String>,
        limit: u32,
    ) -> Result<(Vec<DirEntry>, bool), ClientError> {
        match self
            .client
            .read(NsRead::ReadDir { ino, after, limit })
            .await?
        {
            NsReadReply::DirPage { entries, more } => Ok((entries, more)),
            r => Err(unexpected(r)),
        }
    }

    /// Entries of directory `ino` with their attributes, in name order, up
    /// to `max` of them; the flag says whether that was all of them.
    pub async fn list_plus(
        self,
        ino: InodeId,
        max: usize,
    ) -> Result<(Vec<DirEntryPlus>, bool), ClientError> {
        let mut out: Vec<DirEntryPlus> = Vec::new();
        let mut after = None;
        loop {
            let room = max.saturating_sub(out.len());
            if room == 0 {
                return Ok((out, false));
            }
            let limit = MAX_DIR_PLUS_PAGE.min(u32::try_from(room).unwrap_or(u32::MAX));
            let page = self.dir_plus_page(ino, after, limit).await?;
            out.extend(page.entries);
            match page.next {
                None => return Ok((out, true)),
                Some(last) => after = Some(last),
            }
        }
    }

    /// Up to `limit` entries of directory `ino` after the name `after`,
    /// each with its attributes (see [`DirPlusPage`]).
    pub async fn dir_plus_page(
        self,
        ino: InodeId,
        after: Option<String>,
        limit: u32,
    ) -> Result<DirPlusPage, ClientError> {
        match self
            .client
            .read(NsRead::ReadDirPlus { ino, after, limit })
            .await?
        {
            NsReadReply::DirPlusPage {
                entries,
                more,
                last,
            } => {
                if more && last.is_none() {
                    return Err(ClientError::Protocol(
                        "a directory page with more to come named no last entry".into(),
                    ));
                }
                Ok(DirPlusPage {
                    entries,
                    next: last.filter(|_| more),
                })
            }
            r => Err(unexpected(r)),
        }
    }
}

/// One page of a directory listing with attributes.
pub struct DirPlusPage {
    /// In name order.
    pub entries: Vec<DirEntryPlus>,
    /// Where the next page starts (the page's last name; it may be past
    /// the last entry, whose inode vanished as it was read), or `None`
    /// when this page ends the directory.
    pub next: Option<String>,
}
