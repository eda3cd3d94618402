//! JWK, JWK Set and private JWK parsing. A key that parses must serialize and parse
//! back to the same key, with the same thumbprint.
#![no_main]

use atlogin_core::jose::{EcPrivateKey, Jwk, JwkSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(jwk) = Jwk::from_json(data) {
        let json = serde_json::to_vec(&jwk).expect("a parsed key serializes");
        let again = Jwk::from_json(&json).expect("a serialized key parses");
        assert_eq!(again, jwk);
        assert_eq!(again.thumbprint(), jwk.thumbprint());
    }
    if let Ok(set) = JwkSet::from_json(data) {
        let json = serde_json::to_vec(&set).expect("a parsed set serializes");
        assert_eq!(
            JwkSet::from_json(&json).expect("a serialized set parses"),
            set
        );
    }
    if let Ok(key) = EcPrivateKey::from_jwk_json(data) {
        let json = key.to_jwk_json(None);
        assert_eq!(
            EcPrivateKey::from_jwk_json(json.as_bytes()).expect("round trip"),
            key
        );
    }
});
