//! Multipart uploads. Upload `U` of bucket `B` is the directory
//! `B/.cairn-s3/uploads/U`: a file `upload` whose attribute records the
//! key and the headers given at Create, and one file per part (`00001`
//! ...), each committed with its MD5 like an object. Complete lays the
//! parts' chunks end to end as the object (`cairn_client::stitch`), so
//! no byte moves, then removes the upload. Uploads older than the
//! configured expiry are removed by [`Gateway::sweep_uploads`].
//!
//! **Stored format**: the `upload` file's attribute is postcard of
//! [`StoredUpload`], variant index = version.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use cairn_client::stitch;
use cairn_proto::meta_rpc::FileKind;
use s3s::crypto::{Checksum as _, Md5};
use s3s::dto::{
    ETag, ListMultipartUploadsInput, ListMultipartUploadsOutput, ListPartsInput, ListPartsOutput,
    MultipartUpload, Part, StorageClass,
};
use s3s::{s3_error, S3Result};
use serde::{Deserialize, Serialize};

use crate::gateway::{internal, timestamp, Gateway};
use crate::keys;
use crate::object_info::{ObjectInfo, XATTR};

/// The upload record's attribute.
pub const UPLOAD_XATTR: &str = "user.cairn.s3.upload";
/// The uploads' directory, under [`keys::STORE`].
pub const UPLOADS: &str = "uploads";
/// Parts are numbered 1..=10,000 (S3's limit).
pub const MAX_PART_NUMBER: i32 = 10_000;
/// Every part but the last is at least 5 MiB (S3's rule).
pub const MIN_PART_SIZE: u64 = 5 << 20;

/// What Create recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub key: String,
    /// The object's headers and metadata (no ETag yet).
    pub info: ObjectInfo,
    pub initiated_ns: i64,
}

#[derive(Serialize, Deserialize)]
enum StoredUpload {
    V1(UploadRecord),
}

impl UploadRecord {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(&StoredUpload::V1(self.clone())).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        match postcard::from_bytes(bytes).ok()? {
            StoredUpload::V1(r) => Some(r),
        }
    }
}

/// An upload id the gateway issued: 32 hex digits (and so never a path).
pub fn check_upload_id(id: &str) -> S3Result<()> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(s3_error!(NoSuchUpload))
    }
}

pub fn check_part_number(n: i32) -> S3Result<()> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(())
    } else {
        Err(s3_error!(
            InvalidArgument,
            "part numbers are 1 to {MAX_PART_NUMBER}"
        ))
    }
}

pub fn part_name(n: i32) -> String {
    format!("{n:05}")
}

