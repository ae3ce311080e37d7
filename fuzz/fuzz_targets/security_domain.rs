//! Security-domain files and restore blobs (seeded with real ones made for the fixture officers, so mutations
//! get past the share and master-key decryption), compact JWEs (header parse, `dir` decryption with the fixture
//! key) and Shamir shares.
#![no_main]
use coffer_crypto::security_domain as sd;
use coffer_fuzz::fixtures;
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: coffer_fuzz::init(), |data: &[u8]| {
    let f = fixtures();
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = sd::recover_items(s, &f.officers);
        let _ = sd::open_restore_blob(s, &f.officers[0]);
        let _ = sd::jwe_header(s);
        let _ = sd::jwe_decrypt_dir(s, &f.cek);
    }
    if data.len() > 2 {
        let n = usize::from(data[0] % 8) + 2;
        let parts: Vec<&[u8]> = data[1..].chunks(data.len().div_ceil(n).max(1)).collect();
        let _ = sd::shamir_combine(&parts);
    }
});
