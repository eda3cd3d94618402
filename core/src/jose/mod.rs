//! JOSE: JSON Web Keys, compact JSON Web Signatures and JWT claims.
//!
//! Only what atlogin needs, done strictly: ES256 and RS256 signatures, EC P-256
//! and RSA keys, compact serialization, JSON payloads. The signature operations
//! sit behind [`CryptoProvider`] so that a faster backend can replace the default
//! one without changing any caller.
//!
//! # Not supported
//!
//! - Algorithms other than ES256 and RS256 (no `none`, no HMAC, no PS256, no EdDSA).
//! - JWE, the JSON serializations of JWS, unencoded payloads (RFC 7797) and any
//!   header parameter listed in `crit`.
//! - Fetching keys named by `jku`, `x5u` or `x5c`; those parameters are ignored.

pub mod claims;
pub mod crypto;
pub mod jwk;
pub mod jws;

pub use claims::{Audience, ClaimsError, ClaimsValidation, RegisteredClaims};
#[cfg(feature = "ring-backend")]
pub use crypto::RingProvider;
pub use crypto::{
    CryptoProvider, DefaultProvider, KeyError, RsaPrivateKeyDer, SignError, SignatureError,
    SigningKey,
};
pub use jwk::{
    EcP256PublicKey, EcPrivateKey, Jwk, JwkError, JwkSet, JwkThumbprint, KeyUse, PublicKey,
    RsaPublicKey,
};
pub use jwk::{MAX_JWK_SET_KEYS, MAX_JWK_SET_LEN};
pub use jws::{
    DEFAULT_MAX_TOKEN_LEN, Header, JwsError, JwsSigningKey, UnverifiedJws, VerifiedJws, Verifier,
};

use std::fmt;

/// A JWS signature algorithm ([RFC 7518 §3.1]) that atlogin signs and verifies with.
///
/// [RFC 7518 §3.1]: https://www.rfc-editor.org/rfc/rfc7518#section-3.1
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA with P-256 and SHA-256.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
}

impl Algorithm {
    /// The `alg` value of this algorithm.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    /// Parses an `alg` value; `None` for every algorithm atlogin does not accept,
    /// including `none` and the HMAC family.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            "RS256" => Some(Self::Rs256),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Algorithm {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names() {
        assert_eq!(Algorithm::from_name("ES256"), Some(Algorithm::Es256));
        assert_eq!(Algorithm::from_name("RS256"), Some(Algorithm::Rs256));
        for refused in [
            "none", "None", "HS256", "HS384", "HS512", "es256", "PS256", "EdDSA", "",
        ] {
            assert_eq!(Algorithm::from_name(refused), None, "{refused}");
        }
        assert_eq!(Algorithm::Es256.to_string(), "ES256");
    }
}
