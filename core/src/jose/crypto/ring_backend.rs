//! The fast backend: ES256 and RS256 through *ring*, the library rustls
//! already links in atlogin's server, so choosing it ships no second
//! implementation. Selected with the `ring-backend` feature.
//!
//! *ring* signs ECDSA with a nonce derived from the key, the message and
//! fresh randomness, so the provider holds the random source its caller
//! hands it: core itself never reaches for one.

use std::fmt;
use std::sync::Arc;

use ring::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
use zeroize::Zeroizing;

use super::{
    CryptoProvider, DefaultProvider, KeyError, RsaPrivateKeyDer, SignError, SignatureError,
    SigningKey,
};
use crate::jose::Algorithm;
use crate::jose::jwk::{EcPrivateKey, PublicKey};

/// ES256 and RS256 through *ring*: about five times faster than the
/// pure-Rust default at ES256 (see `BENCHMARKS.md`).
#[derive(Debug)]
pub struct RingProvider {
    rng: ring::rand::SystemRandom,
}

impl RingProvider {
    /// The provider, with `rng` as the source of the randomness *ring* mixes
    /// into each ECDSA nonce. The caller decides where randomness comes from;
    /// *ring* offers only its system source.
    #[must_use]
    pub fn new(rng: ring::rand::SystemRandom) -> Self {
        Self { rng }
    }
}

impl CryptoProvider for RingProvider {
    fn load_es256(&self, key: &EcPrivateKey) -> Result<Arc<dyn SigningKey>, KeyError> {
        let scalar = Zeroizing::new(key.scalar());
        let point = key.public_key().to_sec1_uncompressed();
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            scalar.as_slice(),
            &point,
            &self.rng,
        )
        .map_err(|_| KeyError)?;
        // ring checked that the point belongs to the scalar.
        debug_assert_eq!(pair.public_key().as_ref(), point.as_slice());
        Ok(Arc::new(RingEcdsaSigningKey {
            pair,
            public: PublicKey::EcP256(key.public_key().clone()),
            rng: self.rng.clone(),
        }))
    }

    fn load_rs256(&self, key: &RsaPrivateKeyDer) -> Result<Arc<dyn SigningKey>, KeyError> {
        // RS256 is *ring* in the default backend already.
        DefaultProvider.load_rs256(key)
    }

    fn verify(
        &self,
        alg: Algorithm,
        key: &PublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        match (alg, key) {
            (Algorithm::Es256, PublicKey::EcP256(key)) => UnparsedPublicKey::new(
                &signature::ECDSA_P256_SHA256_FIXED,
                key.to_sec1_uncompressed(),
            )
            .verify(message, signature)
            .map_err(|_| SignatureError),
            (Algorithm::Rs256, PublicKey::Rsa(_)) => {
                DefaultProvider.verify(alg, key, message, signature)
            }
            _ => Err(SignatureError),
        }
    }
}

struct RingEcdsaSigningKey {
    pair: EcdsaKeyPair,
    public: PublicKey,
    rng: ring::rand::SystemRandom,
}

impl SigningKey for RingEcdsaSigningKey {
    fn algorithm(&self) -> Algorithm {
        Algorithm::Es256
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let signature = self.pair.sign(&self.rng, message).map_err(|_| SignError)?;
        Ok(signature.as_ref().to_vec())
    }
}

impl fmt::Debug for RingEcdsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingEcdsaSigningKey")
            .finish_non_exhaustive()
    }
}
