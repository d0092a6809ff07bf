//! Which directories and names a metadata request changes, so a client
//! can keep what it knows of them fresh without asking again.
//!
//! After a program creates or removes a name, the kernel marks the
//! directory's attributes stale and asks for them at its next permission
//! check: one more round trip per create or unlink. Metadata answers each
//! change to a directory's entries with the directory's attributes after
//! the change ([`NsWriteReply::Done`]), and the client answers that
//! question itself (see `Client::changed_dir_attr`).
//!
//! [`NsWriteReply::Done`]: crate::meta_rpc::NsWriteReply::Done

use crate::meta_rpc::{NsWrite, RenameMode};
use crate::InodeId;

/// What else a request may change that a client's copy of directory
/// attributes would then show wrongly.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stales {
    /// Nothing beyond [`NsWrite::changed_dirs`].
    Nothing,
    /// Inode `ino`'s own attributes (mode, owner, times, xattrs).
    Inode(InodeId),
    /// Attributes of inodes the request does not name (a renamed or
    /// removed directory): drop every copy.
    All,
}

/// A name this request adds to or removes from a directory, once applied.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum NameChange {
    Added { dir: InodeId, name: String },
    Removed { dir: InodeId, name: String },
}

impl NsWrite {
    /// The names this request adds and removes when it is applied (a
    /// rename removes its source and adds its target; an exchange leaves
    /// both names in place).
    pub fn name_changes(&self) -> Vec<NameChange> {
        use NsWrite as Q;
        let added = |dir: &InodeId, name: &String| NameChange::Added {
            dir: *dir,
            name: name.clone(),
        };
        let removed = |dir: &InodeId, name: &String| NameChange::Removed {
            dir: *dir,
            name: name.clone(),
        };
        match self {
            Q::Mkdir { parent, name, .. }
            | Q::CommitFile { parent, name, .. }
            | Q::CommitObject { parent, name, .. }
            | Q::CreateFile { parent, name, .. }
            | Q::CreateWith { parent, name, .. }
            | Q::Mknod { parent, name, .. }
            | Q::Symlink { parent, name, .. } => vec![added(parent, name)],
            Q::Link {
                new_parent,
                new_name,
                ..
            } => vec![added(new_parent, new_name)],
            Q::Unlink { parent, name } | Q::Rmdir { parent, name } => {
                vec![removed(parent, name)]
            }
            Q::Rename {
                mode: RenameMode::Exchange,
                ..
            } => Vec::new(),
            Q::Rename {
                parent,
                name,
                new_parent,
                new_name,
                ..
            } => vec![removed(parent, name), added(new_parent, new_name)],
            _ => Vec::new(),
        }
    }

    /// The names this request removes or replaces (the inodes behind them
    /// lose a link or, renamed, change their ctime), each with its
    /// directory.
    pub fn removed_or_replaced(&self) -> Vec<(InodeId, &str)> {
        use NsWrite as Q;
        match self {
            Q::Unlink { parent, name }
            | Q::Rmdir { parent, name }
            | Q::CommitFile { parent, name, .. }
            | Q::CommitObject { parent, name, .. } => vec![(*parent, name.as_str())],
            Q::Rename {
                parent,
                name,
                new_parent,
                new_name,
                ..
            } => vec![(*parent, name.as_str()), (*new_parent, new_name.as_str())],
            _ => Vec::new(),
        }
    }

    /// The directories whose entries this request adds, removes or moves
    /// (at most two; the same one once); metadata answers their
    /// attributes after the change.
    pub fn changed_dirs(&self) -> Vec<InodeId> {
        use NsWrite as Q;
        match self {
            Q::Mkdir { parent, .. }
            | Q::Unlink { parent, .. }
            | Q::Rmdir { parent, .. }
            | Q::CommitFile { parent, .. }
            | Q::CommitObject { parent, .. }
            | Q::CreateFile { parent, .. }
            | Q::CreateWith { parent, .. }
            | Q::Mknod { parent, .. }
            | Q::Symlink { parent, .. } => vec![*parent],
            Q::Link { new_parent, .. } => vec![*new_parent],
            Q::Rename {
                parent, new_parent, ..
            } => {
                if parent == new_parent {
                    vec![*parent]
                } else {
                    vec![*parent, *new_parent]
                }
            }
            _ => Vec::new(),
        }
    }

