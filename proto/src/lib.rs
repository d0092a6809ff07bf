//! cairn-proto: what every Cairn process shares on the wire, and no IO.
//!
//! Owns the ids ([`ChunkId`], [`InodeId`], [`NodeId`]), the requests and
//! replies of each service ([`meta_rpc`], grouped by service, and
//! [`chunk_rpc`]), the cluster's placement state ([`cluster_map`]), the
//! stable error codes ([`error`]), who a peer is ([`identity`]) and what it
//! may call ([`access`]), the framing of one request per stream
//! ([`frame`]), path-component validation ([`path`]), the pure placement
//! ring ([`ring`]), which client, chunkservers and metadata must all
//! compute identically, and the garbage-collection rule ([`gc_rule`]).
//!
//! It depends on nothing of ours and must stay that way: client and servers
//! both link it, and it must never pull in RocksDB, fuser or the transport
//! (`cairn-net` holds QUIC, TLS and the connection pool).

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
pub mod identity;
pub mod ids;
pub mod inode;
pub mod meta_rpc;
pub mod path;
pub mod ring;
pub mod runtime;
pub mod status;
pub mod trace;

pub use error::{ErrorCode, RpcError};
pub use ids::{ChunkId, InodeId, NodeId};

/// ALPN protocol id; a peer speaking another version fails the TLS handshake,
/// so the protocol version is checked once, when the connection opens.
pub const ALPN: &[u8] = b"cairn/5";

/// Version byte carried by every frame header (see [`frame`]).
pub const FRAME_VERSION: u8 = 1;
