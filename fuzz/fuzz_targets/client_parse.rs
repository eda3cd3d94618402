//! The atproto client's parsers of untrusted input: the callback query the
//! browser brings back, and the PAR and token endpoint answers.
#![no_main]

use atlogin_core::client::{CallbackParams, parse_par_response, parse_token_response};
use atlogin_core::identity::Mode;
use atlogin_core::time::UnixTime;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(query) = std::str::from_utf8(data) {
        let _ = CallbackParams::parse(query);
    }
    if let Ok(par) = parse_par_response(data) {
        assert!(!par.request_uri.is_empty() && par.expires_in > 0);
    }
    for mode in [Mode::Production, Mode::Development] {
        if let Ok(tokens) = parse_token_response(data, UnixTime::from_secs(1_700_000_000), mode) {
            assert!(tokens.scope.contains("atproto"));
        }
    }
});
