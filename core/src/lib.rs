//! The protocol core of atlogin: signing in to Matrix with an AT Protocol identity.
//!
//! atlogin is an OpenID Connect provider toward Matrix (MAS or Synapse) and an
//! AT Protocol OAuth client toward the person's own PDS. This crate holds the
//! protocol logic of both sides as plain values and pure functions.
//!
//! # What this crate does not do
//!
//! - **No I/O.** It opens no sockets, resolves no names and reads no files. Where
//!   a flow needs the network it hands the caller an HTTP request or a DNS lookup
//!   to carry out. The runtime adapters (`atlogin-tokio` and `atlogin-async-std`,
//!   still to come) will do that on their runtimes; any other event loop can too.
//! - **No clock.** Every check that depends on time takes `now` as an argument
//!   ([`time::UnixTime`]).
//! - **No ambient randomness.** Everything that creates a secret takes the
//!   caller's `rand_core::CryptoRng`.
//! - **No storage.** State that outlives a request is a serialisable value the
//!   caller keeps.
//!
//! # Modules so far
//!
//! - [`transport`]: the loop every machine is driven by, and the requests it hands
//!   out (HTTP fetches with their limits, DNS TXT lookups).
//! - [`identity`]: handle and DID syntax, DID documents, and the
//!   [`IdentityResolver`](identity::IdentityResolver) machine (handle or DID to a
//!   verified DID, handle and PDS).
//! - [`discovery`]: the [`AuthServerDiscovery`](discovery::AuthServerDiscovery)
//!   machine (PDS to checked authorization server metadata).
//! - [`base64url`]: strict unpadded base64url.
//! - [`jose`]: JWK, JWK Set, thumbprints, compact JWS (ES256, RS256) behind a
//!   [`CryptoProvider`](jose::CryptoProvider), JWT claim validation.
//! - [`pkce`]: RFC 7636 with S256 only.
//! - [`dpop`]: RFC 9449 proofs, the per-origin nonce memory, nonce challenges,
//!   and a proof verifier.
//! - [`secret`]: the secret value types.
//!
//! # Example
//!
//! Sign a DPoP proof with a fresh key and verify it as a server would:
//!
//! ```
//! use std::time::Duration;
//! use atlogin_core::dpop::{DpopProofBuilder, DpopProofCheck, verify_proof};
//! use atlogin_core::jose::{DefaultProvider, EcPrivateKey, JwsSigningKey};
//! use atlogin_core::time::UnixTime;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In real code the RNG is the operating system's; tests use a seeded one.
//! let mut rng = chacha20::ChaCha20Rng::from_seed([7; 32]);
//! # use rand_core::SeedableRng;
//! let provider = DefaultProvider::get();
//! let key = JwsSigningKey::new(provider.load_es256(&EcPrivateKey::generate(&mut rng))?);
//! let now = UnixTime::from_secs(1_700_000_000);
//! let url = url::Url::parse("https://pds.example.com/xrpc/com.atproto.server.getSession")?;
//!
//! let proof = DpopProofBuilder::new(&http::Method::GET, &url)
//!     .sign(&key, now, &mut rng)?;
//!
//! let check = DpopProofCheck::new(&http::Method::GET, &url, now, Duration::from_secs(60));
//! let verified = verify_proof(proof.secret(), &check, provider)?;
//! assert_eq!(verified.jkt, key.public_jwk().thumbprint());
//! # Ok(())
//! # }
//! ```

pub mod base64url;
pub mod client;
pub mod discovery;
pub mod dpop;
pub mod identity;
pub mod jose;
pub mod json;
pub mod netpolicy;
mod origin;
pub mod pkce;
pub mod provider;
pub mod secret;
pub mod time;
pub mod transport;

/// A seeded RNG for unit tests: the same stream on every run.
#[cfg(test)]
pub(crate) fn test_rng() -> chacha20::ChaCha20Rng {
    use rand_core::SeedableRng;
    chacha20::ChaCha20Rng::from_seed([42; 32])
}

/// A second seeded RNG for unit tests, with a different stream from [`test_rng`].
#[cfg(test)]
pub(crate) fn test_rng_2() -> chacha20::ChaCha20Rng {
    use rand_core::SeedableRng;
    chacha20::ChaCha20Rng::from_seed([43; 32])
}
