//! Verified byte ranges of a chunk (BLAKE3 verified streaming, the `bao`
//! format): the server sends the requested bytes together with the BLAKE3
//! tree nodes that link them to the chunk id, so a reader checks a 4 KiB
//! read against the id without fetching the whole chunk. The tree (the
//! "outboard", about 1/16 of the chunk) is derived from the chunk bytes.

use std::io::{Cursor, Read, Seek};

use crate::ChunkId;

/// The chunk's outboard tree, and the id the bytes hash to (the caller
/// compares it with the id it expects).
pub fn outboard(data: &[u8]) -> (Vec<u8>, ChunkId) {
    let (tree, hash) = bao::encode::outboard(data);
    (tree, ChunkId(*hash.as_bytes()))
}

/// The verifiable slice of `data` covering `start..start + len` (clipped
/// to the chunk), given its outboard tree.
pub fn extract(data: &[u8], tree: &[u8], start: u64, len: u64) -> std::io::Result<Vec<u8>> {
    extract_from(Cursor::new(data), tree, start, len)
}

/// As [`extract`], reading the chunk bytes from `data` (a file: only the
/// 1 KiB leaves the range touches are read).
pub fn extract_from<R: Read + Seek>(
    data: R,
    tree: &[u8],
    start: u64,
    len: u64,
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    bao::encode::SliceExtractor::new_outboard(data, Cursor::new(tree), start, len)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// Checks `slice` against chunk `id` and returns the content bytes of
/// `start..start + len` it carries (fewer at the chunk's end). Fails if a
/// single bit does not match.
pub fn verify(slice: &[u8], id: &ChunkId, start: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let hash = bao::Hash::from(id.0);
    let mut out = Vec::with_capacity(len.min(slice.len() as u64) as usize);
    bao::decode::SliceDecoder::new(slice, &hash, start, len).read_to_end(&mut out)?;
    Ok(out)
}

/// Largest slice a server may send for a range of `len` bytes: the 8-byte
/// length header, the 1 KiB leaves the range touches (one more at each end
/// when it is not aligned), a 64-byte parent node above every leaf but one
/// inside the range, and the parent nodes on the two paths from the root
/// down to its ends (a tree over a chunk is far less than 64 levels deep).
pub fn max_slice_len(len: u64) -> u64 {
    const LEAF: u64 = 1024;
    const NODE: u64 = 64;
    let leaves = len.div_ceil(LEAF) + 2;
    8 + leaves * LEAF + (leaves + 2 * 64) * NODE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn slices_verify_against_the_chunk_id_and_carry_the_range() {
        let d = data(1_300_000);
        let (tree, id) = outboard(&d);
        assert_eq!(id, ChunkId::of(&d));
        let ranges = [
            (0u64, 4096u64),
            (777_777, 4096),
            (1_299_000, 4096),
            (5, 1),
            // Long ranges carry a parent node per leaf inside them.
            (0, 131_072),
            (1023, 131_072),
            (500_001, 262_145),
            (0, 1_300_000),
            (1, 1_299_999),
        ];
        for (start, len) in ranges {
            let slice = extract(&d, &tree, start, len).unwrap();
            assert!(
                slice.len() as u64 <= max_slice_len(len),
                "a slice of {len} bytes at {start} is {} bytes, more than {}",
                slice.len(),
                max_slice_len(len)
            );
            let got = verify(&slice, &id, start, len).unwrap();
            let end = (start + len).min(d.len() as u64);
            assert_eq!(got, d[start as usize..end as usize]);
        }
    }

    #[test]
    fn a_flipped_bit_or_a_wrong_id_is_refused() {
        let d = data(200_000);
        let (tree, id) = outboard(&d);
        let slice = extract(&d, &tree, 100_000, 4096).unwrap();
        for i in [8, slice.len() / 2, slice.len() - 1] {
            let mut bad = slice.clone();
            bad[i] ^= 1;
            assert!(verify(&bad, &id, 100_000, 4096).is_err(), "flip at {i}");
        }
        // The 8-byte length header is checked through the tree's shape and
        // the last leaf: a change that keeps both may pass, but whatever
        // passes is still the true content.
        for i in 0..8 {
            let mut bad = slice.clone();
            bad[i] ^= 1;
            if let Ok(got) = verify(&bad, &id, 100_000, 4096) {
                assert_eq!(got, d[100_000..104_096], "header flip at {i}");
            }
        }
        let other = ChunkId::of(b"other");
        assert!(verify(&slice, &other, 100_000, 4096).is_err());
        // A slice for another range does not pass as this one.
        assert!(verify(&slice, &id, 0, 4096).is_err());
    }
}
