//! `impl S3 for Gateway`: each S3 operation s3s routes, on the helpers of
//! [`crate::gateway`] (objects and listings), [`crate::copy`] and
//! [`crate::multipart`].

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use tokio_util::io::ReaderStream;

use cairn_proto::meta_rpc::FileKind;
use cairn_proto::ErrorCode;

use crate::conditions::{Conditions, Verdict};
use crate::gateway::{
    checksum_of, expires_of, http_date, internal, key_error, metadata_of, now_ns, range_of,
    sorted_metadata, source_conditions, tag, timestamp, Gateway, ReadAsk, Reading, GET_PIPE,
    MAX_LIST_KEYS,
};
use crate::keys;
use crate::listing::ListParams;
use crate::multipart;
use crate::object_info::ObjectInfo;
use crate::walk;

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
        self.parts_page(req.input).await.map(S3Response::new)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        self.uploads_page(req.input).await.map(S3Response::new)
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
