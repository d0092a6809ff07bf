//! Framing of one message on a QUIC stream.
//!
//! A frame is a 5-byte header — the version byte [`FRAME_VERSION`] and the
//! body length as a big-endian `u32` — followed by the postcard-encoded body.
//! The length is checked against a caller-given limit *before* anything is
//! allocated, so a peer cannot make us reserve more than the limit. Chunk
//! data, when a message carries any, follows its frame as raw bytes whose
//! length the message states.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::FRAME_VERSION;

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 5;

/// Default limit on a frame body: fits a commit of ~250k extents (a
/// 250 GiB file at the default 1 MiB average chunk).
pub const MAX_FRAME_LEN: usize = 16 << 20;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The input ended before the frame did.
    #[error("truncated frame: needed {needed} bytes, had {had}")]
    Truncated { needed: usize, had: usize },
    /// The header announces a body longer than allowed.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    /// The peer speaks another framing version.
    #[error("unsupported frame version {got} (this build speaks {FRAME_VERSION})")]
    BadVersion { got: u8 },
    /// The body is not a valid encoding of the expected message.
    #[error("malformed frame body: {0}")]
    Malformed(#[from] postcard::Error),
    /// The stream failed underneath.
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer did not send the frame in time.
    #[error("no complete frame within {0:?}")]
    TimedOut(std::time::Duration),
}

/// Encodes `msg` as one frame.
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = postcard::to_extend(msg, vec![FRAME_VERSION, 0, 0, 0, 0])?;
    let body_len = out.len() - HEADER_LEN;
    if body_len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge {
            len: body_len,
            limit: MAX_FRAME_LEN,
        });
    }
    out[1..HEADER_LEN].copy_from_slice(&(body_len as u32).to_be_bytes());
    Ok(out)
}

/// Checks a header and returns the body length it announces.
pub fn parse_header(header: [u8; HEADER_LEN], limit: usize) -> Result<usize, FrameError> {
    if header[0] != FRAME_VERSION {
        return Err(FrameError::BadVersion { got: header[0] });
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    Ok(len)
}

/// Decodes one frame from the front of `buf`; returns the message and the
/// bytes consumed. Never allocates more than `limit` for the body.
pub fn decode_frame<T: DeserializeOwned>(
    buf: &[u8],
    limit: usize,
) -> Result<(T, usize), FrameError> {
    if buf.len() < HEADER_LEN {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN,
            had: buf.len(),
        });
    }
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&buf[..HEADER_LEN]);
    let len = parse_header(header, limit)?;
    let end = HEADER_LEN + len;
    if buf.len() < end {
        return Err(FrameError::Truncated {
            needed: end,
            had: buf.len(),
        });
    }
    Ok((decode_body(&buf[HEADER_LEN..end])?, end))
}

/// Decodes a body, refusing trailing bytes (a sign of a confused peer).
fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) = postcard::take_from_bytes(body)?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(
            postcard::Error::DeserializeBadEncoding,
        ));
    }
    Ok(msg)
}

/// Writes `msg` as one frame.
pub async fn write_frame<W, T>(w: &mut W, msg: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let buf = encode_frame(msg)?;
    w.write_all(&buf).await?;
    Ok(())
}

/// Reads one frame, allocating at most `limit` bytes for its body.
pub async fn read_frame<R, T>(r: &mut R, limit: usize) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let len = read_header(r, limit).await?;
    read_body(r, len).await
}

/// Reads and checks a frame header; returns the body length it announces
/// (at most `limit`).
pub async fn read_header<R>(r: &mut R, limit: usize) -> Result<usize, FrameError>
where
    R: AsyncRead + Unpin,
{
    let mut header = [0u8; HEADER_LEN];
    read_exact_or_truncated(r, &mut header, 0).await?;
    parse_header(header, limit)
}

/// Reads a body of `len` bytes (as [`read_header`] announced) and decodes it.
pub async fn read_body<R, T>(r: &mut R, len: usize) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut body = vec![0u8; len];
    read_exact_or_truncated(r, &mut body, HEADER_LEN).await?;
    decode_body(&body)
}

