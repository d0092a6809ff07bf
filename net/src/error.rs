//! Why an exchange with a peer failed below the application level.

use std::time::Duration;

use cairn_proto::frame::FrameError;

use crate::tls::TlsError;

/// Why an exchange with a peer failed below the application level.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("connection to {addr} timed out after {timeout:?}")]
    ConnectTimeout { addr: String, timeout: Duration },
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("sending: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("stream closed: {0}")]
    Closed(#[from] quinn::ClosedStream),
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("bad address {0:?}")]
    BadAddress(String),
    #[error("endpoint: {0}")]
    Endpoint(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
}

impl NetError {
    /// Whether the error says the peer could not be reached at all (as
    /// opposed to failing mid-exchange).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            NetError::Connect { .. } | NetError::ConnectTimeout { .. } | NetError::Connection(_)
        )
    }
}
