//! Full-backup state, behind its AES-GCM seal: the opened state document and what a restore builds from it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: coffer_fuzz::init(), |data: &[u8]| {
    let _ = coffer_core::ops::full_backup::fuzz_parse_opened_state(data);
});
