//! Outbound TLS policy (RFC 8461 MTA-STS; DANE and TLS-RPT to come): pure parsing and
//! decisions beside `fit.rs`; fetching and caching are the transport's. `mta_sts` parses the
//! `_mta-sts` record and the policy file and matches MX hosts against it (not yet consulted
//! by the transport: the fetch, the cache and enforcement are the next step).
pub mod fetch;
pub mod mta_sts;
