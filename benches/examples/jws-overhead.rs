//! The JWS overhead over the bare signature, in instructions rather than time
//! (scripts/bench-instructions runs this under callgrind, whose counts do not
//! move with the machine's load): signs the ID token's signing input bare, or
//! mints the whole ID token, `n` times.
//!
//!   jws-overhead <bare|jws> <p256|ring|rs256> <n>

use std::hint::black_box;

use atlogin_core::jose::{
    CryptoProvider, DefaultProvider, EcPrivateKey, JwsSigningKey, RsaPrivateKeyDer,
};
use atlogin_core::secret::SecretBytes;
use rand_core::SeedableRng;

const RSA_PKCS8: &[u8] = include_bytes!("../../core/testdata/rfc7515-a2-rsa.pkcs8.der");

#[expect(clippy::print_stderr, reason = "a command-line tool's usage line")]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, what, backend, n] = args.as_slice() else {
        eprintln!("usage: jws-overhead <bare|jws> <p256|ring|rs256> <n>");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("a count");
    // The server's provider: ring.
    let ring = atlogin_server::crypto::provider();
    let key = match backend.as_str() {
        "rs256" => {
            let der = RsaPrivateKeyDer::Pkcs8(SecretBytes::new(RSA_PKCS8.to_vec()));
            ring.load_rs256(&der).expect("loads")
        }
        name => {
            let provider: &dyn CryptoProvider = if name == "ring" {
                ring
            } else {
                DefaultProvider::get()
            };
            let private = EcPrivateKey::generate(&mut chacha20::ChaCha20Rng::from_seed([7; 32]));
            provider.load_es256(&private).expect("loads")
        }
    };
    let jws = JwsSigningKey::new(key.clone()).with_kid("k");
    let claims = serde_json::json!({
        "iss": "https://atlogin.example.org/", "sub": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
        "aud": "mas", "exp": 1_700_000_300, "iat": 1_700_000_000, "auth_time": 1_699_999_995,
        "nonce": "n-0S6_WzA2Mj", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
        "preferred_username": "alice.bsky.social", "name": "Alice",
    });
    let token = jws.sign(Some("JWT"), &claims).expect("signs");
    let (input, _) = token.rsplit_once('.').expect("three parts");
    for _ in 0..n {
        if what == "bare" {
            black_box(key.sign(black_box(input.as_bytes())).expect("signs"));
        } else {
            black_box(jws.sign(Some("JWT"), black_box(&claims)).expect("signs"));
        }
    }
}
