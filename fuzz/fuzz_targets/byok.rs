//! `.byok` blobs: the JSON file, its ciphertext's RSA-OAEP + RFC 5649 unwrap under the fixture KEK (seeds are
//! real blobs for it), and behind the unwrap the parser of the plaintext key for every key family.
#![no_main]
use coffer_fuzz::fixtures;
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: coffer_fuzz::init(), |data: &[u8]| {
    let f = fixtures();
    let _ = coffer_core::ops::byok::fuzz_parse_blob(data, data);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data)
        && let Some(c) = v.get("ciphertext").and_then(|c| c.as_str())
        && let Some(ct) = coffer_core::ops::byok::decode_base64_lenient(c)
        && let Ok(plain) = coffer_crypto::byok::byok_unwrap(&f.kek, &ct)
    {
        let _ = coffer_core::ops::byok::fuzz_parse_blob(b"{}", plain.expose_secret());
    }
});
