//! Files made of other files' chunks, without moving a byte: a byte range
//! of a file's extents ([`slice`]) and files laid end to end
//! ([`concat`]). Pure; the S3 gateway's copies and multipart completes
//! commit the result (`Client::commit_extents`), which references the
//! same chunks again.

use cairn_proto::meta_rpc::Extent;

/// The extents covering bytes `start..end` of a file laid out as
/// `extents`, moved to begin at offset 0. Holes stay holes.
pub fn slice(extents: &[Extent], start: u64, end: u64) -> Vec<Extent> {
    extents
        .iter()
        .filter_map(|e| {
            let s = e.offset.max(start);
            let t = (e.offset + e.len).min(end);
            (s < t).then(|| Extent {
                offset: s - start,
                len: t - s,
                chunk: e.chunk,
                chunk_offset: e.chunk_offset + (s - e.offset),
            })
        })
        .collect()
}

/// Files `(extents, size)` one after the other: their extents moved past
/// the sizes before them, and the total size.
pub fn concat<I>(parts: I) -> (Vec<Extent>, u64)
where
    I: IntoIterator<Item = (Vec<Extent>, u64)>,
{
    let mut out = Vec::new();
    let mut at = 0u64;
    for (extents, size) in parts {
        out.extend(extents.into_iter().map(|e| Extent {
            offset: e.offset + at,
            ..e
        }));
        at += size;
    }
    (out, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_proto::ChunkId;

    fn e(offset: u64, len: u64, c: u8, chunk_offset: u64) -> Extent {
        Extent {
            offset,
            len,
            chunk: ChunkId([c; 32]),
            chunk_offset,
        }
    }

    /// The bytes a layout stands for, each chunk's byte i being
    /// `chunk + i` (holes zero).
    fn bytes(extents: &[Extent], size: u64) -> Vec<u8> {
        let mut out = vec![0u8; size as usize];
        for x in extents {
            for i in 0..x.len {
                out[(x.offset + i) as usize] =
                    x.chunk.0[0].wrapping_add((x.chunk_offset + i) as u8);
            }
        }
        out
    }

    #[test]
    fn a_slice_is_the_same_bytes() {
        // 0..10 chunk 1, hole 10..12, 12..20 chunk 2 from its byte 5.
        let file = vec![e(0, 10, 1, 0), e(12, 8, 2, 5)];
        let whole = bytes(&file, 20);
        for (s, t) in [(0, 20), (3, 7), (8, 15), (10, 12), (11, 20), (19, 20)] {
            let part = slice(&file, s, t);
            assert_eq!(
                bytes(&part, t - s),
                whole[s as usize..t as usize],
                "{s}..{t}"
            );
        }
        assert!(slice(&file, 10, 12).is_empty(), "a hole slices to nothing");
    }

    #[test]
    fn concatenated_files_are_their_bytes_in_order() {
        let a = (vec![e(0, 4, 1, 0)], 6); // two zero bytes at its end
        let b = (vec![e(1, 3, 2, 2)], 4);
        let (joined, size) = concat([a.clone(), b.clone()]);
        assert_eq!(size, 10);
        let mut want = bytes(&a.0, a.1);
        want.extend(bytes(&b.0, b.1));
        assert_eq!(bytes(&joined, size), want);
    }
}
