//! The gateway over the cluster's namespace: buckets are directories
//! under the gateway's root, objects files under them (see
//! [`crate::keys`]), each object's ETag and headers in one attribute
//! committed with its bytes ([`crate::object_info`]).

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use cairn_client::{Client, ClientError};
use cairn_proto::meta_rpc::{FileKind, InodeAttr};
use cairn_proto::ErrorCode;
use futures::{StreamExt, TryStreamExt};
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Result};
use tokio_util::io::StreamReader;

use crate::checksums::{Digests, Expected};
use crate::conditions::{Conditions, Tag, Verdict};
use crate::keys::{self, KeyError};
use crate::listing::{ListParams, Listed, PageBuilder};
use crate::object_info::{fallback_etag, ObjectInfo, XATTR};
use crate::walk;

/// Most keys one ListObjects page returns (S3's own cap).
pub(crate) const MAX_LIST_KEYS: usize = 1000;
/// Bytes in flight between a GET's reader and its HTTP body.
pub(crate) const GET_PIPE: usize = 1 << 20;
/// Descriptions fetched at once for a listing page.
const INFO_FETCHES: usize = 32;

pub struct Gateway {
    pub(crate) client: Client,
    pub(crate) root: String,
}

impl Gateway {
    /// Serves buckets as the directories under `root` (`/` for the
    /// namespace's top level).
    pub fn new(client: Client, root: String) -> Self {
        Gateway { client, root }
    }

    pub(crate) fn bucket_path(&self, bucket: &str) -> String {
        keys::bucket_path(&self.root, bucket)
    }

    /// Where `key` lives if it has a path of its own.
    fn natural_path(&self, bucket: &str, key: &str) -> Option<String> {
        keys::segments(key).map(|_| keys::object_path(&self.root, bucket, key))
    }

    /// Where `key` lives in the bucket's key store.
    fn stored_path(&self, bucket: &str, key: &str) -> String {
        keys::stored_path(&self.root, bucket, key)
    }

    /// The file at `path`, if a regular file is there.
    pub(crate) async fn file_at(&self, path: &str) -> S3Result<Option<InodeAttr>> {
        match self.client.stat(path).await {
            Ok(a) if a.kind == FileKind::File => Ok(Some(a)),
            Ok(_) => Ok(None),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(internal(e)),
        }
    }

    /// `key`'s file and its path, wherever it is: at its own path, else
    /// in the key store.
    async fn find(&self, bucket: &str, key: &str) -> S3Result<Option<(String, InodeAttr)>> {
        keys::check(key).map_err(key_error)?;
        if let Some(p) = self.natural_path(bucket, key) {
            if let Some(a) = self.file_at(&p).await? {
                return Ok(Some((p, a)));
            }
        }
        let p = self.stored_path(bucket, key);
        Ok(self.file_at(&p).await?.map(|a| (p, a)))
    }

    /// Where a PUT of `key` commits, with the directories on the way made:
    /// its own path unless the key has none or something is in the way (an
    /// object where a directory must be, or keys below the name), or the
    /// key is already in the store (so a key lives in one place).
    pub(crate) async fn put_path(&self, bucket: &str, key: &str) -> S3Result<String> {
        let stored = self.stored_path(bucket, key);
        if let Some(natural) = self.natural_path(bucket, key) {
            let in_store = self.file_at(&stored).await?.is_some();
            if !in_store && self.make_parent(&natural).await? {
                match self.client.stat(&natural).await {
                    Ok(a) if a.kind != FileKind::File => {}
                    Ok(_) => return Ok(natural),
                    Err(e) if is_missing(&e) => return Ok(natural),
                    Err(e) => return Err(internal(e)),
                }
            }
        }
        if !self.make_parent(&stored).await? {
            return Err(s3_error!(
                InternalError,
                "the bucket's key store is not a directory"
            ));
        }
        Ok(stored)
    }

    /// Makes `path`'s parent directories; false if a non-directory is in
    /// the way.
    async fn make_parent(&self, path: &str) -> S3Result<bool> {
        let Some((parent, _)) = path.rsplit_once('/') else {
            return Ok(true);
        };
        match self.client.mkdir(parent, true).await {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.code(),
                    Some(ErrorCode::AlreadyExists) | Some(ErrorCode::NotADirectory)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(internal(e)),
        }
    }

