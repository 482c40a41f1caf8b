//! The application-layer parsers behind the fast rules and behaviours (DNS messages and
//! names, HTTP request targets and status lines, login-failure replies, SMB1/SMB2, NTLMSSP
//! and DCE-RPC requests) on arbitrary payload heads, whole and cut: they return something
//! or nothing, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mld_flow::behave::{auth, webscan};
use mld_flow::{dns, http, smb};

fuzz_target!(|data: &[u8]| {
    for cut in [false, true] {
        if let Some(m) = dns::message(data, cut) {
            assert!(m.name.len() <= 255 + 64, "name {} bytes", m.name.len());
            let _ = dns::registered_domain(&m.name);
        }
        let mut name = String::new();
        let _ = dns::query_name(data, cut, &mut name);
    }
    let _ = http::attack(data);
    let _ = http::request_target(data);
    let _ = webscan::status(data);
    let _ = auth::failed_login(data);
    let _ = smb::request(data);
    let _ = smb::dcerpc(data);
});
