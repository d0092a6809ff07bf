//! Answering namespace reads ([`NsRead`]): one rule for the group — a
//! read barrier first unless a follower read was allowed — then the
//! namespace's query, over a view of one applied state: a query reads
//! several records (a file's version, then its extents), and a command
//! applied between them would mix two versions in one answer.

use cairn_proto::meta_rpc::{FileKind, NsRead, NsReadReply};
use cairn_proto::RpcError;

use super::{ns_err, MetaService};
use crate::kv::KvRead;
use crate::namespace;

impl MetaService {
    pub(super) async fn ns_read(&self, r: NsRead, stale_ok: bool) -> Result<NsReadReply, RpcError> {
        self.read_barrier(stale_ok).await?;
        answer(&self.kv.view(), r)
    }
}

/// `r`'s answer from `kv`, which must not change while it is read (see
/// the module comment).
fn answer(kv: &impl KvRead, r: NsRead) -> Result<NsReadReply, RpcError> {
    Ok(match r {
        NsRead::Lookup { parent, name } => {
            NsReadReply::Attr(namespace::lookup(kv, parent, &name).map_err(ns_err)?)
        }
        NsRead::ResolvePath { path } => {
            NsReadReply::Attr(namespace::resolve_path(kv, &path).map_err(ns_err)?)
        }
        NsRead::GetAttr { ino } => NsReadReply::Attr(namespace::get_attr(kv, ino).map_err(ns_err)?),
        NsRead::ReadDir { ino, after, limit } => {
            let (entries, more) =
                namespace::read_dir(kv, ino, after.as_deref(), limit).map_err(ns_err)?;
            NsReadReply::DirPage { entries, more }
        }
        NsRead::ReadDirPlus { ino, after, limit } => {
            let (entries, more, last) =
                namespace::read_dir_plus(kv, ino, after.as_deref(), limit).map_err(ns_err)?;
            NsReadReply::DirPlusPage {
                entries,
                more,
                last,
            }
        }
        NsRead::GetExtents { ino, from, limit } => {
            let (extents, more, version) =
                namespace::extents(kv, ino, from, limit).map_err(ns_err)?;
            NsReadReply::Extents {
                extents,
                more,
                version,
            }
        }
        NsRead::GetContent { ino, from, limit } => {
            let (inline, extents, more, version) =
                namespace::content(kv, ino, from, limit).map_err(ns_err)?;
            NsReadReply::Content {
                inline,
                extents,
                more,
                version,
            }
        }
        NsRead::ReadLink { ino } => {
            NsReadReply::SymlinkTarget(namespace::read_link(kv, ino).map_err(ns_err)?)
        }
        NsRead::GetXattr { ino, name } => {
            NsReadReply::Xattr(namespace::get_xattr(kv, ino, &name).map_err(ns_err)?)
        }
        NsRead::ListXattr { ino } => {
            NsReadReply::XattrNames(namespace::list_xattrs(kv, ino).map_err(ns_err)?)
        }
        NsRead::Open { ino, limit } => {
            let attr = namespace::get_attr(kv, ino).map_err(ns_err)?;
            let content = match attr.kind {
                FileKind::File => {
                    match namespace::content_of(kv, &attr, 0, limit).map_err(ns_err)? {
                        (_, _, true, _) => None,
                        (inline, extents, false, _) => Some((inline, extents)),
                    }
                }
                _ => None,
            };
            NsReadReply::Opened { attr, content }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use cairn_proto::meta_rpc::{Extent, InodeAttr, NsWrite, Owner};
    use cairn_proto::{ChunkId, InodeId};

    use super::*;
    use crate::apply::apply_one;
    use crate::command::Command;
    use crate::db::{open, RocksKv};
    use crate::kv::Txn;

    /// Version `v` of the file: `1 + v % 5` extents of `100 + v` bytes,
    /// each naming a chunk of its own.
    fn extents_of(v: u64) -> Vec<Extent> {
        let len = 100 + v;
        (0..1 + v % 5)
            .map(|i| Extent {
                offset: i * len,
                len,
                chunk: ChunkId::of(format!("{v}/{i}").as_bytes()),
                chunk_offset: 0,
            })
            .collect()
    }

    fn commit(kv: &RocksKv, v: u64) {
        let extents = extents_of(v);
        let size = extents.last().map_or(0, |e| e.offset + e.len);
        let cmd = Command::Ns {
            write: NsWrite::CommitFile {
                parent: InodeId::ROOT,
                name: "f".into(),
                extents,
                size,
                owner: Owner {
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                },
            },
            now_ns: v as i64,
        };
        let mut t = Txn::new(kv);
        apply_one(&mut t, &cmd).unwrap().unwrap();
        kv.commit(t.into_writes(), |_| Ok(())).unwrap();
    }

    /// A store holding the root and file "f" at version `v`, with the
    /// file's attributes.
    fn store_with_file(v: u64) -> (tempfile::TempDir, RocksKv, InodeAttr) {
        let dir = tempfile::tempdir().unwrap();
        let kv = RocksKv {
            db: open(dir.path()).unwrap(),
        };
        let mut t = Txn::new(&kv);
        namespace::ensure_root(&mut t).unwrap();
        kv.commit(t.into_writes(), |_| Ok(())).unwrap();
        commit(&kv, v);
        let lookup = NsRead::Lookup {
            parent: InodeId::ROOT,
            name: "f".into(),
        };
        let Ok(NsReadReply::Attr(f)) = answer(&kv.view(), lookup) else {
            panic!("a lookup answers attributes")
        };
        (dir, kv, f)
    }

    /// An open answers a file's attributes with all of its extents when
    /// they fit the limit asked, with none when they do not, and a
    /// directory's attributes alone.
    #[test]
    fn an_open_answers_attributes_and_content_that_fits() {
        let (_dir, kv, f) = store_with_file(3);
        let opened = |ino, limit| answer(&kv.view(), NsRead::Open { ino, limit }).unwrap();
        assert_eq!(
            opened(f.ino, 10),
            NsReadReply::Opened {
                attr: f.clone(),
                content: Some((None, extents_of(3))),
            }
        );
        assert_eq!(
            opened(f.ino, 3),
            NsReadReply::Opened {
                attr: f,
                content: None,
            }
        );
        let NsReadReply::Opened { attr, content } = opened(InodeId::ROOT, 10) else {
            panic!("an open answers Opened")
        };
        assert_eq!((attr.kind, content), (FileKind::Dir, None));
    }

    /// While commands replace a file again and again, every answer to a
    /// content read names the extents of the version it reports: never
    /// one version's number with another's extents.
    #[test]
    fn a_read_racing_applies_sees_one_version() {
        let (_dir, kv, attr) = store_with_file(1);
        let done = AtomicBool::new(false);
        let deadline = Instant::now() + Duration::from_secs(20);
        let reads = std::thread::scope(|s| {
            s.spawn(|| {
                for v in 2..=4_000 {
                    if Instant::now() > deadline {
                        break;
                    }
                    commit(&kv, v);
                }
                done.store(true, Ordering::SeqCst);
            });
            let mut reads = 0u64;
            while !done.load(Ordering::SeqCst) {
                let read = NsRead::GetContent {
                    ino: attr.ino,
                    from: 0,
                    limit: 100,
                };
                let Ok(NsReadReply::Content {
                    extents, version, ..
                }) = answer(&kv.view(), read)
                else {
                    panic!("the file reads")
                };
                assert_eq!(
                    extents,
                    extents_of(version),
                    "version {version} answered with another version's extents"
                );
                reads += 1;
            }
            reads
        });
        assert!(reads > 0, "no read overlapped the applies");
    }
}
