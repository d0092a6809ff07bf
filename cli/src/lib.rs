//! The `cairn` binary's library part: what the test suite uses of the CLI
//! besides running it — the cluster's certificate authority ([`ca`]).

pub mod ca;
