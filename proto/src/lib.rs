//! cairn-proto: what every Cairn process shares on the wire.
//!
//! Owns the ids ([`ChunkId`], [`InodeId`], [`NodeId`]), the requests and
//! replies of each service ([`meta_rpc`], grouped by service, and
//! [`chunk_rpc`]), the cluster's placement state ([`cluster_map`]), the stable error
//! codes ([`error`]), who may call what ([`access`]), the framing of one request per bidirectional QUIC
//! stream ([`frame`], [`net`]), the TLS helpers ([`tls`]), path-component
//! validation ([`path`]) and the pure placement ring ([`ring`]), which client,
//! chunkservers and metadata must all compute identically.
//!
//! It depends on nothing of ours and must stay that way: client and servers
//! both link it, and it must never pull in RocksDB or fuser.

pub mod access;
pub mod chunk_rpc;
pub mod chunk_slice;
pub mod cluster_map;
pub mod crash;
pub mod dir_changes;
pub mod disk_space;
pub mod error;
pub mod frame;
pub mod gc_rule;
pub mod ids;
pub mod inode;
pub mod leader;
pub mod live_cert;
pub mod meta_rpc;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod net;
pub mod path;
pub mod ring;
pub mod runtime;
pub mod status;
pub mod tls;
pub mod trace;

pub use error::{ErrorCode, RpcError};
pub use ids::{ChunkId, InodeId, NodeId};

/// ALPN protocol id; a peer speaking another version fails the TLS handshake,
/// so the protocol version is checked once, when the connection opens.
pub const ALPN: &[u8] = b"cairn/5";

/// Version byte carried by every frame header (see [`frame`]).
pub const FRAME_VERSION: u8 = 1;
