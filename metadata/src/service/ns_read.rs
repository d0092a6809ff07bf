//! Answering namespace reads ([`NsRead`]): one rule for the group — a
//! read barrier first unless a follower read was allowed — then the
//! namespace's query.

use cairn_proto::meta_rpc::{NsRead, NsReadReply};
use cairn_proto::RpcError;

use super::{ns_err, MetaService};
use crate::namespace;

impl MetaService {
    pub(super) async fn ns_read(&self, r: NsRead, stale_ok: bool) -> Result<NsReadReply, RpcError> {
        self.read_barrier(stale_ok).await?;
        let kv = &self.kv;
        Ok(match r {
            NsRead::Lookup { parent, name } => {
                NsReadReply::Attr(namespace::lookup(kv, parent, &name).map_err(ns_err)?)
            }
            NsRead::ResolvePath { path } => {
                NsReadReply::Attr(namespace::resolve_path(kv, &path).map_err(ns_err)?)
            }
            NsRead::GetAttr { ino } => {
                NsReadReply::Attr(namespace::get_attr(kv, ino).map_err(ns_err)?)
            }
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
        })
    }
}