async fn read_exact_or_truncated<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    already: usize,
) -> Result<(), FrameError> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = r.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                needed: already + buf.len(),
                had: already + filled,
            });
        }
        filled += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk_rpc::ChunkRequest;
    use crate::meta_rpc::{MetaRequest, NsRead};
    use crate::{ChunkId, InodeId};
    use proptest::prelude::*;

    fn sample() -> MetaRequest {
        MetaRequest::NsRead(NsRead::Lookup {
            parent: InodeId::ROOT,
            name: "hello".into(),
        })
    }

    #[test]
    fn round_trip() {
        let buf = encode_frame(&sample()).unwrap();
        let (msg, used): (MetaRequest, usize) = decode_frame(&buf, MAX_FRAME_LEN).unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(msg, sample());
    }

    #[test]
    fn truncated_is_rejected() {
        let buf = encode_frame(&sample()).unwrap();
        for cut in 0..buf.len() {
            let err = decode_frame::<MetaRequest>(&buf[..cut], MAX_FRAME_LEN).unwrap_err();
            assert!(
                matches!(err, FrameError::Truncated { .. }),
                "cut {cut}: {err}"
            );
        }
    }

    #[test]
    fn wrong_version_is_rejected() {
        let mut buf = encode_frame(&sample()).unwrap();
        buf[0] = 9;
        let err = decode_frame::<MetaRequest>(&buf, MAX_FRAME_LEN).unwrap_err();
        assert!(matches!(err, FrameError::BadVersion { got: 9 }), "{err}");
    }

    #[test]
    fn oversized_is_rejected_before_allocating() {
        // Announces 4 GiB; must fail on the header alone.
        let buf = [FRAME_VERSION, 0xff, 0xff, 0xff, 0xff];
        let err = decode_frame::<MetaRequest>(&buf, MAX_FRAME_LEN).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut buf = encode_frame(&sample()).unwrap();
        buf.push(0);
        let len = (buf.len() - HEADER_LEN) as u32;
        buf[1..5].copy_from_slice(&len.to_be_bytes());
        assert!(matches!(
            decode_frame::<MetaRequest>(&buf, MAX_FRAME_LEN),
            Err(FrameError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn async_read_rejects_oversized_and_truncated() {
        let buf = [FRAME_VERSION, 0, 0, 1, 0];
        let err = read_frame::<_, ChunkRequest>(&mut &buf[..], 100)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            FrameError::TooLarge {
                len: 256,
                limit: 100
            }
        ));
        let full = encode_frame(&ChunkRequest::Get {
            id: ChunkId::of(b"x"),
        })
        .unwrap();
        let err = read_frame::<_, ChunkRequest>(&mut &full[..full.len() - 1], 1 << 20)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::Truncated { .. }), "{err}");
        let ok: ChunkRequest = read_frame(&mut &full[..], 1 << 20).await.unwrap();
        assert_eq!(
            ok,
            ChunkRequest::Get {
                id: ChunkId::of(b"x")
            }
        );
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode_frame::<MetaRequest>(&bytes, 1024);
            let _ = decode_frame::<ChunkRequest>(&bytes, 1024);
        }

        #[test]
        fn garbage_after_valid_header_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut buf = vec![FRAME_VERSION];
            buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
            buf.extend_from_slice(&body);
            let _ = decode_frame::<MetaRequest>(&buf, 1024);
        }

        #[test]
        fn names_round_trip(name in ".{0,300}", parent in any::<u64>()) {
            let msg = MetaRequest::NsRead(NsRead::Lookup { parent: InodeId(parent), name });
            let buf = encode_frame(&msg).unwrap();
            let (back, _): (MetaRequest, usize) = decode_frame(&buf, MAX_FRAME_LEN).unwrap();
            prop_assert_eq!(back, msg);
        }
    }
}
