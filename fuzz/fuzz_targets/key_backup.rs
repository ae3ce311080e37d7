//! Key backup blobs, behind their AES-GCM seal: the opened JSON and every version's key material.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: coffer_fuzz::init(), |data: &[u8]| {
    let _ = coffer_core::ops::backup_restore::fuzz_parse_opened_blob(data);
});