    /// What else the request changes; see [`Stales`].
    pub fn stales(&self) -> Stales {
        use NsWrite as Q;
        match self {
            // A rename changes the moved entry's ctime (and a moved
            // directory's parent link) and may replace a directory; a
            // removed directory is gone. Neither is named here.
            Q::Rename { .. } | Q::Rmdir { .. } => Stales::All,
            Q::SetAttr { ino, .. }
            | Q::SetXattr { ino, .. }
            | Q::RemoveXattr { ino, .. }
            | Q::WriteExtents { ino, .. }
            | Q::WriteInline { ino, .. }
            | Q::Link { ino, .. } => Stales::Inode(*ino),
            // Creates touch only the new inode and the parent; an unlinked
            // name is never a directory; the rest change no inode.
            _ => Stales::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta_rpc::Owner;

    fn owner() -> Owner {
        Owner {
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }

    #[test]
    fn creates_and_removes_change_their_parent_only() {
        let create = NsWrite::CreateFile {
            parent: InodeId(7),
            name: "a".into(),
            owner: owner(),
        };
        assert_eq!(create.changed_dirs(), vec![InodeId(7)]);
        assert_eq!(create.stales(), Stales::Nothing);
        let unlink = NsWrite::Unlink {
            parent: InodeId(7),
            name: "a".into(),
        };
        assert_eq!(unlink.changed_dirs(), vec![InodeId(7)]);
        assert_eq!(unlink.stales(), Stales::Nothing);
        assert_eq!(
            create.name_changes(),
            vec![NameChange::Added {
                dir: InodeId(7),
                name: "a".into()
            }]
        );
        assert_eq!(
            unlink.name_changes(),
            vec![NameChange::Removed {
                dir: InodeId(7),
                name: "a".into()
            }]
        );
    }

    #[test]
    fn renames_name_both_parents_once_and_stale_everything() {
        let rename = |a: u64, b: u64| NsWrite::Rename {
            parent: InodeId(a),
            name: "a".into(),
            new_parent: InodeId(b),
            new_name: "b".into(),
            mode: RenameMode::Replace,
        };
        assert_eq!(rename(3, 3).changed_dirs(), vec![InodeId(3)]);
        assert_eq!(rename(3, 4).changed_dirs(), vec![InodeId(3), InodeId(4)]);
        assert_eq!(rename(3, 4).stales(), Stales::All);
        assert_eq!(
            rename(3, 4).name_changes(),
            vec![
                NameChange::Removed {
                    dir: InodeId(3),
                    name: "a".into()
                },
                NameChange::Added {
                    dir: InodeId(4),
                    name: "b".into()
                }
            ]
        );
        let exchange = NsWrite::Rename {
            parent: InodeId(3),
            name: "a".into(),
            new_parent: InodeId(4),
            new_name: "b".into(),
            mode: RenameMode::Exchange,
        };
        assert!(exchange.name_changes().is_empty());
        assert_eq!(
            exchange.removed_or_replaced(),
            vec![(InodeId(3), "a"), (InodeId(4), "b")]
        );
    }

    #[test]
    fn attribute_changes_stale_their_inode_and_reservations_nothing() {
        let set = NsWrite::SetXattr {
            ino: InodeId(9),
            name: "user.a".into(),
            value: vec![1],
            mode: Default::default(),
        };
        assert!(set.changed_dirs().is_empty());
        assert_eq!(set.stales(), Stales::Inode(InodeId(9)));
        let reserve = NsWrite::ReserveInodes { count: 8 };
        assert!(reserve.changed_dirs().is_empty());
        assert_eq!(reserve.stales(), Stales::Nothing);
    }
}
