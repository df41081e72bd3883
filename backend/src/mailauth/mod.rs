//! Mail authentication (RFC 6376 DKIM, and — to come — SPF, DMARC, ARC): the back-end's
//! capability, since checks and signatures are made where a message is committed or sent.
//! `dkim` makes keys and signs outgoing mail with them (mail-auth does the cryptography);
//! `signer` finds the keys for a message's From domain, opened from the store and kept for a
//! minute.
pub mod dkim;
pub mod signer;
