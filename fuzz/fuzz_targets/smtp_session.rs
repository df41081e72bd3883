//! cargo-fuzz entry point; the target and its invariants are in
//! `fuzz/checks/src/smtp_session.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bridgehead_fuzz_checks::smtp_session::run(data));
