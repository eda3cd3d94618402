//! Compact JWS parsing and verification against a fixed key set, then claim checks.
//!
//! Nothing here may panic, whatever the token. Seeds: `fuzz/seeds/jws_verify`.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use atlogin_core::jose::{ClaimsValidation, DefaultProvider, Jwk, JwkSet, Verifier};
use atlogin_core::time::UnixTime;
use libfuzzer_sys::fuzz_target;

/// The RFC 7515 A.3 (EC) and A.2 (RSA) public keys, so the seeds' signatures verify.
static KEYS: LazyLock<JwkSet> = LazyLock::new(|| {
    let ec = r#"{"kty":"EC","crv":"P-256","kid":"ec","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
    let rsa = r#"{"kty":"RSA","kid":"rsa","e":"AQAB","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"}"#;
    let parse = |json: &str| Jwk::from_json(json.as_bytes()).expect("fixed key parses");
    JwkSet::new(vec![parse(ec), parse(rsa)])
});

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let verifier = Verifier::new(DefaultProvider::get());
    if let Ok(jws) = verifier.parse(token) {
        let _ = jws.select_key(&KEYS);
    }
    if let Ok(verified) = verifier.verify(token, &KEYS) {
        let validation =
            ClaimsValidation::new(UnixTime::from_secs(1_300_819_300), Duration::from_secs(60))
                .with_issuer("joe")
                .with_audience("rp")
                .with_max_age(Duration::from_secs(300));
        let _ = verified.validate(&validation);
    }
});
