//! cargo-fuzz entry point; the target and its invariants are in
//! `fuzz/checks/src/content.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bridgehead_fuzz_checks::content::run(data));
