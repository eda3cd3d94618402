//! Protected resource and authorization server metadata from untrusted bytes.
#![no_main]

use atlogin_core::discovery::{AuthServerMetadata, parse_protected_resource};
use atlogin_core::identity::Mode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pds = url::Url::parse("https://pds.example.com").expect("fixed url");
    for mode in [Mode::Production, Mode::Development] {
        if let Ok(issuer) = parse_protected_resource(data, &pds, mode) {
            assert_eq!(issuer.path(), "/");
        }
        if let Ok(metadata) = AuthServerMetadata::parse(data, "https://bsky.social", mode) {
            assert_eq!(metadata.issuer, "https://bsky.social");
        }
    }
});
