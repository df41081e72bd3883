//! SMTP: parsing (`parse`, over smtp-proto), the DATA receiver (`data`), the pure session
//! (`session`, with one file per command group: `auth`, `envelope`) and the connection
//! driver (`connection`) that does the I/O.
mod auth;
pub mod connection;
pub mod data;
mod envelope;
pub mod parse;
pub mod session;

pub use connection::{serve, SmtpContext};

#[cfg(test)]
mod tests;
