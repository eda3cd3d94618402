//! Handle, DID and typed-identifier parsing, and DID documents, from untrusted text.
//!
//! A parsed handle or DID must round-trip through its own text, and a parsed
//! document must name the DID it was parsed for.
#![no_main]

use atlogin_core::identity::{AtIdentifier, Did, DidDocument, Handle, Mode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for mode in [Mode::Production, Mode::Development] {
            if let Ok(handle) = Handle::parse(text, mode) {
                assert_eq!(Handle::parse(handle.as_str(), mode).as_ref(), Ok(&handle));
                assert_eq!(handle.as_str(), text.to_ascii_lowercase());
            }
            if let Ok(did) = Did::parse(text, mode) {
                assert_eq!(did.as_str(), text);
            }
            let _ = AtIdentifier::parse(text, mode);
        }
    }
    let did = Did::parse("did:plc:ewvi7nxzyoun6zhxrhs64oiz", Mode::Production).expect("fixed DID");
    for mode in [Mode::Production, Mode::Development] {
        if let Ok(document) = DidDocument::parse(data, &did, mode) {
            assert_eq!(document.id, did);
        }
    }
});
