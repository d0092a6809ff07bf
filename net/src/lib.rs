//! cairn-net: Cairn's transport. Every hop is QUIC (quinn) with mutual
//! TLS (rustls); what travels is `cairn-proto`'s, how it travels is here:
//!
//! * [`endpoint`]: the transport settings every endpoint shares, server and
//!   client endpoints, dialling a peer, closing a connection when its
//!   peer's certificate expires; [`udp_socket`]: the UDP socket under
//!   them, each send kept within what the kernel takes;
//! * [`pool`]: connections kept open per peer address;
//! * [`exchange`]: the caller's side of one request per stream;
//! * [`serve`]: the server's side, with per-peer limits;
//! * [`tls`] and [`live_cert`]: certificates read from files, the rustls
//!   configurations, a verified peer's identity, a certificate replaced
//!   without a restart;
//! * [`meta_caller`]: calling the metadata group (leader discovery,
//!   redirects, retries), with the pure bookkeeping of [`avoid`];
//! * `metrics` (feature `metrics`, servers only): the `/metrics` endpoint.
//!
//! Depends on `cairn-proto` only of ours. Certificate issuance is the
//! CLI's (`cairn cert`): no library links rcgen.

pub mod avoid;
pub mod endpoint;
pub mod error;
pub mod exchange;
pub mod live_cert;
pub mod meta_caller;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod pool;
pub mod serve;
pub mod tls;
pub mod udp_socket;

pub use endpoint::{client_endpoint, connect, resolve, server_endpoint};
pub use error::NetError;
pub use exchange::{call, call_chunk, exchange};
pub use meta_caller::{MetaCallError, MetaCaller};
pub use pool::ConnPool;
pub use serve::{answer, read_request, reply, serve, Peer};
