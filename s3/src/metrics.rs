//! Requests per S3 operation on the gateway's `/metrics`
//! (`cairn_requests_total{op, outcome}`, `cairn_request_seconds{op}`, as
//! every Cairn server counts its requests), and the request id each
//! answer carries (`x-amz-request-id`, also on the request's tracing
//! span).
//!
//! s3s names the operation only once it has routed the request; the
//! access check it runs on every routed request ([`OpRecorder`]) writes
//! the name into a slot the HTTP layer put in the request, and reads it
//! back when the answer goes out.

use std::sync::{Arc, Mutex};

use s3s::access::{S3Access, S3AccessContext};
use s3s::{s3_error, S3Result};

/// The operations the gateway serves, as metric labels (a fixed set, so
/// the labels stay bounded); anything else is `Other`.
const KNOWN_OPS: &[&str] = &[
    "AbortMultipartUpload",
    "CompleteMultipartUpload",
    "CopyObject",
    "CreateBucket",
    "CreateMultipartUpload",
    "DeleteBucket",
    "DeleteObject",
    "DeleteObjects",
    "GetBucketLocation",
    "GetObject",
    "HeadBucket",
    "HeadObject",
    "ListBuckets",
    "ListMultipartUploads",
    "ListObjects",
    "ListObjectsV2",
    "ListParts",
    "PutObject",
    "UploadPart",
    "UploadPartCopy",
];

/// The label of operation `name`.
pub fn op_label(name: &str) -> &'static str {
    KNOWN_OPS
        .iter()
        .find(|k| **k == name)
        .copied()
        .unwrap_or("Other")
}

/// Where the access check leaves the operation's name for the HTTP
/// layer; `Unrouted` if s3s refused the request before routing it.
#[derive(Clone, Default)]
pub struct OpSlot(pub Arc<Mutex<Option<&'static str>>>);

impl OpSlot {
    pub fn get(&self) -> &'static str {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or("Unrouted")
    }
}

/// s3s's access hook: records the operation, then refuses requests with
/// no valid signature (what s3s does when no hook is set).
pub struct OpRecorder;

#[async_trait::async_trait]
impl S3Access for OpRecorder {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = op_label(cx.s3_op().name());
        if let Some(slot) = cx.extensions_mut().get::<OpSlot>() {
            *slot.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(op);
        }
        match cx.credentials() {
            Some(_) => Ok(()),
            None => Err(s3_error!(AccessDenied, "Signature is required")),
        }
    }
}

/// A new request id: 16 hex digits.
pub fn request_id() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_a_fixed_set() {
        assert_eq!(op_label("GetObject"), "GetObject");
        assert_eq!(op_label("PutBucketPolicy"), "Other");
        assert_eq!(OpSlot::default().get(), "Unrouted");
        assert_eq!(request_id().len(), 16);
    }
}
