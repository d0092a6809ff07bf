//! The `Filesystem` operations, grouped by what they act on; the trait
//! implementation in `filesystem.rs` hands each request to one of these.

pub(super) mod dir;
pub(super) mod entry;
pub(super) mod file;
pub(super) mod xattr;
