//! Server-side copies: CopyObject, UploadPartCopy and (in
//! [`crate::multipart`]) Complete make the new file of the source's own
//! chunks (`cairn_client::stitch`, `Client::commit_extents`), so no byte
//! moves; only a tiny source whose bytes metadata keeps inline is
//! rewritten, bytes and all.

use std::ops::Range;
use std::time::Instant;

use cairn_client::stitch;
use cairn_client::{ClientError, FileContent};
use cairn_proto::meta_rpc::{Extent, InodeAttr};
use cairn_proto::ErrorCode;
use s3s::dto::CopySource;
use s3s::{s3_error, S3Result};

use crate::conditions::{Conditions, Verdict};
use crate::gateway::{internal, Gateway};
use crate::object_info::{ObjectInfo, XATTR};

/// A copy's source, read at one version.
pub(crate) struct Source {
    pub attr: InodeAttr,
    pub info: ObjectInfo,
    content: FileContent,
    /// When its layout was read: the copy's commit must come within half
    /// the garbage grace period of it.
    listed: Instant,
}

/// The bucket and key a `x-amz-copy-source` names.
pub(crate) fn source_key(src: &CopySource) -> S3Result<(&str, &str)> {
    match src {
        CopySource::Bucket { bucket, key, .. } => Ok((bucket, key)),
        _ => Err(s3_error!(
            NotImplemented,
            "copies from access points or outposts"
        )),
    }
}

/// An ETag for bytes copied by reference: a digest of the layout, MD5's
/// length (it cannot be the MD5, which would need the bytes).
pub(crate) fn layout_etag(extents: &[Extent], size: u64) -> String {
    let mut h = blake3::Hasher::new();
    for e in extents {
        h.update(&e.offset.to_le_bytes());
        h.update(&e.len.to_le_bytes());
        h.update(&e.chunk.0);
        h.update(&e.chunk_offset.to_le_bytes());
    }
    h.update(&size.to_le_bytes());
    hex::encode(&h.finalize().as_bytes()[..16])
}

/// The [`layout_etag`] of bytes `range` of `source`.
pub(crate) fn layout_of(source: &Source, range: Range<u64>) -> String {
    let len = range.end - range.start;
    match &source.content.inline {
        Some(bytes) => hex::encode(md5_of(&inline_range(bytes, range))),
        None => layout_etag(
            &stitch::slice(&source.content.extents, range.start, range.end),
            len,
        ),
    }
}

impl Gateway {
    /// The object `src` names, checked against the copy's `conditions`
    /// (`x-amz-copy-source-if-*`).
    pub(crate) async fn copy_source(
        &self,
        src: &CopySource,
        conditions: Conditions,
    ) -> S3Result<Source> {
        let (bucket, key) = source_key(src)?;
        let listed = Instant::now();
        let (attr, info) = self.object(bucket, key).await?;
        match conditions.for_read(&info.etag, attr.mtime_ns.div_euclid(1_000_000_000)) {
            Verdict::Proceed => {}
            // A copy's unmet condition is 412 either way.
            _ => return Err(s3_error!(PreconditionFailed)),
        }
        let content = self
            .content_at(&attr, || {
                s3_error!(
                    OperationAborted,
                    "the source changed while it was read; try again"
                )
            })
            .await?;
        Ok(Source {
            attr,
            info,
            content,
            listed,
        })
    }

    /// Commits bytes `range` (all of it if `None`) of `source` as the file
    /// at `path`, described by `info`.
    pub(crate) async fn commit_copy(
        &self,
        path: &str,
        source: &Source,
        range: Option<Range<u64>>,
        info: &ObjectInfo,
    ) -> S3Result<()> {
        let Range { start, end } = range.unwrap_or(0..source.attr.size);
        let xattrs = vec![(
            XATTR.to_string(),
            info.encode()
                .map_err(|e| s3_error!(MetadataTooLarge, "{e}"))?,
        )];
        let committed = match &source.content.inline {
            Some(bytes) => {
                let part = inline_range(bytes, start..end);
                self.client
                    .put_object(path, &part[..], move || Ok(xattrs))
                    .await
                    .map(|_| ())
            }
            None => {
                let extents = stitch::slice(&source.content.extents, start, end);
                self.client
                    .commit_extents(path, extents, end - start, xattrs, source.listed)
                    .await
                    .map(|_| ())
            }
        };
        committed.map_err(|e| match e {
            e if e.code() == Some(ErrorCode::IsADirectory) => s3_error!(
                OperationAborted,
                "keys below the target were written at the same time; try again"
            ),
            ClientError::CommitTooLate { .. } => s3_error!(
                OperationAborted,
                "the copy took too long to commit; try again"
            ),
            e => internal(e),
        })
    }
}

/// Bytes `range` of a file whose bytes metadata keeps inline as `bytes`
/// (zeros past them, up to the range's end).
fn inline_range(bytes: &[u8], range: Range<u64>) -> Vec<u8> {
    let lo = (range.start as usize).min(bytes.len());
    let hi = (range.end as usize).min(bytes.len());
    let mut part = bytes[lo..hi].to_vec();
    part.resize((range.end - range.start) as usize, 0);
    part
}

fn md5_of(bytes: &[u8]) -> [u8; 16] {
    use s3s::crypto::{Checksum as _, Md5};
    let mut m = Md5::new();
    m.update(bytes);
    m.finalize()
}
