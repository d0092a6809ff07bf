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

/// Largest slice a server may send for a range of `len` bytes: the bytes
/// plus the tree nodes on the way to them (two 1 KiB leaves of slack and a
/// generous bound on the nodes).
pub fn max_slice_len(len: u64) -> u64 {
    len + 2048 + 64 * 64 + 8
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
        for (start, len) in [(0u64, 4096u64), (777_777, 4096), (1_299_000, 4096), (5, 1)] {
            let slice = extract(&d, &tree, start, len).unwrap();
            assert!(slice.len() as u64 <= max_slice_len(len));
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
