//! cairn-client: the library applications use to talk to a Cairn cluster.
//!
//! Owns connecting and leader discovery (via cairn-proto's
//! [`MetaCaller`](cairn_net::meta_caller::MetaCaller)), content-defined chunking
//! ([`chunker`]), placement from the cached ring ([`placement`]), chunk
//! upload and verified download ([`chunk_io`]), and the path-based file API
//! ([`Client`]). Depends on cairn-proto only: never links RocksDB or fuser.

pub mod chunk_io;
pub mod chunker;
pub mod client;
pub mod config;
pub mod dir_attrs;
pub mod error;
pub mod inline;
pub mod pack;
pub mod placement;
pub mod stitch;

pub use client::{ChangeWatch, Client, DirPlusPage, FileContent, Inodes, ServerGc};
pub use config::ClientConfig;
pub use error::ClientError;
