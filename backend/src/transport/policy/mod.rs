//! Outbound TLS policy (RFC 8461 MTA-STS; DANE and TLS-RPT are not built yet): pure parsing
//! and decisions beside `fit.rs`, and the one fetch. `mta_sts` parses the `_mta-sts` record
//! and the policy file, matches MX hosts and renders our own policy; `fetch` gets a domain's
//! policy over HTTPS. `transport/sts.rs` caches policies and `route.rs` applies them.
pub mod fetch;
pub mod mta_sts;
