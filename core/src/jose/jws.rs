//! Compact JSON Web Signatures ([RFC 7515]) over JSON claims: minting and strict verification.
//!
//! Verification takes these steps, in this order, and stops at the first failure:
//!
//! 1. the token is at most [`Verifier::with_max_len`] bytes (default
//!    [`DEFAULT_MAX_TOKEN_LEN`]) and has exactly three parts;
//! 2. the header is strict base64url of a JSON object without duplicate keys;
//! 3. `alg` is ES256 or RS256 (never `none`, never HMAC);
//! 4. there is no `crit` ([RFC 7515 §4.1.11]: core understands no extension);
//! 5. `alg` is among those the caller allows, and `typ` matches when the caller
//!    names one ([RFC 7515 §4.1.9] rules);
//! 6. the key is chosen by `kid` from a JWK Set, and must fit `alg`, so an RSA or
//!    EC public key can never be used as an HMAC secret;
//! 7. the signature verifies;
//! 8. only then is the payload decoded, as a strict JSON object.
//!
//! Claim checks ([`ClaimsValidation`]) follow on the
//! verified token.
//!
//! [RFC 7515]: https://www.rfc-editor.org/rfc/rfc7515
//! [RFC 7515 §4.1.9]: https://www.rfc-editor.org/rfc/rfc7515#section-4.1.9
//! [RFC 7515 §4.1.11]: https://www.rfc-editor.org/rfc/rfc7515#section-4.1.11

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::Algorithm;
use super::claims::{ClaimsError, ClaimsValidation, RegisteredClaims};
use super::crypto::{CryptoProvider, SignError, SigningKey};
use super::jwk::{Jwk, JwkError, JwkSet, KeyUse};
use crate::{base64url, json};

/// The default size cap on a compact JWS, in bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 16 * 1024;

/// Why a JWS was refused or could not be made.
///
/// Messages name what failed, never the token or its contents.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    /// `alg` is supported, but not among the algorithms this verifier accepts.
    #[error("jws algorithm not allowed here")]
    AlgorithmNotAllowed,
    /// Several keys of the set could verify the token and `kid` does not pick one.
    #[error("jws key is ambiguous")]
    AmbiguousKey,
    /// The signature does not verify.
    #[error("invalid jws signature")]
    BadSignature,
    /// The registered claims failed validation.
    #[error(transparent)]
    Claims(#[from] ClaimsError),
    /// The header lists critical extensions, which core does not understand.
    #[error("jws header has crit")]
    CriticalHeader,
    /// A part is not strict base64url.
    #[error("jws part is not valid base64url")]
    Encoding,
    /// The header's `jwk` is not an acceptable public key.
    #[error("jws header jwk: {0}")]
    EmbeddedKey(JwkError),
    /// A header parameter is missing or malformed.
    #[error("jws header parameter `{0}` is missing or malformed")]
    InvalidHeader(&'static str),
    /// The payload is not a JSON object (with unique keys), or does not fit the claims type.
    #[error("jws payload is not a valid claims set")]
    InvalidPayload,
    /// The given key cannot verify this algorithm (wrong key type, `alg`, `use` or `key_ops`).
    #[error("jws key does not fit the algorithm")]
    KeyMismatch,
    /// The token is not three dot-separated parts.
    #[error("jws is not in compact serialization")]
    Malformed,
    /// No key of the set has the token's `kid` and fits its algorithm.
    #[error("no jws key matches")]
    NoMatchingKey,
    /// The signing backend failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The token is longer than the size cap.
    #[error("jws is too large")]
    TooLarge,
    /// `typ` is missing or differs from the expected type.
    #[error("jws typ does not match")]
    TypeMismatch,
    /// `alg` is not ES256 or RS256 (this includes `none` and the HMAC family).
    #[error("jws algorithm not supported")]
    UnsupportedAlgorithm,
}

/// The protected header of a verified or parsed JWS: the parameters core reads.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Header {
    /// `alg`.
    pub alg: Algorithm,
    /// `kid`, if present.
    pub kid: Option<String>,
    /// `typ`, if present, as written.
    pub typ: Option<String>,
    /// `jwk`, if present, unparsed: only a caller that takes the key from the
    /// token (DPoP) reads it, through [`Header::jwk`].
    jwk: Option<Value>,
}

