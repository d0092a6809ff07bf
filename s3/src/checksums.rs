//! The digests of an upload, taken as its bytes stream past: MD5 (the
//! ETag, and `Content-MD5` if sent) and the `x-amz-checksum-*`
//! algorithm the client named, checked against the header or the
//! aws-chunked trailer that carries its value.

use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Md5};
use s3s::dto::{Checksum, ChecksumAlgorithm};
use s3s::{s3_error, S3Result};

/// The algorithms' names, as S3 spells them, with their values.
fn pairs(c: &Checksum) -> Vec<(String, Option<String>)> {
    vec![
        ("CRC32".into(), c.checksum_crc32.clone()),
        ("CRC32C".into(), c.checksum_crc32c.clone()),
        ("SHA1".into(), c.checksum_sha1.clone()),
        ("SHA256".into(), c.checksum_sha256.clone()),
        ("CRC64NVME".into(), c.checksum_crc64nvme.clone()),
    ]
}

/// What a PUT says its bytes' digests are.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    /// `Content-MD5`, base64.
    pub md5: Option<String>,
    pub checksums: Checksum,
    /// `x-amz-checksum-algorithm` / `x-amz-sdk-checksum-algorithm`.
    pub algorithm: Option<String>,
}

/// The [`Expected`] digests of a PutObject's or UploadPart's input (the
/// two types share these fields).
#[macro_export]
macro_rules! expected_of {
    ($i:expr) => {
        $crate::checksums::Expected {
            md5: $i.content_md5.clone(),
            checksums: s3s::dto::Checksum {
                checksum_crc32: $i.checksum_crc32.clone(),
                checksum_crc32c: $i.checksum_crc32c.clone(),
                checksum_sha1: $i.checksum_sha1.clone(),
                checksum_sha256: $i.checksum_sha256.clone(),
                checksum_crc64nvme: $i.checksum_crc64nvme.clone(),
                ..Default::default()
            },
            algorithm: $i
                .checksum_algorithm
                .as_ref()
                .map(|a| a.as_str().to_string()),
        }
    };
}

impl Expected {
    /// Adds values that came in an aws-chunked body's trailer.
    pub fn add_trailer(&mut self, trailer: &hyper::HeaderMap) -> S3Result<()> {
        let take = |name: &str| -> S3Result<Option<String>> {
            trailer
                .get(name)
                .map(|v| {
                    v.to_str()
                        .map(str::to_string)
                        .map_err(|_| s3_error!(InvalidArgument, "{name} is not text"))
                })
                .transpose()
        };
        let c = &mut self.checksums;
        for (slot, name) in [
            (&mut c.checksum_crc32, "x-amz-checksum-crc32"),
            (&mut c.checksum_crc32c, "x-amz-checksum-crc32c"),
            (&mut c.checksum_sha1, "x-amz-checksum-sha1"),
            (&mut c.checksum_sha256, "x-amz-checksum-sha256"),
            (&mut c.checksum_crc64nvme, "x-amz-checksum-crc64nvme"),
        ] {
            if let Some(v) = take(name)? {
                *slot = Some(v);
            }
        }
        Ok(())
    }
}

/// Digests of a stream of bytes.
pub struct Digests {
    md5: Md5,
    hasher: ChecksumHasher,
}

impl Digests {
    /// Hashes MD5 and every algorithm `expected` names or gives a value for.
    pub fn for_upload(expected: &Expected) -> S3Result<Self> {
        let mut hasher = ChecksumHasher::default();
        let c = &expected.checksums;
        let named = expected.algorithm.as_deref();
        if c.checksum_crc32.is_some() || named == Some(ChecksumAlgorithm::CRC32) {
            hasher.crc32 = Some(Default::default());
        }
        if c.checksum_crc32c.is_some() || named == Some(ChecksumAlgorithm::CRC32C) {
            hasher.crc32c = Some(Default::default());
        }
        if c.checksum_sha1.is_some() || named == Some(ChecksumAlgorithm::SHA1) {
            hasher.sha1 = Some(Default::default());
        }
        if c.checksum_sha256.is_some() || named == Some(ChecksumAlgorithm::SHA256) {
            hasher.sha256 = Some(Default::default());
        }
        if c.checksum_crc64nvme.is_some() || named == Some(ChecksumAlgorithm::CRC64NVME) {
            hasher.crc64nvme = Some(Default::default());
        }
        if let Some(a) = named {
            if !pairs(c).iter().any(|(n, _)| n == a) {
                return Err(s3_error!(
                    InvalidArgument,
                    "unknown checksum algorithm {a:?}"
                ));
            }
        }
        Ok(Digests {
            md5: Md5::new(),
            hasher,
        })
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.md5.update(bytes);
        self.hasher.update(bytes);
    }

    /// The hex MD5 and the verified checksums `(algorithm, base64)`; a
    /// value that does not match what was read is `BadDigest`.
    pub fn finish(self, expected: &Expected) -> S3Result<(String, Vec<(String, String)>)> {
        let md5 = self.md5.finalize();
        if let Some(sent) = &expected.md5 {
            let sent = base64_simd::STANDARD
                .decode_to_vec(sent)
                .map_err(|_| s3_error!(InvalidDigest, "Content-MD5 is not base64"))?;
            if sent != md5 {
                return Err(s3_error!(
                    BadDigest,
                    "the Content-MD5 does not match the body"
                ));
            }
        }
        let got = self.hasher.finalize();
        let mut kept = Vec::new();
        for ((name, sent), (_, got)) in pairs(&expected.checksums).into_iter().zip(pairs(&got)) {
            match (sent, got) {
                (Some(s), Some(g)) if s != g => {
                    return Err(s3_error!(
                        BadDigest,
                        "the {name} checksum sent ({s}) does not match the body ({g})"
                    ))
                }
                (_, Some(g)) => kept.push((name, g)),
                _ => {}
            }
        }
        Ok((hex::encode(md5), kept))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_and_named_checksums_are_verified() {
        let body = b"hello";
        let mut ok = Expected {
            md5: Some("XUFAKrxLKna5cZ2REBfFkg==".into()),
            algorithm: Some("CRC32".into()),
            ..Default::default()
        };
        let mut d = Digests::for_upload(&ok).unwrap();
        d.update(body);
        let (etag, kept) = d.finish(&ok).unwrap();
        assert_eq!(etag, "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(kept, vec![("CRC32".to_string(), "NhCmhg==".to_string())]);

        ok.checksums.checksum_crc32 = Some("AAAAAA==".into());
        let mut d = Digests::for_upload(&ok).unwrap();
        d.update(body);
        assert!(d.finish(&ok).is_err(), "a wrong CRC32 is refused");

        let bad_md5 = Expected {
            md5: Some("AAAAAAAAAAAAAAAAAAAAAA==".into()),
            ..Default::default()
        };
        let mut d = Digests::for_upload(&bad_md5).unwrap();
        d.update(body);
        assert!(
            d.finish(&bad_md5).is_err(),
            "a wrong Content-MD5 is refused"
        );
    }
}
