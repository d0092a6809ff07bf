//! Identifiers shared by every service.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A chunk's name: the BLAKE3 hash of its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    /// Hashes `data` into its chunk id.
    pub fn of(data: &[u8]) -> Self {
        ChunkId(*blake3::hash(data).as_bytes())
    }

    /// True when `data` hashes to this id.
    pub fn matches(&self, data: &[u8]) -> bool {
        // blake3::Hash compares in constant time; speed is what matters here,
        // but it costs nothing.
        blake3::Hash::from(self.0) == blake3::hash(data)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The ring position of this chunk: its first 8 bytes, big-endian.
    pub fn ring_point(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(b)
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId({})", &self.to_hex()[..16])
    }
}

/// Error parsing a [`ChunkId`] from hex.
#[derive(Debug, thiserror::Error)]
#[error("invalid chunk id {0:?}: expected 64 hex digits")]
pub struct ParseChunkIdError(String);

impl FromStr for ChunkId {
    type Err = ParseChunkIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ParseChunkIdError(s.to_owned()))?;
        Ok(ChunkId(out))
    }
}

/// An inode number. The root directory is [`InodeId::ROOT`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Debug)]
pub struct InodeId(pub u64);

impl InodeId {
    pub const ROOT: InodeId = InodeId(1);
}

impl fmt::Display for InodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A server's id: metadata nodes and chunkservers each number their own.
pub type NodeId = u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_id_hex_round_trip() {
        let id = ChunkId::of(b"hello");
        let parsed: ChunkId = id.to_hex().parse().expect("hex parses");
        assert_eq!(parsed, id);
        assert!(id.matches(b"hello"));
        assert!(!id.matches(b"hellO"));
        assert!("zz".parse::<ChunkId>().is_err());
    }
}
