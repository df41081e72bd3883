//! Bridgehead front-end node: stateless protocol listeners that proxy every mailbox
//! operation to back-ends over gRPC.
//!
//! `pop3` and `smtp` hold the protocols (pure parsing and sessions, plus thin drivers), `tls`
//! the rustls setup and the plain-or-TLS stream, `backend_client` the only tonic code (with
//! `discovery` deciding which back-end addresses it calls) speaking the pure types of `mail`,
//! and `server` the listeners, connection limit and shutdown.
pub mod backend_client;
pub mod discovery;
pub mod filter;
pub mod limits;
pub mod lines;
pub mod mail;
pub mod metrics;
pub mod pop3;
pub mod proxy;
pub mod sasl;
pub mod server;
pub mod smtp;
pub mod tls;
pub mod wire;

/// Shared by unit tests: a small deterministic pseudo-random source (xorshift64).
#[cfg(test)]
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

pub use server::{FrontendConfig, FrontendError, FrontendHandle};