    pub(crate) async fn bucket(&self, bucket: &str) -> S3Result<InodeAttr> {
        match self.client.stat(&self.bucket_path(bucket)).await {
            Ok(a) if a.kind == FileKind::Dir => Ok(a),
            Ok(_) => Err(s3_error!(NoSuchBucket)),
            Err(e) if walk::is_not_found(&e) => Err(s3_error!(NoSuchBucket)),
            Err(e) => Err(internal(e)),
        }
    }

    /// The object's file and description; `NoSuchKey` (or `NoSuchBucket`)
    /// if there is none.
    pub(crate) async fn object(
        &self,
        bucket: &str,
        key: &str,
    ) -> S3Result<(InodeAttr, ObjectInfo)> {
        let Some((_, attr)) = self.find(bucket, key).await? else {
            self.bucket(bucket).await?;
            return Err(s3_error!(NoSuchKey));
        };
        let info = self.info(&attr).await?;
        Ok((attr, info))
    }

    pub(crate) async fn info(&self, attr: &InodeAttr) -> S3Result<ObjectInfo> {
        match self.client.inodes().get_xattr(attr.ino, XATTR).await {
            Ok(bytes) => ObjectInfo::decode(&bytes).map_err(|e| {
                tracing::warn!(ino = attr.ino.0, error = %e, "an object's description does not decode");
                s3_error!(InternalError, "the object's description does not decode")
            }),
            Err(e) if e.code() == Some(ErrorCode::NoData) => Ok(ObjectInfo {
                etag: fallback_etag(attr),
                ..Default::default()
            }),
            Err(e) => Err(internal(e)),
        }
    }

    /// The current ETag of `key`'s object, if there is one.
    pub(crate) async fn current_etag(&self, bucket: &str, key: &str) -> S3Result<Option<String>> {
        match self.find(bucket, key).await? {
            Some((_, a)) => Ok(Some(self.info(&a).await?.etag)),
            None => Ok(None),
        }
    }

    /// Removes the directories between `path`'s file and `top` that it
    /// leaves empty, deepest first: S3 has no directories, so a deleted
    /// key's parents should not linger as empty prefixes. Best effort.
    async fn prune_parents(&self, path: &str, top: &str) {
        let mut dir = path;
        while let Some((parent, _)) = dir.rsplit_once('/') {
            if parent.len() <= top.len() || !parent.starts_with(top) {
                return;
            }
            if self.client.remove(parent, false).await.is_err() {
                return;
            }
            dir = parent;
        }
    }

    pub(crate) async fn list(
        &self,
        bucket: &str,
        params: ListParams,
    ) -> S3Result<(Vec<Object>, Vec<CommonPrefix>, Option<String>)> {
        self.bucket(bucket).await?;
        let mut page = PageBuilder::new(params);
        let store = keys::store_path(&self.root, bucket);
        walk::fill(&self.client, &self.bucket_path(bucket), &store, &mut page)
            .await
            .map_err(internal)?;
        let page = page.finish();
        let next = page.next.clone();
        let mut prefixes = Vec::new();
        let mut files = Vec::new();
        for e in page.entries {
            match e {
                Listed::Key(k, a) => files.push((k, a)),
                Listed::CommonPrefix(p) => prefixes.push(CommonPrefix { prefix: Some(p) }),
            }
        }
        let objects: Vec<Object> = futures::stream::iter(files)
            .map(|(key, attr)| async move {
                let info = self.info(&attr).await?;
                Ok::<_, S3Error>(Object {
                    key: Some(key),
                    size: Some(attr.size as i64),
                    last_modified: Some(timestamp(attr.mtime_ns)),
                    e_tag: Some(ETag::Strong(info.etag)),
                    storage_class: Some(ObjectStorageClass::from_static(
                        ObjectStorageClass::STANDARD,
                    )),
                    ..Default::default()
                })
            })
            .buffered(INFO_FETCHES)
            .try_collect()
            .await?;
        Ok((objects, prefixes, next))
    }
}

/// The conditions `x-amz-copy-source-if-*` put on a copy's source.
pub(crate) fn source_conditions(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> Conditions {
    Conditions {
        if_match: if_match.map(tag),
        if_none_match: if_none_match.map(tag),
        if_modified_since: if_modified_since.map(seconds),
        if_unmodified_since: if_unmodified_since.map(seconds),
    }
}

pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

pub(crate) fn timestamp(ns: i64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64))
}