/// The multipart ETag: the MD5 of the parts' MD5s, then `-N`.
pub fn multipart_etag(part_etags: &[String]) -> String {
    let mut m = Md5::new();
    for e in part_etags {
        match hex::decode(e) {
            Ok(b) => m.update(&b),
            Err(_) => m.update(e.as_bytes()),
        }
    }
    format!("{}-{}", hex::encode(m.finalize()), part_etags.len())
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn new_upload_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// A part as Complete and ListParts see it.
pub struct StoredPart {
    pub number: i32,
    pub etag: String,
    pub size: u64,
    pub mtime_ns: i64,
}

impl Gateway {
    fn uploads_path(&self, bucket: &str) -> String {
        format!("{}/{}/{UPLOADS}", self.bucket_path(bucket), keys::STORE)
    }

    pub(crate) fn upload_path(&self, bucket: &str, id: &str) -> String {
        format!("{}/{id}", self.uploads_path(bucket))
    }

    /// Starts an upload of `key`: answers its id.
    pub(crate) async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        info: ObjectInfo,
    ) -> S3Result<String> {
        self.bucket(bucket).await?;
        keys::check(key).map_err(crate::gateway::key_error)?;
        let id = new_upload_id();
        let dir = self.upload_path(bucket, &id);
        self.client.mkdir(&dir, true).await.map_err(internal)?;
        let record = UploadRecord {
            key: key.to_string(),
            info,
            initiated_ns: now_ns(),
        };
        self.client
            .commit_extents(
                &format!("{dir}/upload"),
                Vec::new(),
                0,
                vec![(UPLOAD_XATTR.to_string(), record.encode())],
                Instant::now(),
            )
            .await
            .map_err(internal)?;
        Ok(id)
    }

    /// Upload `id` of `key`, if it exists.
    pub(crate) async fn upload_record(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
    ) -> S3Result<UploadRecord> {
        check_upload_id(id)?;
        let path = format!("{}/upload", self.upload_path(bucket, id));
        let attr = match self.client.stat(&path).await {
            Ok(a) => a,
            Err(e) if crate::gateway::is_missing(&e) => {
                self.bucket(bucket).await?;
                return Err(s3_error!(NoSuchUpload));
            }
            Err(e) => return Err(internal(e)),
        };
        let bytes = self
            .client
            .inodes()
            .get_xattr(attr.ino, UPLOAD_XATTR)
            .await
            .map_err(internal)?;
        let record = UploadRecord::decode(&bytes)
            .ok_or_else(|| s3_error!(InternalError, "the upload's record does not decode"))?;
        if record.key != key {
            return Err(s3_error!(NoSuchUpload, "that upload is of another key"));
        }
        Ok(record)
    }

    /// The parts uploaded so far, by number.
    pub(crate) async fn stored_parts(&self, bucket: &str, id: &str) -> S3Result<Vec<StoredPart>> {
        let entries = self
            .client
            .list_long(&self.upload_path(bucket, id))
            .await
            .map_err(internal)?;
        let mut parts = Vec::new();
        for e in entries {
            let Ok(number) = e.name.parse::<i32>() else {
                continue;
            };
            if e.attr.kind != FileKind::File {
                continue;
            }
            let info = self.info(&e.attr).await?;
            parts.push(StoredPart {
                number,
                etag: info.etag,
                size: e.attr.size,
                mtime_ns: e.attr.mtime_ns,
            });
        }
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }

    /// Completes upload `id` with `parts` (number, ETag) as the client
    /// lists them: the object is their chunks end to end. Answers the
    /// object's ETag.
    pub(crate) async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        parts: &[(i32, String)],
    ) -> S3Result<String> {
        let record = self.upload_record(bucket, key, id).await?;
        if parts.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "a complete names at least one part"
            ));
        }
        if parts.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(s3_error!(InvalidPartOrder));
        }
        let listed = Instant::now();
        let dir = self.upload_path(bucket, id);
        let mut layouts = Vec::new();
        let mut etags = Vec::new();
        for (i, (n, etag)) in parts.iter().enumerate() {
            check_part_number(*n)?;
            let path = format!("{dir}/{}", part_name(*n));
            let Some(attr) = self.file_at(&path).await? else {
                return Err(s3_error!(InvalidPart, "part {n} was not uploaded"));
            };
            let info = self.info(&attr).await?;
            if info.etag != etag.trim_matches('"') {
                return Err(s3_error!(InvalidPart, "part {n}'s ETag is not {etag}"));
            }
            if i + 1 < parts.len() && attr.size < MIN_PART_SIZE {
                return Err(s3_error!(
                    EntityTooSmall,
                    "part {n} is {} bytes; all but the last are at least {MIN_PART_SIZE}",
                    attr.size
                ));
            }
            let changed = || s3_error!(InvalidPart, "part {n} changed; upload it again");
            let content = self.content_at(&attr, changed).await?;
            if content.inline.is_some() {
                return Err(changed());
            }
            layouts.push((content.extents, attr.size));
            etags.push(info.etag);
        }
        let (extents, size) = stitch::concat(layouts);
        let mut info = record.info;
        info.etag = multipart_etag(&etags);
        let bytes = info
            .encode()
            .map_err(|e| s3_error!(MetadataTooLarge, "{e}"))?;
        let path = self.put_path(bucket, key).await?;
        self.client
            .commit_extents(
                &path,
                extents,
                size,
                vec![(XATTR.to_string(), bytes)],
                listed,
            )
            .await
            .map_err(internal)?;
        // The object holds the chunks now; the parts may go.
        if let Err(e) = self.client.remove(&dir, true).await {
            tracing::warn!(upload = id, error = %e, "a completed upload's parts were left behind");
        }
        Ok(info.etag)
    }

    pub(crate) async fn abort_upload(&self, bucket: &str, key: &str, id: &str) -> S3Result<()> {
        self.upload_record(bucket, key, id).await?;
        self.client
            .remove(&self.upload_path(bucket, id), true)
            .await
            .map_err(internal)
    }

    /// The bucket's uploads in progress: (id, record), by key then time.
    pub(crate) async fn uploads(&self, bucket: &str) -> S3Result<Vec<(String, UploadRecord)>> {
        self.bucket(bucket).await?;
        let entries = match self.client.list(&self.uploads_path(bucket)).await {
            Ok(e) => e,
            Err(e) if crate::gateway::is_missing(&e) => return Ok(Vec::new()),
            Err(e) => return Err(internal(e)),
        };
        let mut out = Vec::new();
        for e in entries {
            if check_upload_id(&e.name).is_err() {
                continue;
            }
            let path = format!("{}/{}/upload", self.uploads_path(bucket), e.name);
            let Ok(attr) = self.client.stat(&path).await else {
                continue;
            };
            let Ok(bytes) = self.client.inodes().get_xattr(attr.ino, UPLOAD_XATTR).await else {
                continue;
            };
            if let Some(r) = UploadRecord::decode(&bytes) {
                out.push((e.name, r));
            }
        }
        out.sort_by(|a, b| {
            (a.1.key.as_bytes(), a.1.initiated_ns).cmp(&(b.1.key.as_bytes(), b.1.initiated_ns))
        });
        Ok(out)
    }

    /// Removes every upload begun more than `expiry_ns` ago, in every
    /// bucket (their parts' chunks then go to garbage collection).
    /// Answers how many went.
    pub async fn sweep_uploads(&self, expiry_ns: i64) -> usize {
        let Ok(buckets) = self.client.list_long(&self.root).await else {
            return 0;
        };
        let cutoff = now_ns().saturating_sub(expiry_ns);
        let mut removed = 0;
        for b in buckets.into_iter().filter(|b| b.attr.kind == FileKind::Dir) {
            let Ok(uploads) = self.uploads(&b.name).await else {
                continue;
            };
            for (id, r) in uploads {
                if r.initiated_ns < cutoff
                    && self
                        .client
                        .remove(&self.upload_path(&b.name, &id), true)
                        .await
                        .is_ok()
                {
                    tracing::info!(bucket = %b.name, upload = %id, key = %r.key, "removed an expired upload");
                    removed += 1;
                }
            }
        }
        removed
    }
}

