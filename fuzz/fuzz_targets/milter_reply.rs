//! cargo-fuzz entry point; the target and its invariants are in
//! `fuzz/checks/src/milter_reply.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bridgehead_fuzz_checks::milter_reply::run(data));
