//! DPoP proof verification for a fixed request, and recognition of nonce challenges
//! in untrusted response bodies and `WWW-Authenticate` values.
#![no_main]

use std::time::Duration;

use atlogin_core::dpop::{DpopNonces, DpopProofCheck, is_nonce_challenge, verify_proof};
use atlogin_core::jose::DefaultProvider;
use atlogin_core::secret::AccessToken;
use atlogin_core::time::UnixTime;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = std::str::from_utf8(data) {
        let url = url::Url::parse("https://server.example.com/token").expect("fixed url");
        let token = AccessToken::new("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU");
        let now = UnixTime::from_secs(1_562_262_616);
        let check = DpopProofCheck::new(&Method::POST, &url, now, Duration::from_secs(300));
        let _ = verify_proof(proof, &check, DefaultProvider::get());
        let bound = check.with_nonce("n").with_access_token(&token);
        let _ = verify_proof(proof, &bound, DefaultProvider::get());
    }

    let _ = is_nonce_challenge(StatusCode::BAD_REQUEST, &HeaderMap::new(), data);
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::WWW_AUTHENTICATE, value.clone());
        let _ = is_nonce_challenge(StatusCode::UNAUTHORIZED, &headers, b"");
        headers.insert("dpop-nonce", value);
        let url = url::Url::parse("https://as.example.com/par").expect("fixed url");
        let mut nonces = DpopNonces::new();
        if nonces.handle_response(&url, &headers) == Ok(true) {
            assert!(nonces.nonce_for(&url).is_some());
        }
    }
});
