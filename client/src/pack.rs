//! Small pieces of one write packed into shared chunks.
//!
//! A flush of scattered small writes (a database page here, a log record
//! there) is many dirty ranges, each smaller than the chunker's smallest
//! chunk. Stored one chunk each, a flush of 32 random 4 KiB writes is 32
//! chunk puts, each with its fsyncs on every synchronous copy. Packed, it
//! is one put: the pieces' bytes laid end to end in one chunk, each piece
//! an extent naming its place in it (`chunk_offset`). Pieces of a
//! chunker's size keep a chunk of their own, so large writes still
//! deduplicate by content.

use std::ops::Range;

/// A piece shorter than this is packed with its neighbours.
pub const PACK_BELOW: usize = crate::chunker::MIN_CHUNK;
/// The most bytes one packed chunk holds.
pub const PACK_MAX: usize = crate::chunker::MAX_CHUNK;

/// Groups pieces of the lengths `lens` (in file order) into chunks: each
/// group is a range of consecutive pieces, in order, covering all of
/// them. A piece of [`PACK_BELOW`] bytes or more is a group of its own;
/// smaller neighbours share a group while their total stays within
/// [`PACK_MAX`].
pub fn groups(lens: &[usize]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0usize;
    for (i, &len) in lens.iter().enumerate() {
        let small = len < PACK_BELOW;
        let open = start < i;
        if open && (!small || bytes + len > PACK_MAX) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        if small {
            bytes += len;
        } else {
            out.push(i..i + 1);
            start = i + 1;
        }
    }
    if start < lens.len() {
        out.push(start..lens.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const K4: usize = 4 << 10;

    #[test]
    fn thirty_two_small_writes_are_one_chunk() {
        assert_eq!(groups(&[K4; 32]), vec![0..32]);
    }

    #[test]
    fn a_chunk_sized_piece_keeps_its_own_chunk_between_packed_neighbours() {
        assert_eq!(
            groups(&[K4, K4, PACK_BELOW, K4, 1 << 20, 100]),
            vec![0..2, 2..3, 3..4, 4..5, 5..6]
        );
    }

    #[test]
    fn a_pack_closes_before_it_would_pass_the_largest_chunk() {
        let len = PACK_BELOW - 1;
        let per_pack = PACK_MAX / len;
        let n = per_pack * 2 + 1;
        let got = groups(&vec![len; n]);
        assert_eq!(
            got,
            vec![0..per_pack, per_pack..2 * per_pack, 2 * per_pack..n]
        );
    }

    proptest! {
        /// Groups cover every piece once, in order; a group of several
        /// holds only small pieces within the largest chunk; a large piece
        /// is alone.
        #[test]
        fn groups_cover_in_order_and_stay_bounded(
            lens in proptest::collection::vec(
                prop_oneof![1usize..PACK_BELOW, PACK_BELOW..PACK_MAX + 1], 0..200)
        ) {
            let got = groups(&lens);
            let mut next = 0;
            for g in &got {
                prop_assert_eq!(g.start, next);
                prop_assert!(g.end > g.start);
                if g.len() > 1 {
                    prop_assert!(lens[g.clone()].iter().all(|&l| l < PACK_BELOW));
                    prop_assert!(lens[g.clone()].iter().sum::<usize>() <= PACK_MAX);
                }
                next = g.end;
            }
            prop_assert_eq!(next, lens.len());
            // Neighbouring small groups could not have been one.
            for w in got.windows(2) {
                let (a, b) = (&w[0], &w[1]);
                let small = |g: &Range<usize>| lens[g.clone()].iter().all(|&l| l < PACK_BELOW);
                if small(a) && small(b) {
                    let total: usize = lens[a.start..b.end].iter().sum();
                    prop_assert!(total > PACK_MAX, "{:?} and {:?} fit together", a, b);
                }
            }
        }
    }
}
