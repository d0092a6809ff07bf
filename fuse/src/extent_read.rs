//! The committed bytes of a range of a file, read from its extents in
//! parallel: whole chunks through the mount's chunk cache for a sequential
//! reader (read-ahead fills the same cache) or a read that wants all of an
//! extent, only the verified bytes asked for (BLAKE3 slices) for a random
//! one. The bytes come back as pieces sharing the cached chunks' memory,
//! so a read inside one chunk is answered without copying it.

use bytes::Bytes;
use cairn_client::ClientError;
use cairn_proto::meta_rpc::Extent;
use fuser::Errno;

use crate::errno::errno;
use crate::open_file::FileIo;

/// Committed bytes of the file starting at file offset `at`.
pub struct Piece {
    pub at: u64,
    pub bytes: Bytes,
}

/// The committed bytes of `offset..offset + len` that extents hold, in
/// file order (holes are gaps between pieces).
pub async fn pieces(
    io: &FileIo,
    extents: &[Extent],
    offset: u64,
    len: u64,
    sequential: bool,
) -> Result<Vec<Piece>, Errno> {
    let end = offset + len;
    let first = extents.partition_point(|e| e.offset + e.len <= offset);
    // (extent, file range lo..hi, where that range starts in the chunk)
    let wanted: Vec<(&Extent, u64, u64, u64)> = extents[first..]
        .iter()
        .take_while(|e| e.offset < end)
        .map(|e| {
            let lo = e.offset.max(offset);
            let hi = (e.offset + e.len).min(end);
            (e, lo, hi, e.chunk_offset + (lo - e.offset))
        })
        .collect();
    let fetches = wanted.iter().map(|&(e, lo, hi, in_chunk)| {
        let id = e.chunk;
        let client = io.client.clone();
        // A read that wants all of an extent (a small file's one chunk)
        // gains nothing from a verified slice.
        let all_of_it = lo == e.offset && hi == e.offset + e.len;
        let whole = sequential || all_of_it || io.cache.contains(&id);
        async move {
            if whole {
                let data = io
                    .cache
                    .get(
                        id,
                        move || async move { client.inodes().fetch_chunk(id).await },
                    )
                    .await?;
                let from = in_chunk as usize;
                let to = from + (hi - lo) as usize;
                if to > data.len() {
                    return Err(ClientError::ChunkUnavailable {
                        chunk: id,
                        detail: "extent reaches past the end of its chunk".into(),
                    });
                }
                return Ok(data.slice(from..to));
            }
            let (start, len) = match (u32::try_from(in_chunk), u32::try_from(hi - lo)) {
                (Ok(s), Ok(l)) => (s, l),
                _ => {
                    return Err(ClientError::ChunkUnavailable {
                        chunk: id,
                        detail: "range beyond any chunk".into(),
                    })
                }
            };
            let slice = client.inodes().fetch_chunk_range(id, start, len).await?;
            Ok(Bytes::from(slice))
        }
    });
    let fetched = futures::future::join_all(fetches).await;
    let mut out = Vec::with_capacity(wanted.len());
    for ((e, lo, _, _), piece) in wanted.iter().zip(fetched) {
        let bytes = piece.map_err(|err| {
            tracing::warn!(chunk = %e.chunk, error = %err, "reading a chunk failed");
            errno(&err)
        })?;
        out.push(Piece { at: *lo, bytes });
    }
    Ok(out)
}

/// The one piece that is exactly `offset..offset + len`, if that is what
/// `pieces` are.
pub fn exactly(pieces: &[Piece], offset: u64, len: u64) -> Option<Bytes> {
    match pieces {
        [p] if p.at == offset && p.bytes.len() as u64 == len => Some(p.bytes.clone()),
        _ => None,
    }
}

/// Copies `pieces` into `out`, which holds the file from `offset` (bytes
/// no piece covers are left as they are: zeros for a hole).
pub fn copy_into(pieces: &[Piece], offset: u64, out: &mut [u8]) {
    for p in pieces {
        let from = (p.at - offset) as usize;
        out[from..from + p.bytes.len()].copy_from_slice(&p.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(at: u64, fill: u8, len: usize) -> Piece {
        Piece {
            at,
            bytes: Bytes::from(vec![fill; len]),
        }
    }

    #[test]
    fn one_piece_spanning_the_read_is_the_answer_itself() {
        let p = [piece(100, 7, 50)];
        let got = exactly(&p, 100, 50).expect("the piece");
        assert_eq!(got.as_ptr(), p[0].bytes.as_ptr(), "shared, not copied");
        assert!(exactly(&p, 100, 60).is_none(), "a hole after it");
        assert!(exactly(&p, 90, 60).is_none(), "a hole before it");
        assert!(exactly(&[piece(0, 1, 10), piece(10, 2, 10)], 0, 20).is_none());
        assert!(exactly(&[], 0, 0).is_none());
    }

    #[test]
    fn pieces_land_at_their_offsets_and_holes_stay_zero() {
        let mut out = vec![0u8; 30];
        copy_into(&[piece(10, 1, 5), piece(20, 2, 10)], 10, &mut out);
        let mut want = vec![1u8; 5];
        want.extend([0u8; 5]);
        want.extend([2u8; 10]);
        want.extend([0u8; 10]);
        assert_eq!(out, want);
    }
}