impl Header {
    fn from_map(map: &Map<String, Value>) -> Result<Self, JwsError> {
        let alg = match map.get("alg") {
            Some(Value::String(name)) => {
                Algorithm::from_name(name).ok_or(JwsError::UnsupportedAlgorithm)?
            }
            _ => return Err(JwsError::InvalidHeader("alg")),
        };
        if map.contains_key("crit") {
            return Err(JwsError::CriticalHeader);
        }
        Ok(Self {
            alg,
            kid: header_str(map, "kid")?,
            typ: header_str(map, "typ")?,
            jwk: map.get("jwk").cloned(),
        })
    }

    /// The public key in `jwk`, validated; `None` when the header has none.
    pub fn jwk(&self) -> Result<Option<Jwk>, JwsError> {
        match &self.jwk {
            None => Ok(None),
            Some(Value::Object(jwk)) => Jwk::from_map(jwk).map(Some).map_err(JwsError::EmbeddedKey),
            Some(_) => Err(JwsError::InvalidHeader("jwk")),
        }
    }
}

fn header_str(map: &Map<String, Value>, name: &'static str) -> Result<Option<String>, JwsError> {
    let value = json::optional_str(map, name).map_err(JwsError::InvalidHeader)?;
    Ok(value.map(str::to_owned))
}

/// Whether a `typ` value names the expected media type: ASCII case-insensitive,
/// with `application/` implied when the value has no slash (RFC 7515 §4.1.9).
fn typ_matches(expected: &str, actual: &str) -> bool {
    fn split(value: &str) -> (&str, &str) {
        value.split_once('/').unwrap_or(("application", value))
    }
    let (expected_type, expected_sub) = split(expected);
    let (actual_type, actual_sub) = split(actual);
    expected_type.eq_ignore_ascii_case(actual_type) && expected_sub.eq_ignore_ascii_case(actual_sub)
}

/// A compact JWS whose header has been checked but whose signature has not.
///
/// Use it when the key comes from the token itself (a DPoP proof's `jwk`) or
/// must be looked up by `kid` elsewhere; otherwise [`Verifier`] does all steps.
pub struct UnverifiedJws<'t> {
    signing_input: &'t str,
    payload: &'t str,
    signature: Vec<u8>,
    header: Header,
}

impl fmt::Debug for UnverifiedJws<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnverifiedJws")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl<'t> UnverifiedJws<'t> {
    /// Splits and decodes `token`, and checks the header (steps 1 to 4 above).
    pub fn parse(token: &'t str, max_len: usize) -> Result<Self, JwsError> {
        if token.len() > max_len {
            return Err(JwsError::TooLarge);
        }
        let (signing_input, signature) = token.rsplit_once('.').ok_or(JwsError::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(JwsError::Malformed)?;
        if payload.contains('.') {
            return Err(JwsError::Malformed);
        }
        let header_bytes = base64url::decode(header).map_err(|_| JwsError::Encoding)?;
        let header_map =
            json::parse_object(&header_bytes).map_err(|_| JwsError::InvalidHeader("header"))?;
        let header = Header::from_map(&header_map)?;
        let signature = base64url::decode(signature).map_err(|_| JwsError::Encoding)?;
        Ok(Self {
            signing_input,
            payload,
            signature,
            header,
        })
    }

    /// The checked header.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Picks the key for this token from `keys`: the one with the token's `kid`,
    /// or, when the token has none, the only key that fits its algorithm.
    pub fn select_key<'k>(&self, keys: &'k JwkSet) -> Result<&'k Jwk, JwsError> {
        let alg = self.header.alg;
        let mut fitting = keys.keys().iter().filter(|k| {
            let kid_matches = match &self.header.kid {
                Some(kid) => k.kid() == Some(kid.as_str()),
                None => true,
            };
            kid_matches && k.can_verify(alg)
        });
        let first = fitting.next().ok_or(JwsError::NoMatchingKey)?;
        if fitting.next().is_some() {
            return Err(JwsError::AmbiguousKey);
        }
        Ok(first)
    }

    /// Verifies the signature with `key` and decodes the payload (steps 6 to 8).
    pub fn verify(self, provider: &dyn CryptoProvider, key: &Jwk) -> Result<VerifiedJws, JwsError> {
        if !key.can_verify(self.header.alg) {
            return Err(JwsError::KeyMismatch);
        }
        provider
            .verify(
                self.header.alg,
                key.key(),
                self.signing_input.as_bytes(),
                &self.signature,
            )
            .map_err(|_| JwsError::BadSignature)?;
        let payload = base64url::decode(self.payload).map_err(|_| JwsError::Encoding)?;
        let claims = json::parse_object(&payload).map_err(|_| JwsError::InvalidPayload)?;
        Ok(VerifiedJws {
            header: self.header,
            claims,
        })
    }
}

