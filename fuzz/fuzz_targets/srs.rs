//! cargo-fuzz entry point; the target and its invariants are in `fuzz/checks/src/srs.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bridgehead_fuzz_checks::srs::run(data));