impl Gateway {
    /// The answer to a list parts.
    pub(crate) async fn parts_page(&self, i: ListPartsInput) -> S3Result<ListPartsOutput> {
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
        Ok(ListPartsOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(i.upload_id),
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            next_part_number_marker: next,
            part_number_marker: i.part_number_marker,
            parts: Some(page),
            ..Default::default()
        })
    }

    /// The answer to a list multipart uploads.
    pub(crate) async fn uploads_page(
        &self,
        i: ListMultipartUploadsInput,
    ) -> S3Result<ListMultipartUploadsOutput> {
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
        Ok(ListMultipartUploadsOutput {
            bucket: Some(i.bucket),
            prefix: i.prefix,
            key_marker: i.key_marker,
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: next_key,
            uploads: Some(uploads),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etags_are_md5_of_md5s_with_the_count() {
        // Two parts "a" and "b": MD5s 0cc175b9... and 92eb5ffe...
        let e = multipart_etag(&[
            "0cc175b9c0f1b6a831c399e269772661".into(),
            "92eb5ffee6ae2fec3ad71c777531578f".into(),
        ]);
        assert!(e.ends_with("-2"));
        let mut m = Md5::new();
        m.update(
            &hex::decode("0cc175b9c0f1b6a831c399e26977266192eb5ffee6ae2fec3ad71c777531578f")
                .unwrap(),
        );
        assert_eq!(e, format!("{}-2", hex::encode(m.finalize())));
    }

    #[test]
    fn upload_ids_are_never_paths() {
        assert!(check_upload_id(&"a".repeat(32)).is_ok());
        for bad in [
            "../../etc",
            "",
            &"a".repeat(31),
            &format!("{}/", "a".repeat(31)),
        ] {
            assert!(check_upload_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_part_number(0).is_err());
        assert!(check_part_number(10_001).is_err());
        assert_eq!(part_name(7), "00007");
    }

    #[test]
    fn the_oldest_upload_record_decodes() {
        let r = UploadRecord {
            key: "k".into(),
            info: ObjectInfo::default(),
            initiated_ns: 5,
        };
        let bytes = r.encode();
        assert_eq!(hex::encode(&bytes), "00016b0000000000000000000a");
        assert_eq!(UploadRecord::decode(&bytes), Some(r));
        assert_eq!(UploadRecord::decode(&[7, 7]), None);
    }
}
