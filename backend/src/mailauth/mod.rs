//! Mail authentication (RFC 6376 DKIM, RFC 7208 SPF, RFC 7489 DMARC, RFC 8617 ARC): the
//! back-end's capability, since checks and signatures are made where a message is committed
//! or sent. `dkim` makes keys and signs outgoing mail with them (mail-auth does the
//! cryptography); `signer` finds the keys of a domain, opened from the store and kept for a
//! minute; `inbound` checks mail from other MTAs (iprev, SPF, DKIM, ARC, DMARC) and writes the
//! Authentication-Results header; `policy` is what a receiving domain asks of those checks;
//! `seal` adds our ARC set to mail we forward; `srs` rewrites a forwarded message's envelope
//! sender and reverses bounces to it; `forged` renames Authentication-Results that claim our
//! checks; `weak` refuses the signatures RFC 8301 forbids.
pub mod dkim;
pub mod forged;
pub mod inbound;
pub mod policy;
pub mod seal;
pub mod signer;
pub mod srs;
pub mod weak;
