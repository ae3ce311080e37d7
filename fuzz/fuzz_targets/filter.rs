//! `$filter` expressions of the role-definition and role-assignment lists, and RBAC scopes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: coffer_fuzz::init(), |data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = coffer_server::routes::rbac::fuzz_filter(s);
        let _ = coffer_core::rbac::Scope::parse(s);
    }
});
