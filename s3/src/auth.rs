//! Which secret signs for which access key: s3s verifies the SigV4
//! signature (headers, presigned URLs, aws-chunked bodies) with the
//! secret this returns, and refuses unsigned requests.

use std::collections::HashMap;

use s3s::auth::{S3Auth, SecretKey};
use s3s::{s3_error, S3Result};

use crate::config::AccessKey;

pub struct KeyAuth {
    secrets: HashMap<String, String>,
}

impl KeyAuth {
    pub fn new(keys: &[AccessKey]) -> Self {
        KeyAuth {
            secrets: keys
                .iter()
                .map(|k| (k.id.clone(), k.secret.clone()))
                .collect(),
        }
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.secrets.get(access_key) {
            Some(s) => Ok(SecretKey::from(s.clone())),
            None => Err(s3_error!(InvalidAccessKeyId)),
        }
    }
}
