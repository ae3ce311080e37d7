//! Request bodies: every JSON body type of the keys and RBAC APIs, and the JWK import conversion.
#![no_main]
use coffer_api::keys::*;
use coffer_api::rbac::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: coffer_fuzz::init(), |data: &[u8]| {
    let _ = serde_json::from_slice::<KeyCreateParameters>(data);
    let _ = serde_json::from_slice::<KeyUpdateParameters>(data);
    let _ = serde_json::from_slice::<KeyOperationsParameters>(data);
    let _ = serde_json::from_slice::<KeySignParameters>(data);
    let _ = serde_json::from_slice::<KeyVerifyParameters>(data);
    let _ = serde_json::from_slice::<KeyReleaseParameters>(data);
    let _ = serde_json::from_slice::<GetRandomBytesRequest>(data);
    let _ = serde_json::from_slice::<RoleDefinitionCreateParameters>(data);
    let _ = serde_json::from_slice::<RoleAssignmentCreateParameters>(data);
    if let Ok(p) = serde_json::from_slice::<KeyImportParameters>(data) {
        let _ = coffer_server::convert::import_material(&p.key);
    }
    if let Ok(jwk) = serde_json::from_slice::<JsonWebKey>(data) {
        let _ = coffer_server::convert::import_material(&jwk);
    }
});
