//! The S3 gateway: the S3 REST API (through `s3s`) on the cluster's
//! namespace. A bucket is a directory under the configured root and an
//! object a file under it, so what S3 writes the mount sees, and the
//! reverse. The gateway is a client of the cluster like the mount.

pub mod auth;
pub mod checksums;
pub mod conditions;
pub mod config;
pub mod copy;
pub mod gateway;
pub mod keys;
pub mod listing;
pub mod metrics;
pub mod multipart;
pub mod object_info;
mod operations;
pub mod server;
pub mod walk;

pub use config::{AccessKey, GatewayConfig};
pub use server::Server;
