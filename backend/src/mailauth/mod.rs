//! Mail authentication (RFC 6376 DKIM, RFC 7208 SPF, RFC 7489 DMARC; ARC to come): the back-end's
//! capability, since checks and signatures are made where a message is committed or sent.
//! `dkim` makes keys and signs outgoing mail with them (mail-auth does the cryptography);
//! `signer` finds the keys for a message's From domain, opened from the store and kept for a
//! minute; `inbound` checks mail from other MTAs (iprev, SPF, DKIM, DMARC) and writes the
//! Authentication-Results header.
pub mod dkim;
pub mod inbound;
pub mod signer;
