//! SMTP: parsing (`parse`, over smtp-proto), the DATA receiver (`data`), the pure session
//! (`session`, with one file per command group: `auth`, `envelope`), the connection
//! driver (`connection`) that does the I/O, its short memory of accepted recipients
//! (`recipients`) and of client addresses refused for harvesting (`harvest`).
mod auth;
pub mod connection;
pub mod data;
mod envelope;
pub mod harvest;
pub mod intake;
pub mod parse;
pub mod recipients;
pub mod session;
pub mod spool;

pub use connection::{serve, SmtpContext};

#[cfg(test)]
mod tests;
