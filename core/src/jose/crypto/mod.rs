//! The signature operations behind a provider trait.
//!
//! Everything in core that signs or verifies goes through a [`CryptoProvider`].
//! A provider turns key material into ready-to-use [`SigningKey`]s once, so the
//! cost of parsing a key is paid at start-up and never per signature, and it
//! verifies signatures with public keys that core already validated.
//!
//! [`DefaultProvider`] uses the pure-Rust `p256` crate for ES256 and *ring* for
//! RS256; with the `ring-backend` feature, `RingProvider` does both with *ring*,
//! about five times faster at ES256. Both pass the same test vectors and verify
//! each other's signatures. RSA signing is left to *ring* because its private-key operations run in
//! constant time, which the pure-Rust `rsa` crate does not promise
//! (RUSTSEC-2023-0071).

use std::fmt;
use std::sync::Arc;

use p256::ecdsa::signature::{Signer as _, Verifier as _};

#[cfg(feature = "ring-backend")]
mod ring_backend;

#[cfg(feature = "ring-backend")]
pub use ring_backend::RingProvider;

use super::Algorithm;
use super::jwk::{EcPrivateKey, PublicKey};
use crate::secret::SecretBytes;

/// Signs and verifies JWS signatures; the one place where a backend plugs in.
pub trait CryptoProvider: Send + Sync + fmt::Debug {
    /// Readies an EC P-256 private key for ES256 signing.
    fn load_es256(&self, key: &EcPrivateKey) -> Result<Arc<dyn SigningKey>, KeyError>;

    /// Readies an RSA private key for RS256 signing.
    fn load_rs256(&self, key: &RsaPrivateKeyDer) -> Result<Arc<dyn SigningKey>, KeyError>;

    /// Verifies `signature` over `message` with `key` under `alg`.
    ///
    /// The signature is in JWS form: `R || S` for ES256 ([RFC 7518 §3.4]).
    /// A key whose type does not fit `alg` fails like a wrong signature.
    ///
    /// [RFC 7518 §3.4]: https://www.rfc-editor.org/rfc/rfc7518#section-3.4
    fn verify(
        &self,
        alg: Algorithm,
        key: &PublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError>;
}

/// A private key loaded by a [`CryptoProvider`], ready to sign.
pub trait SigningKey: Send + Sync + fmt::Debug {
    /// The algorithm this key signs with.
    fn algorithm(&self) -> Algorithm;

    /// The public half.
    fn public_key(&self) -> &PublicKey;

    /// Signs `message`, returning the signature in JWS form.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// An RSA private key in DER form, as a provider loads it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RsaPrivateKeyDer {
    /// A PKCS#1 `RSAPrivateKey` structure ([RFC 8017 Appendix A.1.2]).
    ///
    /// [RFC 8017 Appendix A.1.2]: https://www.rfc-editor.org/rfc/rfc8017#appendix-A.1.2
    Pkcs1(SecretBytes),
    /// A PKCS#8 `PrivateKeyInfo` holding an RSA key ([RFC 5208]).
    ///
    /// [RFC 5208]: https://www.rfc-editor.org/rfc/rfc5208
    Pkcs8(SecretBytes),
}

/// A private key could not be loaded. Says nothing about the key's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("private key rejected")]
pub struct KeyError;

/// Signing failed inside the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("signing failed")]
pub struct SignError;

/// A signature did not verify. Deliberately opaque: it does not say why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid signature")]
pub struct SignatureError;

/// The default backend: `p256` for ES256, *ring* for RS256.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultProvider;

impl DefaultProvider {
    /// The provider as a static trait object.
    #[must_use]
    pub fn get() -> &'static dyn CryptoProvider {
        static PROVIDER: DefaultProvider = DefaultProvider;
        &PROVIDER
    }
}

impl CryptoProvider for DefaultProvider {
    fn load_es256(&self, key: &EcPrivateKey) -> Result<Arc<dyn SigningKey>, KeyError> {
        let signing = p256::ecdsa::SigningKey::from(key.p256_secret());
        let public = PublicKey::EcP256(key.public_key().clone());
        Ok(Arc::new(P256SigningKey { signing, public }))
    }

    fn load_rs256(&self, key: &RsaPrivateKeyDer) -> Result<Arc<dyn SigningKey>, KeyError> {
        let pair = match key {
            RsaPrivateKeyDer::Pkcs1(der) => ring::rsa::KeyPair::from_der(der.secret()),
            RsaPrivateKeyDer::Pkcs8(der) => ring::rsa::KeyPair::from_pkcs8(der.secret()),
        }
        .map_err(|_| KeyError)?;
        let components: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
        let public = super::jwk::RsaPublicKey::from_components(components.n, components.e)
            .map_err(|_| KeyError)?;
        Ok(Arc::new(RingRsaSigningKey {
            pair,
            public: PublicKey::Rsa(public),
        }))
    }

    fn verify(
        &self,
        alg: Algorithm,
        key: &PublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        match (alg, key) {
            (Algorithm::Es256, PublicKey::EcP256(key)) => {
                let signature =
                    p256::ecdsa::Signature::from_slice(signature).map_err(|_| SignatureError)?;
                p256::ecdsa::VerifyingKey::from(key.point())
                    .verify(message, &signature)
                    .map_err(|_| SignatureError)
            }
            (Algorithm::Rs256, PublicKey::Rsa(key)) => ring::signature::RsaPublicKeyComponents {
                n: key.n(),
                e: key.e(),
            }
            .verify(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                message,
                signature,
            )
            .map_err(|_| SignatureError),
            _ => Err(SignatureError),
        }
    }
}

struct P256SigningKey {
    signing: p256::ecdsa::SigningKey,
    public: PublicKey,
}

impl SigningKey for P256SigningKey {
    fn algorithm(&self) -> Algorithm {
        Algorithm::Es256
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let signature: p256::ecdsa::Signature =
            self.signing.try_sign(message).map_err(|_| SignError)?;
        Ok(signature.to_bytes().to_vec())
    }
}

impl fmt::Debug for P256SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("P256SigningKey").finish_non_exhaustive()
    }
}

struct RingRsaSigningKey {
    pair: ring::rsa::KeyPair,
    public: PublicKey,
}

impl SigningKey for RingRsaSigningKey {
    fn algorithm(&self) -> Algorithm {
        Algorithm::Rs256
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut signature = vec![0u8; self.pair.public().modulus_len()];
        // ring's API takes an RNG handle for every RSA padding; PKCS#1 v1.5 is
        // deterministic and never draws from it, so no randomness enters here.
        #[expect(
            clippy::disallowed_methods,
            reason = "ring requires the handle; PKCS#1 v1.5 signing never uses it"
        )]
        let rng = ring::rand::SystemRandom::new();
        self.pair
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &rng,
                message,
                &mut signature,
            )
            .map_err(|_| SignError)?;
        Ok(signature)
    }
}

impl fmt::Debug for RingRsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingRsaSigningKey").finish_non_exhaustive()
    }
}