/// A JWS whose signature verified, with its claims parsed.
///
/// `Debug` shows the header and the claim names, not their values.
pub struct VerifiedJws {
    header: Header,
    claims: Map<String, Value>,
}

impl fmt::Debug for VerifiedJws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedJws")
            .field("header", &self.header)
            .field("claims", &self.claims.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl VerifiedJws {
    /// The protected header.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The claims set as a JSON object.
    #[must_use]
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The registered claims, checked against `validation`.
    pub fn validate(
        &self,
        validation: &ClaimsValidation<'_>,
    ) -> Result<RegisteredClaims, JwsError> {
        let registered = RegisteredClaims::from_map(&self.claims)?;
        registered.validate(validation)?;
        Ok(registered)
    }

    /// The claims set as a caller's type.
    pub fn deserialize_claims<T: DeserializeOwned>(&self) -> Result<T, JwsError> {
        let entries = self
            .claims
            .iter()
            .map(|(name, value)| (name.as_str(), value));
        T::deserialize(serde::de::value::MapDeserializer::<_, serde_json::Error>::new(entries))
            .map_err(|_| JwsError::InvalidPayload)
    }
}

/// Verifies compact JWS with the checks listed in the [module docs](self).
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct Verifier<'a> {
    provider: &'a dyn CryptoProvider,
    max_len: usize,
    typ: Option<&'a str>,
    algorithms: &'a [Algorithm],
}

impl<'a> Verifier<'a> {
    /// A verifier using `provider`, accepting ES256 and RS256 and any `typ`.
    pub fn new(provider: &'a dyn CryptoProvider) -> Self {
        Self {
            provider,
            max_len: DEFAULT_MAX_TOKEN_LEN,
            typ: None,
            algorithms: &[Algorithm::Es256, Algorithm::Rs256],
        }
    }

    /// Requires the header's `typ` to name this media type.
    pub fn with_typ(mut self, typ: &'a str) -> Self {
        self.typ = Some(typ);
        self
    }

    /// Changes the size cap on the whole token.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Accepts only these algorithms.
    pub fn with_algorithms(mut self, algorithms: &'a [Algorithm]) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// Parses `token` and applies the header checks, without verifying the signature.
    pub fn parse<'t>(&self, token: &'t str) -> Result<UnverifiedJws<'t>, JwsError> {
        let jws = UnverifiedJws::parse(token, self.max_len)?;
        if !self.algorithms.contains(&jws.header.alg) {
            return Err(JwsError::AlgorithmNotAllowed);
        }
        if let Some(expected) = self.typ {
            let actual = jws.header.typ.as_deref().ok_or(JwsError::TypeMismatch)?;
            if !typ_matches(expected, actual) {
                return Err(JwsError::TypeMismatch);
            }
        }
        Ok(jws)
    }

    /// Verifies `token` with the key of `keys` its header selects.
    pub fn verify(&self, token: &str, keys: &JwkSet) -> Result<VerifiedJws, JwsError> {
        let jws = self.parse(token)?;
        let key = jws.select_key(keys)?;
        jws.verify(self.provider, key)
    }

    /// Verifies `token` with one given key; a `kid` in the token is not compared.
    pub fn verify_with_key(&self, token: &str, key: &Jwk) -> Result<VerifiedJws, JwsError> {
        self.parse(token)?.verify(self.provider, key)
    }

    /// The provider this verifier uses.
    pub fn provider(&self) -> &'a dyn CryptoProvider {
        self.provider
    }
}

