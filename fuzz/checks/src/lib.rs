//! The fuzz targets' bodies: each module's `run` takes one input and panics when one of its
//! invariants breaks (the module header says which). `cargo fuzz` drives them from `fuzz/`
//! (coverage-guided, `fuzz/run`); `tests/brief.rs` replays the seed corpora and the
//! regressions and runs a few thousand mutations of them in every `cargo test`.
pub mod address_relay;
pub mod connector_route;
pub mod content;
pub mod dsn_build;
pub mod forged_results;
pub mod milter_reply;
pub mod pop3_session;
pub mod smtp_session;
pub mod srs;

/// A target: takes one input, panics when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target, by its cargo-fuzz name.
pub const TARGETS: &[(&str, Target)] = &[
    ("pop3_session", pop3_session::run),
    ("smtp_session", smtp_session::run),
    ("address_relay", address_relay::run),
    ("connector_route", connector_route::run),
    ("dsn_build", dsn_build::run),
    ("content", content::run),
    ("forged_results", forged_results::run),
    ("srs", srs::run),
    ("milter_reply", milter_reply::run),
];
