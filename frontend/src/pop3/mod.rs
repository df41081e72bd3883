//! POP3: parsing (`parse`), the pure session (`session`, with one file per command group:
//! `authorization`, `transaction`), byte-stuffing (`dotstuff`) and the connection driver
//! (`connection`) that does the I/O, with the maildrop lease (`lease`) and the read-ahead
//! (`read_ahead`) apart.
mod authorization;
pub mod connection;
pub mod dotstuff;
mod lease;
pub mod parse;
mod read_ahead;
pub mod session;
mod transaction;

pub use connection::{serve, Pop3Context, Pop3Settings};
#[cfg(test)]
mod tests;
