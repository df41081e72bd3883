//! Bridgehead back-end store node.
//!
//! One job: serve the gRPC API (`grpc`) over the PostgreSQL mailbox store (`store`).
//! Pure pieces (`address`, `content`, `password`) carry the rules; `store` is the only module
//! that knows sqlx, `grpc` the only one that knows tonic. With the `dev` feature (the binary
//! and the tests): `pgrunner` starts a private PostgreSQL for `bridgehead dev` and the tests,
//! `pki` makes a cluster's certificates — tools around a cluster, not part of serving one.
pub mod address;
pub mod auth;
pub mod chores;
pub mod connector;
pub mod console;
pub mod content;
pub mod directory;
pub mod dsn;
pub mod envelope;
pub mod grpc;
pub mod harvest;
pub mod mailauth;
pub mod metrics;
pub mod names;
pub mod password;
#[cfg(feature = "dev")]
pub mod pgrunner;
#[cfg(feature = "dev")]
pub mod pki;
pub mod relay;
pub mod secrets;
pub mod server;
pub mod store;
pub mod submit;
pub mod tls_client;
pub mod tls_dane;
pub mod trace;
pub mod tracking;
pub mod transport;

pub use server::{BackendConfig, BackendHandle};
pub use store::Store;
pub use store::StoreError;