pub(crate) fn seconds(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

pub(crate) fn tag(c: &ETagCondition) -> Tag {
    match c {
        ETagCondition::Any => Tag::Any,
        ETagCondition::ETag(e) => Tag::Is(e.value().to_string()),
    }
}

pub(crate) fn key_error(e: KeyError) -> S3Error {
    match e {
        KeyError::TooLong(_) => S3Error::with_message(S3ErrorCode::KeyTooLongError, e.to_string()),
        KeyError::Empty => S3Error::with_message(S3ErrorCode::InvalidArgument, e.to_string()),
    }
}

/// Not there: the name, or a directory on its way (or a file where a
/// directory should be).
pub(crate) fn is_missing(e: &ClientError) -> bool {
    matches!(
        e.code(),
        Some(ErrorCode::NotFound) | Some(ErrorCode::NotADirectory)
    )
}

pub(crate) fn internal(e: ClientError) -> S3Error {
    let code = match &e {
        ClientError::Unreachable(_)
        | ClientError::TooFewServers { .. }
        | ClientError::NoChunkservers
        | ClientError::CommitTooLate { .. } => S3ErrorCode::ServiceUnavailable,
        _ => S3ErrorCode::InternalError,
    };
    tracing::warn!(error = %e, "request failed in the cluster");
    S3Error::with_message(code, e.to_string())
}

pub(crate) fn http_date(t: &Timestamp) -> Option<String> {
    let mut out = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut out).ok()?;
    String::from_utf8(out).ok()
}

pub(crate) fn sorted_metadata(m: Option<Metadata>) -> Vec<(String, String)> {
    let mut v: Vec<_> = m.map(|m| m.into_iter().collect()).unwrap_or_default();
    v.sort();
    v
}

pub(crate) fn metadata_of(info: &ObjectInfo) -> Option<Metadata> {
    (!info.user_metadata.is_empty()).then(|| info.user_metadata.iter().cloned().collect())
}

pub(crate) fn checksum_of(info: &ObjectInfo, name: &str) -> Option<String> {
    info.checksums
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

pub(crate) fn expires_of(info: &ObjectInfo) -> Option<Timestamp> {
    info.expires
        .as_deref()
        .and_then(|s| Timestamp::parse(TimestampFormat::HttpDate, s).ok())
}

/// The byte range a GET or HEAD asks for, checked against `size`.
pub(crate) fn range_of(range: Option<&Range>, size: u64) -> S3Result<Option<std::ops::Range<u64>>> {
    match range {
        None => Ok(None),
        Some(r) => r.check(size).map(Some).map_err(|_| s3_error!(InvalidRange)),
    }
}

/// What a GET and a HEAD ask alike.
pub(crate) struct ReadAsk<'a> {
    pub(crate) bucket: &'a str,
    pub(crate) key: &'a str,
    pub(crate) if_match: Option<&'a ETagCondition>,
    pub(crate) if_none_match: Option<&'a ETagCondition>,
    pub(crate) if_modified_since: Option<&'a Timestamp>,
    pub(crate) if_unmodified_since: Option<&'a Timestamp>,
    pub(crate) range: Option<&'a Range>,
}

/// What a GET and a HEAD answer alike: the object, checked against the
/// conditions, and the byte range served.
pub(crate) struct Reading {
    pub(crate) attr: InodeAttr,
    pub(crate) info: ObjectInfo,
    pub(crate) range: Option<std::ops::Range<u64>>,
}

impl Reading {
    pub(crate) fn bounds(&self) -> (u64, u64) {
        self.range
            .clone()
            .map_or((0, self.attr.size), |r| (r.start, r.end))
    }

    /// The object's checksums apply to the whole object only.
    pub(crate) fn checksum(&self, name: &str) -> Option<String> {
        let (start, end) = self.bounds();
        (start == 0 && end == self.attr.size)
            .then(|| checksum_of(&self.info, name))
            .flatten()
    }

    pub(crate) fn content_range(&self) -> Option<String> {
        self.range
            .as_ref()
            .map(|r| format!("bytes {}-{}/{}", r.start, r.end - 1, self.attr.size))
    }
}

