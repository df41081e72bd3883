//! Outbound TLS policy, pure parsing and decisions beside `fit.rs`, and the one fetch:
//! `mta_sts` (RFC 8461) parses the `_mta-sts` record and the policy file, matches MX hosts
//! and renders our own policy; `fetch` gets a domain's policy over HTTPS; `dane` (RFC 7672)
//! reads TLSA answers and matches certificates; `tls_required` reads a sender's waiver
//! (RFC 8689 §5). `transport/sts.rs` caches policies,
//! `transport/dane.rs` asks the validating resolver, and `route.rs` applies both.
pub mod dane;
pub mod fetch;
pub mod mta_sts;
pub mod tls_required;
