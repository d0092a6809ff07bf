//! What the gateway keeps about an object beside its bytes: the ETag,
//! the checksums it was sent with and the headers S3 returns, in one
//! content-bound extended attribute (`cairn_proto::meta_rpc::
//! CONTENT_BOUND_XATTR_PREFIX`) committed with the bytes. A write to the
//! file through the mount drops it; such a file is then served with an
//! ETag made from its inode and version (see [`fallback_etag`]).
//!
//! **Stored format**: postcard of [`StoredInfo`], whose variant index is
//! the format version. New versions are new variants at the end; the test
//! below decodes the oldest bytes.

use serde::{Deserialize, Serialize};

use cairn_proto::meta_rpc::InodeAttr;

/// The attribute's name.
pub const XATTR: &str = "user.cairn.content.s3";

/// Largest encoded [`ObjectInfo`] (the metadata's attribute value limit
/// is larger; S3 limits user metadata to 2 KiB).
pub const MAX_INFO_BYTES: usize = 16 << 10;

/// An object's description as the gateway serves it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// Without quotes: the hex MD5 of the bytes for a single-part upload.
    pub etag: String,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// As the client sent it (an HTTP date).
    pub expires: Option<String>,
    /// `x-amz-meta-*` without the prefix, sorted by name.
    pub user_metadata: Vec<(String, String)>,
    /// Checksums the client sent and the gateway verified, as
    /// `(algorithm, base64 value)`, e.g. `("CRC32", "NhCmhg==")`.
    pub checksums: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize)]
enum StoredInfo {
    V1(ObjectInfo),
}

#[derive(Debug, thiserror::Error)]
pub enum InfoError {
    #[error("the object's description does not decode: {0}")]
    Decode(#[from] postcard::Error),
    #[error("the object's description is {0} bytes, more than the {MAX_INFO_BYTES} kept")]
    TooBig(usize),
}

impl ObjectInfo {
    pub fn encode(&self) -> Result<Vec<u8>, InfoError> {
        let bytes = postcard::to_allocvec(&StoredInfo::V1(self.clone()))?;
        if bytes.len() > MAX_INFO_BYTES {
            return Err(InfoError::TooBig(bytes.len()));
        }
        Ok(bytes)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, InfoError> {
        if bytes.len() > MAX_INFO_BYTES {
            return Err(InfoError::TooBig(bytes.len()));
        }
        match postcard::from_bytes(bytes)? {
            StoredInfo::V1(info) => Ok(info),
        }
    }
}

/// The ETag of a file with no description (written through the mount or
/// `cairn put`): changes whenever the file does, and carries a `-`, as
/// multipart ETags do, so clients do not take it for an MD5.
pub fn fallback_etag(attr: &InodeAttr) -> String {
    // The inode and its version name one state of one file.
    format!("{:016x}{:016x}-1", attr.ino.0, attr.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ObjectInfo {
        ObjectInfo {
            etag: "5d41402abc4b2a76b9719d911017c592".into(),
            content_type: Some("text/plain".into()),
            user_metadata: vec![("a".into(), "b".into())],
            checksums: vec![("CRC32".into(), "NhCmhg==".into())],
            ..Default::default()
        }
    }

    #[test]
    fn round_trips() {
        let info = sample();
        assert_eq!(ObjectInfo::decode(&info.encode().unwrap()).unwrap(), info);
    }

    /// Format 1's bytes, pinned: a change to `ObjectInfo`'s fields must
    /// come as a new `StoredInfo` variant.
    #[test]
    fn decodes_the_oldest_format() {
        let bytes = sample().encode().unwrap();
        let pinned = PINNED_V1;
        assert_eq!(
            hex::encode(&bytes),
            pinned,
            "format 1 no longer encodes as pinned"
        );
        let back = ObjectInfo::decode(&hex::decode(pinned).unwrap()).unwrap();
        assert_eq!(back, sample());
    }

    const PINNED_V1: &str = "00203564343134303261626334623261373662393731396439313130313763353932\
                             010a746578742f706c61696e000000000001016101620105435243333208\
                             4e68436d68673d3d";

    #[test]
    fn garbage_and_oversized_values_are_refused() {
        assert!(ObjectInfo::decode(&[9, 9, 9]).is_err());
        assert!(ObjectInfo::decode(&vec![0; MAX_INFO_BYTES + 1]).is_err());
        let huge = ObjectInfo {
            user_metadata: vec![("k".into(), "v".repeat(MAX_INFO_BYTES))],
            ..Default::default()
        };
        assert!(matches!(huge.encode(), Err(InfoError::TooBig(_))));
    }

    #[test]
    fn fallback_etags_change_with_the_file_and_are_not_md5_shaped() {
        let mut a = InodeAttr {
            ino: cairn_proto::InodeId(7),
            kind: cairn_proto::meta_rpc::FileKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 5,
            nlink: 1,
            mtime_ns: 0,
            ctime_ns: 0,
            version: 3,
            atime_ns: 0,
        };
        let e1 = fallback_etag(&a);
        a.version = 4;
        assert_ne!(fallback_etag(&a), e1);
        assert!(e1.contains('-'));
    }
}
