//! The S3 operations, on the cluster's namespace: buckets are directories
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
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, S3};
use tokio_util::io::{ReaderStream, StreamReader};

use crate::checksums::{Digests, Expected};
use crate::conditions::{Conditions, Tag, Verdict};
use crate::keys::{self, KeyError};
use crate::listing::{ListParams, Listed, PageBuilder};
use crate::multipart;
use crate::object_info::{fallback_etag, ObjectInfo, XATTR};
use crate::walk;

/// Most keys one ListObjects page returns (S3's own cap).
const MAX_LIST_KEYS: usize = 1000;
/// Bytes in flight between a GET's reader and its HTTP body.
const GET_PIPE: usize = 1 << 20;
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
    async fn current_etag(&self, bucket: &str, key: &str) -> S3Result<Option<String>> {
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

    async fn list(
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
fn source_conditions(
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

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn timestamp(ns: i64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64))
}

fn seconds(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

fn tag(c: &ETagCondition) -> Tag {
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

fn http_date(t: &Timestamp) -> Option<String> {
    let mut out = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut out).ok()?;
    String::from_utf8(out).ok()
}

pub(crate) fn sorted_metadata(m: Option<Metadata>) -> Vec<(String, String)> {
    let mut v: Vec<_> = m.map(|m| m.into_iter().collect()).unwrap_or_default();
    v.sort();
    v
}

fn metadata_of(info: &ObjectInfo) -> Option<Metadata> {
    (!info.user_metadata.is_empty()).then(|| info.user_metadata.iter().cloned().collect())
}

fn checksum_of(info: &ObjectInfo, name: &str) -> Option<String> {
    info.checksums
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn expires_of(info: &ObjectInfo) -> Option<Timestamp> {
    info.expires
        .as_deref()
        .and_then(|s| Timestamp::parse(TimestampFormat::HttpDate, s).ok())
}

/// The byte range a GET or HEAD asks for, checked against `size`.
fn range_of(range: Option<&Range>, size: u64) -> S3Result<Option<std::ops::Range<u64>>> {
    match range {
        None => Ok(None),
        Some(r) => r.check(size).map(Some).map_err(|_| s3_error!(InvalidRange)),
    }
}

/// What a GET and a HEAD ask alike.
struct ReadAsk<'a> {
    bucket: &'a str,
    key: &'a str,
    if_match: Option<&'a ETagCondition>,
    if_none_match: Option<&'a ETagCondition>,
    if_modified_since: Option<&'a Timestamp>,
    if_unmodified_since: Option<&'a Timestamp>,
    range: Option<&'a Range>,
}

/// The [`ObjectInfo`] a PUT's, CopyObject's or CreateMultipartUpload's
/// headers give (the types share these fields), with `etag` and
/// `checksums`.
macro_rules! info_from {
    ($i:expr, $etag:expr, $checksums:expr) => {
        ObjectInfo {
            etag: $etag,
            content_type: $i.content_type,
            content_encoding: $i.content_encoding,
            content_disposition: $i.content_disposition,
            content_language: $i.content_language,
            cache_control: $i.cache_control,
            expires: $i.expires.and_then(|t| http_date(&t)),
            user_metadata: sorted_metadata($i.metadata),
            checksums: $checksums,
        }
    };
}

/// A PUT's or UploadPart's output (the types share these fields): what
/// was stored, described by `info`.
macro_rules! stored_output {
    ($ty:ident, $info:expr) => {{
        let info: ObjectInfo = $info;
        $ty {
            e_tag: Some(ETag::Strong(info.etag.clone())),
            checksum_crc32: checksum_of(&info, "CRC32"),
            checksum_crc32c: checksum_of(&info, "CRC32C"),
            checksum_sha1: checksum_of(&info, "SHA1"),
            checksum_sha256: checksum_of(&info, "SHA256"),
            checksum_crc64nvme: checksum_of(&info, "CRC64NVME"),
            ..Default::default()
        }
    }};
}

/// The [`ReadAsk`] of a GET's or HEAD's input (the two types share these
/// fields).
macro_rules! read_ask {
    ($i:expr) => {
        ReadAsk {
            bucket: &$i.bucket,
            key: &$i.key,
            if_match: $i.if_match.as_ref(),
            if_none_match: $i.if_none_match.as_ref(),
            if_modified_since: $i.if_modified_since.as_ref(),
            if_unmodified_since: $i.if_unmodified_since.as_ref(),
            range: $i.range.as_ref(),
        }
    };
}

/// What a GET and a HEAD answer alike: the object, checked against the
/// conditions, and the byte range served.
struct Reading {
    attr: InodeAttr,
    info: ObjectInfo,
    range: Option<std::ops::Range<u64>>,
}

impl Reading {
    fn bounds(&self) -> (u64, u64) {
        self.range
            .clone()
            .map_or((0, self.attr.size), |r| (r.start, r.end))
    }

    /// The object's checksums apply to the whole object only.
    fn checksum(&self, name: &str) -> Option<String> {
        let (start, end) = self.bounds();
        (start == 0 && end == self.attr.size)
            .then(|| checksum_of(&self.info, name))
            .flatten()
    }

    fn content_range(&self) -> Option<String> {
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

    async fn reading(&self, ask: ReadAsk<'_>) -> S3Result<Reading> {
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

/// A GET's or HEAD's output (the two types share these fields) from a
/// [`Reading`], plus `extra` fields.
macro_rules! read_output {
    ($ty:ident, $r:expr, { $($field:ident: $value:expr),* $(,)? }) => {{
        let r: Reading = $r;
        let (start, end) = r.bounds();
        $ty {
            content_length: Some((end - start) as i64),
            content_range: r.content_range(),
            accept_ranges: Some("bytes".into()),
            last_modified: Some(timestamp(r.attr.mtime_ns)),
            e_tag: Some(ETag::Strong(r.info.etag.clone())),
            metadata: metadata_of(&r.info),
            expires: expires_of(&r.info),
            checksum_crc32: r.checksum("CRC32"),
            checksum_crc32c: r.checksum("CRC32C"),
            checksum_sha1: r.checksum("SHA1"),
            checksum_sha256: r.checksum("SHA256"),
            checksum_crc64nvme: r.checksum("CRC64NVME"),
            content_type: r.info.content_type,
            content_encoding: r.info.content_encoding,
            content_disposition: r.info.content_disposition,
            content_language: r.info.content_language,
            cache_control: r.info.cache_control,
            $($field: $value,)*
            ..Default::default()
        }
    }};
}

#[async_trait::async_trait]
impl S3 for Gateway {
    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let entries = self.client.list_long(&self.root).await.map_err(internal)?;
        let buckets = entries
            .into_iter()
            .filter(|e| e.attr.kind == FileKind::Dir)
            .map(|e| Bucket {
                name: Some(e.name),
                creation_date: Some(timestamp(e.attr.ctime_ns)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let path = self.bucket_path(&req.input.bucket);
        match self.client.mkdir(&path, false).await {
            Ok(_) => Ok(S3Response::new(CreateBucketOutput {
                location: Some(format!("/{}", req.input.bucket)),
            })),
            Err(e) if e.code() == Some(ErrorCode::AlreadyExists) => {
                Err(s3_error!(BucketAlreadyOwnedByYou))
            }
            Err(e) => Err(internal(e)),
        }
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.bucket(&req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.bucket(&req.input.bucket).await?;
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let a = self.bucket(&req.input.bucket).await?;
        // Empty directories left in it (by the mount) hold no key.
        if walk::holds_a_key(&self.client, a.ino)
            .await
            .map_err(internal)?
        {
            return Err(s3_error!(BucketNotEmpty));
        }
        self.client
            .remove(&self.bucket_path(&req.input.bucket), true)
            .await
            .map_err(internal)?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let trailer = req.trailing_headers;
        let input = req.input;
        keys::check(&input.key).map_err(key_error)?;
        self.bucket(&input.bucket).await?;
        if input.if_match.is_some() || input.if_none_match.is_some() {
            let conditions = Conditions {
                if_match: input.if_match.as_ref().map(tag),
                if_none_match: input.if_none_match.as_ref().map(tag),
                ..Default::default()
            };
            let current = self.current_etag(&input.bucket, &input.key).await?;
            if conditions.for_write(current.as_deref()) != Verdict::Proceed {
                return Err(s3_error!(PreconditionFailed));
            }
        }
        let path = self.put_path(&input.bucket, &input.key).await?;
        let expected = crate::expected_of!(input);
        let body = input.body.ok_or_else(|| s3_error!(IncompleteBody))?;
        let info = info_from!(input, String::new(), Vec::new());
        let info = self
            .upload(&path, &input.key, body, trailer, expected, info)
            .await?;
        Ok(S3Response::new(stored_output!(PutObjectOutput, info)))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let i = &req.input;
        let r = self.reading(read_ask!(i)).await?;
        let (start, end) = r.bounds();
        let (mut tx, rx) = tokio::io::duplex(GET_PIPE);
        let client = self.client.clone();
        let reading = r.attr.clone();
        tokio::spawn(async move {
            // A failure (the object replaced mid-read) ends the body short
            // of its Content-Length: the client sees an error, never a mix.
            if let Err(e) = client.read_file(&reading, start, end, &mut tx).await {
                tracing::warn!(ino = reading.ino.0, error = %e, "a GET ended early");
            }
        });
        let body = StreamingBlob::wrap(ReaderStream::with_capacity(rx, 64 << 10));
        Ok(S3Response::new(read_output!(GetObjectOutput, r, {
            body: Some(body),
        })))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let i = &req.input;
        let r = self.reading(read_ask!(i)).await?;
        Ok(S3Response::new(read_output!(HeadObjectOutput, r, {})))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let i = req.input;
        keys::check(&i.key).map_err(key_error)?;
        self.bucket(&i.bucket).await?;
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let (src_bucket, src_key) = crate::copy::source_key(&i.copy_source)?;
        if (src_bucket, src_key) == (i.bucket.as_str(), i.key.as_str()) && !replace {
            return Err(s3_error!(
                InvalidRequest,
                "copying an object onto itself changes nothing; say MetadataDirective REPLACE"
            ));
        }
        let source = self
            .copy_source(
                &i.copy_source,
                source_conditions(
                    i.copy_source_if_match.as_ref(),
                    i.copy_source_if_none_match.as_ref(),
                    i.copy_source_if_modified_since.as_ref(),
                    i.copy_source_if_unmodified_since.as_ref(),
                ),
            )
            .await?;
        let info = if replace {
            info_from!(i, source.info.etag.clone(), source.info.checksums.clone())
        } else {
            source.info.clone()
        };
        let path = self.put_path(&i.bucket, &i.key).await?;
        self.commit_copy(&path, &source, None, &info).await?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(ETag::Strong(info.etag)),
                last_modified: Some(timestamp(now_ns())),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let i = req.input;
        let info = info_from!(i, String::new(), Vec::new());
        let id = self.create_upload(&i.bucket, &i.key, info).await?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(id),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let trailer = req.trailing_headers;
        let i = req.input;
        multipart::check_part_number(i.part_number)?;
        self.upload_record(&i.bucket, &i.key, &i.upload_id).await?;
        let expected = crate::expected_of!(i);
        let body = i.body.ok_or_else(|| s3_error!(IncompleteBody))?;
        let path = format!(
            "{}/{}",
            self.upload_path(&i.bucket, &i.upload_id),
            multipart::part_name(i.part_number)
        );
        let info = self
            .upload(
                &path,
                &i.key,
                body,
                trailer,
                expected,
                ObjectInfo::default(),
            )
            .await?;
        Ok(S3Response::new(stored_output!(UploadPartOutput, info)))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let i = req.input;
        multipart::check_part_number(i.part_number)?;
        self.upload_record(&i.bucket, &i.key, &i.upload_id).await?;
        let source = self
            .copy_source(
                &i.copy_source,
                source_conditions(
                    i.copy_source_if_match.as_ref(),
                    i.copy_source_if_none_match.as_ref(),
                    i.copy_source_if_modified_since.as_ref(),
                    i.copy_source_if_unmodified_since.as_ref(),
                ),
            )
            .await?;
        let range = match &i.copy_source_range {
            None => None,
            Some(r) => {
                let parsed = Range::parse(r)
                    .map_err(|_| s3_error!(InvalidArgument, "x-amz-copy-source-range {r:?}"))?;
                range_of(Some(&parsed), source.attr.size)?
            }
        };
        let path = format!(
            "{}/{}",
            self.upload_path(&i.bucket, &i.upload_id),
            multipart::part_name(i.part_number)
        );
        // A whole single-part source keeps its MD5; a range gets a digest
        // of its layout (see copy::layout_etag).
        let whole = range.is_none();
        let mut info = ObjectInfo::default();
        if whole && !source.info.etag.contains('-') {
            info.etag = source.info.etag.clone();
            self.commit_copy(&path, &source, None, &info).await?;
        } else {
            let r = range.unwrap_or(0..source.attr.size);
            let layout = crate::copy::layout_of(&source, r.clone());
            info.etag = layout;
            self.commit_copy(&path, &source, Some(r), &info).await?;
        }
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(info.etag)),
                last_modified: Some(timestamp(now_ns())),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let i = req.input;
        let parts: Vec<(i32, String)> = i
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let n = p
                    .part_number
                    .ok_or_else(|| s3_error!(MalformedXML, "a part without a number"))?;
                let e = p
                    .e_tag
                    .ok_or_else(|| s3_error!(MalformedXML, "a part without an ETag"))?;
                Ok((n, e.value().to_string()))
            })
            .collect::<S3Result<_>>()?;
        let etag = self
            .complete_upload(&i.bucket, &i.key, &i.upload_id, &parts)
            .await?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            location: Some(format!("/{}/{}", i.bucket, i.key)),
            bucket: Some(i.bucket),
            key: Some(i.key),
            e_tag: Some(ETag::Strong(etag)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let i = req.input;
        self.abort_upload(&i.bucket, &i.key, &i.upload_id).await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let i = req.input;
        self.upload_record(&i.bucket, &i.key, &i.upload_id).await?;
        let max = i.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
        let after = i.part_number_marker.unwrap_or(0);
        let all: Vec<_> = self
            .stored_parts(&i.bucket, &i.upload_id)
            .await?
            .into_iter()
            .filter(|p| p.number > after)
            .collect();
        let truncated = all.len() > max;
        let page: Vec<Part> = all
            .into_iter()
            .take(max)
            .map(|p| Part {
                part_number: Some(p.number),
                e_tag: Some(ETag::Strong(p.etag)),
                size: Some(p.size as i64),
                last_modified: Some(timestamp(p.mtime_ns)),
                ..Default::default()
            })
            .collect();
        let next = truncated
            .then(|| page.last().and_then(|p| p.part_number))
            .flatten();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(i.upload_id),
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            next_part_number_marker: next,
            part_number_marker: i.part_number_marker,
            parts: Some(page),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let i = req.input;
        let max = i.max_uploads.unwrap_or(1000).clamp(0, 1000) as usize;
        let prefix = i.prefix.clone().unwrap_or_default();
        let after = i.key_marker.clone().unwrap_or_default();
        let all: Vec<_> = self
            .uploads(&i.bucket)
            .await?
            .into_iter()
            .filter(|(_, r)| r.key.starts_with(&prefix) && r.key.as_bytes() > after.as_bytes())
            .collect();
        let truncated = all.len() > max;
        let uploads: Vec<MultipartUpload> = all
            .into_iter()
            .take(max)
            .map(|(id, r)| MultipartUpload {
                key: Some(r.key),
                upload_id: Some(id),
                initiated: Some(timestamp(r.initiated_ns)),
                storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                ..Default::default()
            })
            .collect();
        let next_key = truncated
            .then(|| uploads.last().and_then(|u| u.key.clone()))
            .flatten();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(i.bucket),
            prefix: i.prefix,
            key_marker: i.key_marker,
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: next_key,
            uploads: Some(uploads),
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        self.bucket(&input.bucket).await?;
        if let Some(c) = &input.if_match {
            let current = self.current_etag(&input.bucket, &input.key).await?;
            let conditions = Conditions {
                if_match: Some(tag(c)),
                ..Default::default()
            };
            if conditions.for_write(current.as_deref()) != Verdict::Proceed {
                return Err(s3_error!(PreconditionFailed));
            }
        }
        self.delete_key(&input.bucket, &input.key).await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        self.bucket(&input.bucket).await?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for o in input.delete.objects {
            match self.delete_key(&input.bucket, &o.key).await {
                Ok(()) => {
                    if !quiet {
                        deleted.push(DeletedObject {
                            key: Some(o.key),
                            ..Default::default()
                        })
                    }
                }
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_string()),
                    key: Some(o.key),
                    message: e.message().map(str::to_string),
                    version_id: None,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let max = max_keys(input.max_keys)?;
        let params = ListParams {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: input.delimiter.clone(),
            after: input.marker.clone().filter(|m| !m.is_empty()),
            max,
        };
        let (contents, prefixes, next) = self.list(&input.bucket, params).await?;
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: input.prefix,
            marker: input.marker,
            max_keys: Some(max as i32),
            is_truncated: Some(next.is_some()),
            // Only with a delimiter does S3 send it; clients then use the
            // last key otherwise. Always sending it is allowed.
            next_marker: next,
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            delimiter: input.delimiter,
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let max = max_keys(input.max_keys)?;
        let after = match &input.continuation_token {
            Some(t) => Some(decode_token(t)?),
            None => input.start_after.clone().filter(|s| !s.is_empty()),
        };
        let params = ListParams {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: input.delimiter.clone(),
            after,
            max,
        };
        let (contents, prefixes, next) = self.list(&input.bucket, params).await?;
        let count = contents.len() + prefixes.len();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: input.prefix,
            max_keys: Some(max as i32),
            key_count: Some(count as i32),
            continuation_token: input.continuation_token,
            is_truncated: Some(next.is_some()),
            next_continuation_token: next.map(|n| hex::encode(n.as_bytes())),
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            delimiter: input.delimiter,
            encoding_type: input.encoding_type,
            start_after: input.start_after,
            ..Default::default()
        }))
    }
}

impl Gateway {
    /// Deletes `key` (absent already counts as deleted, as in S3) and
    /// the directories it leaves empty.
    async fn delete_key(&self, bucket: &str, key: &str) -> S3Result<()> {
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

fn max_keys(asked: Option<i32>) -> S3Result<usize> {
    match asked {
        None => Ok(MAX_LIST_KEYS),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must not be negative")),
        Some(n) => Ok((n as usize).min(MAX_LIST_KEYS)),
    }
}

/// A continuation token is the hex of the key the page ended at.
fn decode_token(t: &str) -> S3Result<String> {
    hex::decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "the continuation token is not one this gateway issued"
            )
        })
}