/// A signing key with its key id, ready to mint compact JWS.
#[derive(Clone, Debug)]
pub struct JwsSigningKey {
    key: Arc<dyn SigningKey>,
    kid: Option<String>,
    /// The public JWK as JSON, built once for headers that embed it.
    public_jwk: Value,
}

#[derive(Serialize)]
struct SigningHeader<'a> {
    alg: Algorithm,
    #[serde(skip_serializing_if = "Option::is_none")]
    typ: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwk: Option<&'a Value>,
}

impl JwsSigningKey {
    /// Wraps a loaded key; tokens carry no `kid`.
    #[must_use]
    pub fn new(key: Arc<dyn SigningKey>) -> Self {
        let public_jwk = Jwk::new(key.public_key().clone()).to_json_value();
        Self {
            key,
            kid: None,
            public_jwk,
        }
    }

    /// Sets the key id written into headers and into the public JWK.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }

    /// The key id, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public key as a JWK to publish: with `kid`, `alg` and `use: sig`.
    #[must_use]
    pub fn public_jwk(&self) -> Jwk {
        let jwk = Jwk::new(self.key.public_key().clone())
            .with_algorithm()
            .with_use(KeyUse::Signature);
        match &self.kid {
            Some(kid) => jwk.with_kid(kid.clone()),
            None => jwk,
        }
    }

    /// Mints a compact JWS over `claims`, with `kid` in the header when the key has one.
    pub fn sign<C: Serialize + ?Sized>(
        &self,
        typ: Option<&str>,
        claims: &C,
    ) -> Result<String, JwsError> {
        let header = SigningHeader {
            alg: self.key.algorithm(),
            typ,
            kid: self.kid.as_deref(),
            jwk: None,
        };
        self.sign_with_header(&header, claims)
    }

    /// Mints a compact JWS whose header carries the public key as `jwk` instead of
    /// a `kid`, as DPoP proofs do.
    pub fn sign_with_embedded_jwk<C: Serialize + ?Sized>(
        &self,
        typ: Option<&str>,
        claims: &C,
    ) -> Result<String, JwsError> {
        let header = SigningHeader {
            alg: self.key.algorithm(),
            typ,
            kid: None,
            jwk: Some(&self.public_jwk),
        };
        self.sign_with_header(&header, claims)
    }

    fn sign_with_header<C: Serialize + ?Sized>(
        &self,
        header: &SigningHeader<'_>,
        claims: &C,
    ) -> Result<String, JwsError> {
        let header_json =
            serde_json::to_vec(header).map_err(|_| JwsError::InvalidHeader("header"))?;
        let claims_json = serde_json::to_vec(claims).map_err(|_| JwsError::InvalidPayload)?;
        let mut out = Vec::with_capacity((header_json.len() + claims_json.len()) * 4 / 3 + 100);
        base64url::encode_into(&header_json, &mut out);
        out.push(b'.');
        base64url::encode_into(&claims_json, &mut out);
        let signature = self.key.sign(&out)?;
        out.push(b'.');
        base64url::encode_into(&signature, &mut out);
        // Base64url and dots are ASCII, so this conversion cannot fail.
        String::from_utf8(out).map_err(|_| JwsError::Sign(SignError))
    }
}

#[cfg(test)]
mod tests;
