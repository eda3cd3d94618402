//! The signature backend of the server: core's *ring* backend, the library
//! rustls already links here, about five times faster at ES256 than the
//! pure-Rust default. Every key the server loads and every signature it checks
//! goes through [`provider`].

use std::sync::OnceLock;

use atlogin_core::jose::{CryptoProvider, RingProvider};

/// The one provider, made on first use.
pub fn provider() -> &'static dyn CryptoProvider {
    static PROVIDER: OnceLock<RingProvider> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        #[expect(
            clippy::disallowed_methods,
            reason = "the server is where randomness comes from; ring offers only its system source"
        )]
        let rng = ring::rand::SystemRandom::new();
        RingProvider::new(rng)
    })
}