impl Gateway {
    /// Streams `body` into the file at `path` and commits it with `info`
    /// (its ETag and checksums filled in from the bytes), verifying the
    /// digests `expected` names — from headers or the body's trailer —
    /// before the commit: a mismatch stores nothing. Answers the info
    /// committed.
    pub(crate) async fn upload(
        &self,
        path: &str,
        key: &str,
        body: StreamingBlob,
        trailer: Option<s3s::TrailingHeaders>,
        mut expected: Expected,
        mut info: ObjectInfo,
    ) -> S3Result<ObjectInfo> {
        let digests = Arc::new(Mutex::new(Digests::for_upload(&expected)?));
        let seen = digests.clone();
        let stream = body
            .inspect_ok(move |b| {
                seen.lock().unwrap_or_else(|p| p.into_inner()).update(b);
            })
            .map_err(io::Error::other);
        let reader = StreamReader::new(stream);
        // Filled in once the body is read, before the commit.
        let verdict: Arc<Mutex<Option<S3Error>>> = Arc::default();
        let failure = verdict.clone();
        let described = Arc::new(Mutex::new(None));
        let kept = described.clone();
        let committed = self
            .client
            .put_object(path, reader, move || {
                let fail = |e: S3Error| {
                    let msg = e.to_string();
                    *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    ClientError::Protocol(msg)
                };
                if let Some(t) = trailer.and_then(|t| t.take()) {
                    expected.add_trailer(&t).map_err(fail)?;
                }
                let d = std::mem::replace(
                    &mut *digests.lock().unwrap_or_else(|p| p.into_inner()),
                    Digests::for_upload(&Expected::default()).map_err(fail)?,
                );
                let (etag, sums) = d.finish(&expected).map_err(fail)?;
                info.etag = etag;
                info.checksums = sums;
                let bytes = info
                    .encode()
                    .map_err(|e| fail(s3_error!(MetadataTooLarge, "{e}")))?;
                *kept.lock().unwrap_or_else(|p| p.into_inner()) = Some(info);
                Ok(vec![(XATTR.to_string(), bytes)])
            })
            .await;
        if let Err(e) = committed {
            if let Some(s3) = verdict.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return Err(s3);
            }
            return Err(match e {
                ClientError::Io(io) => s3_error!(IncompleteBody, "reading the body: {io}"),
                // Keys below it appeared meanwhile.
                e if e.code() == Some(ErrorCode::IsADirectory) => s3_error!(
                    OperationAborted,
                    "keys below {key:?} were written at the same time; try again"
                ),
                e => internal(e),
            });
        }
        let info = described.lock().unwrap_or_else(|p| p.into_inner()).take();
        info.ok_or_else(|| s3_error!(InternalError, "the upload was committed undescribed"))
    }

    /// File `attr`'s content, read at the version `attr` names; `changed`
    /// is the error if it moved on meanwhile.
    pub(crate) async fn content_at(
        &self,
        attr: &InodeAttr,
        changed: impl FnOnce() -> S3Error,
    ) -> S3Result<cairn_client::FileContent> {
        let (content, version) = self
            .client
            .inodes()
            .content(attr.ino)
            .await
            .map_err(internal)?;
        if version != attr.version {
            return Err(changed());
        }
        Ok(content)
    }

    pub(crate) async fn reading(&self, ask: ReadAsk<'_>) -> S3Result<Reading> {
        let (attr, info) = self.object(ask.bucket, ask.key).await?;
        let conditions = Conditions {
            if_match: ask.if_match.map(tag),
            if_none_match: ask.if_none_match.map(tag),
            if_modified_since: ask.if_modified_since.map(seconds),
            if_unmodified_since: ask.if_unmodified_since.map(seconds),
        };
        match conditions.for_read(&info.etag, attr.mtime_ns.div_euclid(1_000_000_000)) {
            Verdict::Proceed => {}
            Verdict::PreconditionFailed => return Err(s3_error!(PreconditionFailed)),
            Verdict::NotModified => return Err(s3_error!(NotModified)),
        }
        let range = range_of(ask.range, attr.size)?;
        Ok(Reading { attr, info, range })
    }
}

impl Gateway {
    /// Deletes `key` (absent already counts as deleted, as in S3) and
    /// the directories it leaves empty.
    pub(crate) async fn delete_key(&self, bucket: &str, key: &str) -> S3Result<()> {
        let Some((path, _)) = self.find(bucket, key).await? else {
            return Ok(());
        };
        match self.client.remove(&path, false).await {
            Ok(()) => {}
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(internal(e)),
        }
        self.prune_parents(&path, &self.bucket_path(bucket)).await;
        Ok(())
    }
}
