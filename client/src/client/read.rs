//! The read path: page through a file's extents and fetch its chunks in
//! parallel (bounded), verified, writing them in order; holes read as zeros.
//! A tiny file's bytes come inline with the first page.

use cairn_proto::meta_rpc::{InodeAttr, NsRead, NsReadReply};
use cairn_proto::ChunkId;
use futures::stream::{self, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use std::sync::Arc;

use super::{unexpected, Client, Inner, EXTENT_PAGE};
use crate::chunk_io::download;
use crate::error::ClientError;

impl Client {
    pub(super) async fn read_range<W: AsyncWrite + Unpin>(
        &self,
        attr: &InodeAttr,
        start: u64,
        end: u64,
        w: &mut W,
    ) -> Result<u64, ClientError> {
        let mut pos = start;
        let mut from = start;
        while from < end {
            let (extents, more) = match self
                .read(NsRead::GetContent {
                    ino: attr.ino,
                    from,
                    limit: EXTENT_PAGE,
                })
                .await?
            {
                // Every page must come from the version `attr` describes, or
                // the output could mix an old file with its replacement.
                NsReadReply::Content { version, .. } if version != attr.version => {
                    return Err(ClientError::Changed { ino: attr.ino.0 })
                }
                NsReadReply::Content {
                    inline: Some(bytes),
                    ..
                } => {
                    // The whole file is these bytes (zeros past them).
                    let lo = (start as usize).min(bytes.len());
                    let hi = (end as usize).min(bytes.len());
                    w.write_all(&bytes[lo..hi]).await?;
                    pos = start + (hi - lo) as u64;
                    break;
                }
                NsReadReply::Content { extents, more, .. } => (extents, more),
                r => return Err(unexpected(r)),
            };
            let Some(last) = extents.last() else { break };
            from = last.offset + last.len;
            // (clipped file offset, clipped length, chunk, slice start in chunk)
            let pieces: Vec<(u64, u64, ChunkId, u64)> = extents
                .iter()
                .filter_map(|e| {
                    let s = e.offset.max(start);
                    let t = (e.offset + e.len).min(end);
                    (s < t).then(|| (s, t - s, e.chunk, e.chunk_offset + (s - e.offset)))
                })
                .collect();
            let mut fetched = stream::iter(pieces)
                .map(|(off, len, id, in_chunk)| {
                    let inner = self.inner.clone();
                    async move {
                        let data = tokio::spawn(inner.fetch_chunk(id))
                            .await
                            .map_err(ClientError::Task)??;
                        let s = in_chunk as usize;
                        let e = s + len as usize;
                        if e > data.len() {
                            return Err(ClientError::ChunkUnavailable {
                                chunk: id,
                                detail: format!(
                                    "extent wants bytes {s}..{e} of a {}-byte chunk",
                                    data.len()
                                ),
                            });
                        }
                        Ok::<_, ClientError>((off, data, s, e))
                    }
                })
                .buffered(self.inner.config.download_concurrency);
            while let Some(piece) = fetched.next().await {
                let (off, data, s, e) = piece?;
                write_zeros(w, off - pos).await?;
                w.write_all(&data[s..e]).await?;
                pos = off + (e - s) as u64;
            }
            if !more {
                break;
            }
        }
        // Holes at the end (and files with no extents) read as zeros.
        write_zeros(w, end.saturating_sub(pos)).await?;
        w.flush().await?;
        Ok(end - start)
    }
}

impl Inner {
    /// Chunk `id` from the first of its owners that returns bytes matching
    /// its hash.
    pub(super) async fn fetch_chunk(self: Arc<Self>, id: ChunkId) -> Result<Vec<u8>, ClientError> {
        self.refresh_ring_if_stale().await;
        let servers = self.ring.read_order(&id);
        download(&self.pool, &self.ring, &self.suspects, servers, id).await
    }
}

async fn write_zeros<W: AsyncWrite + Unpin>(w: &mut W, mut n: u64) -> Result<(), ClientError> {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        w.write_all(&ZEROS[..k]).await?;
        n -= k as u64;
    }
    Ok(())
}
