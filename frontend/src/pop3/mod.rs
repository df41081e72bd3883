//! POP3: parsing (`parse`), the pure session (`session`, with one file per command group:
//! `authorization`, `transaction`), byte-stuffing (`dotstuff`) and the connection driver
//! (`connection`) that does the I/O.
mod authorization;
pub mod connection;
pub mod dotstuff;
pub mod parse;
pub mod session;
mod transaction;

pub use connection::{serve, Pop3Context, Pop3Settings};
#[cfg(test)]
mod tests;
