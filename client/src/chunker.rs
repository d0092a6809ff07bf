//! Content-defined chunking (FastCDC 2020) of a byte stream.
//!
//! Boundaries depend on content, not offsets, so an insertion early in a
//! file shifts only the chunks around it and identical data dedups across
//! files and versions.

use fastcdc::v2020::AsyncStreamCDC;
use tokio::io::AsyncRead;

/// Smallest chunk (except a file's last).
pub const MIN_CHUNK: usize = 256 << 10;
/// Target average chunk.
pub const AVG_CHUNK: usize = 1 << 20;
/// Largest chunk.
pub const MAX_CHUNK: usize = 4 << 20;

/// A chunker over `reader` with Cairn's sizes. Holds one `MAX_CHUNK` buffer.
pub fn chunker<R: AsyncRead + Unpin>(reader: R) -> AsyncStreamCDC<R> {
    AsyncStreamCDC::new(reader, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
}

/// Cuts `data` (in memory) into chunks; returns (offset, length) pairs.
/// The same cut points as [`chunker`] on the same bytes.
pub fn cut_points(data: &[u8]) -> Vec<(usize, usize)> {
    fastcdc::v2020::FastCDC::new(data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
        .map(|c| (c.offset, c.length))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, seed: u64) -> Vec<u8> {
        let mut v = vec![0u8; n];
        rand::rngs::StdRng::seed_from_u64(seed).fill(&mut v[..]);
        v
    }

    #[tokio::test]
    async fn streaming_matches_in_memory_and_bounds_sizes() {
        let data = random(12 << 20, 1);
        let mut cdc = chunker(&data[..]);
        let chunks: Vec<_> = cdc.as_stream().map(|c| c.unwrap()).collect().await;
        let pts: Vec<_> = chunks
            .iter()
            .map(|c| (c.offset as usize, c.length))
            .collect();
        assert_eq!(pts, cut_points(&data));
        let total: usize = chunks.iter().map(|c| c.length).sum();
        assert_eq!(total, data.len());
        for c in &chunks[..chunks.len() - 1] {
            assert!((MIN_CHUNK..=MAX_CHUNK).contains(&c.length), "{}", c.length);
        }
    }

    #[test]
    fn insertion_shifts_few_chunks() {
        let a = random(16 << 20, 2);
        let mut b = a.clone();
        b.splice(1000..1000, [7u8; 100]);
        let ids = |d: &[u8]| -> std::collections::HashSet<_> {
            cut_points(d)
                .into_iter()
                .map(|(o, l)| blake3::hash(&d[o..o + l]))
                .collect()
        };
        let (ia, ib) = (ids(&a), ids(&b));
        let shared = ia.intersection(&ib).count();
        assert!(
            shared + 2 >= ia.len(),
            "only {shared} of {} chunks shared",
            ia.len()
        );
    }

    #[tokio::test]
    async fn empty_input_has_no_chunks() {
        let mut cdc = chunker(&[][..]);
        assert_eq!(cdc.as_stream().count().await, 0);
    }
}
