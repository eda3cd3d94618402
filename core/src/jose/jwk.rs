//! JSON Web Keys ([RFC 7517]) for EC P-256 and RSA, JWK Sets, and thumbprints ([RFC 7638]).
//!
//! Keys are validated when parsed: an EC point must lie on P-256, an RSA modulus
//! must have 2048 to 8192 bits, and a JWK received as a public key must not carry
//! private members. A key that parsed is a key that can be used.
//!
//! [RFC 7517]: https://www.rfc-editor.org/rfc/rfc7517
//! [RFC 7638]: https://www.rfc-editor.org/rfc/rfc7638

use std::fmt;

use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::{FromSec1Point, Sec1Point, ToSec1Point};
use rand_core::CryptoRng;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Algorithm;
use crate::{base64url, json};

/// The largest JWK or JWK Set document accepted, in bytes.
pub const MAX_JWK_SET_LEN: usize = 64 * 1024;

/// The most keys a JWK Set may hold.
pub const MAX_JWK_SET_KEYS: usize = 64;

/// Why a JWK or JWK Set was refused. Messages name parameters, never key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// `alg` names an algorithm that does not fit the key type.
    #[error("jwk alg does not match its key type")]
    AlgorithmMismatch,
    /// The key parameters do not form a valid key (a point off the curve, say).
    #[error("jwk does not describe a valid key")]
    InvalidKey,
    /// A parameter is missing, has the wrong JSON type or is badly encoded.
    #[error("jwk parameter `{0}` is missing or malformed")]
    InvalidParameter(&'static str),
    /// The document is not a JSON object, or has duplicate keys.
    #[error("jwk is not a well-formed json object")]
    Malformed,
    /// A JWK expected to be public carries private key members.
    #[error("jwk that should be public contains private key material")]
    PrivateKeyMaterial,
    /// The document is larger than [`MAX_JWK_SET_LEN`].
    #[error("jwk document is too large")]
    TooLarge,
    /// The JWK Set holds more than [`MAX_JWK_SET_KEYS`] keys.
    #[error("jwk set holds too many keys")]
    TooManyKeys,
    /// `alg` names an algorithm atlogin does not support.
    #[error("jwk alg is not supported")]
    UnsupportedAlgorithm,
    /// `crv` names a curve other than P-256.
    #[error("jwk curve is not supported")]
    UnsupportedCurve,
    /// `kty` is neither `EC` nor `RSA`.
    #[error("jwk key type is not supported")]
    UnsupportedKeyType,
    /// The RSA modulus is shorter than 2048 or longer than 8192 bits, or the
    /// exponent is unusable.
    #[error("rsa key size or exponent is not acceptable")]
    WeakRsaKey,
}

impl JwkError {
    /// Whether a JWK Set skips a key with this error instead of failing.
    ///
    /// [RFC 7517 §5] asks readers to ignore keys of types they do not understand,
    /// keys missing required members and keys with values out of range. A public
    /// set that carries private key material is not skipped: it fails whole.
    ///
    /// [RFC 7517 §5]: https://www.rfc-editor.org/rfc/rfc7517#section-5
    fn is_skippable(&self) -> bool {
        !matches!(
            self,
            Self::Malformed | Self::PrivateKeyMaterial | Self::TooLarge | Self::TooManyKeys
        )
    }
}

/// A public key atlogin can verify signatures with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKey {
    /// An EC key on P-256, used with ES256.
    EcP256(EcP256PublicKey),
    /// An RSA key, used with RS256.
    Rsa(RsaPublicKey),
}

impl PublicKey {
    /// The one signature algorithm this key is used with.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::EcP256(_) => Algorithm::Es256,
            Self::Rsa(_) => Algorithm::Rs256,
        }
    }

    /// The RFC 7638 SHA-256 thumbprint of this key.
    #[must_use]
    pub fn thumbprint(&self) -> JwkThumbprint {
        // The required members in lexicographic order, no white space (RFC 7638 §3.2).
        // Base64url text needs no JSON escaping.
        let mut hasher = Sha256::new();
        match self {
            Self::EcP256(key) => {
                hasher.update(br#"{"crv":"P-256","kty":"EC","x":""#);
                hasher.update(base64url::encode(&key.x).as_bytes());
                hasher.update(br#"","y":""#);
                hasher.update(base64url::encode(&key.y).as_bytes());
                hasher.update(br#""}"#);
            }
            Self::Rsa(key) => {
                hasher.update(br#"{"e":""#);
                hasher.update(base64url::encode(&key.e).as_bytes());
                hasher.update(br#"","kty":"RSA","n":""#);
                hasher.update(base64url::encode(&key.n).as_bytes());
                hasher.update(br#""}"#);
            }
        }
        JwkThumbprint(base64url::encode(&hasher.finalize()))
    }

    fn write_members(&self, map: &mut Map<String, Value>) {
        match self {
            Self::EcP256(key) => {
                map.insert("kty".into(), "EC".into());
                map.insert("crv".into(), "P-256".into());
                map.insert("x".into(), base64url::encode(&key.x).into());
                map.insert("y".into(), base64url::encode(&key.y).into());
            }
            Self::Rsa(key) => {
                map.insert("kty".into(), "RSA".into());
                map.insert("n".into(), base64url::encode(&key.n).into());
                map.insert("e".into(), base64url::encode(&key.e).into());
            }
        }
    }
}

/// A validated point on P-256.
#[derive(Clone)]
pub struct EcP256PublicKey {
    point: p256::PublicKey,
    x: [u8; 32],
    y: [u8; 32],
}

impl EcP256PublicKey {
    /// Builds a key from its affine coordinates, refusing points not on the curve.
    pub fn from_coordinates(x: [u8; 32], y: [u8; 32]) -> Result<Self, JwkError> {
        let encoded =
            Sec1Point::<p256::NistP256>::from_affine_coordinates(&x.into(), &y.into(), false);
        let point =
            Option::from(p256::PublicKey::from_sec1_point(&encoded)).ok_or(JwkError::InvalidKey)?;
        Ok(Self { point, x, y })
    }

    /// The x coordinate, big-endian.
    #[must_use]
    pub fn x(&self) -> &[u8; 32] {
        &self.x
    }

    /// The y coordinate, big-endian.
    #[must_use]
    pub fn y(&self) -> &[u8; 32] {
        &self.y
    }

    /// The uncompressed SEC1 encoding: `0x04 || x || y`.
    #[must_use]
    pub fn to_sec1_uncompressed(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out[0] = 0x04;
        out[1..33].copy_from_slice(&self.x);
        out[33..].copy_from_slice(&self.y);
        out
    }

    /// The validated point, for the `p256` backend.
    pub(crate) fn point(&self) -> &p256::PublicKey {
        &self.point
    }

    fn from_point(point: p256::PublicKey) -> Self {
        let encoded = point.to_sec1_point(false);
        let mut x = [0u8; 32];
        let mut y = [0u8; 32];
        // An uncompressed encoding of a non-identity point always has both coordinates.
        if let (Some(px), Some(py)) = (encoded.x(), encoded.y()) {
            x.copy_from_slice(px);
            y.copy_from_slice(py);
        }
        Self { point, x, y }
    }
}

impl fmt::Debug for EcP256PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcP256PublicKey")
            .field("x", &base64url::encode(&self.x))
            .field("y", &base64url::encode(&self.y))
            .finish_non_exhaustive()
    }
}

impl PartialEq for EcP256PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.x == other.x && self.y == other.y
    }
}

impl Eq for EcP256PublicKey {}

/// An RSA public key with a modulus of 2048 to 8192 bits.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl RsaPublicKey {
    /// The smallest modulus accepted, in bits.
    pub const MIN_BITS: usize = 2048;
    /// The largest modulus accepted, in bits.
    pub const MAX_BITS: usize = 8192;

    /// Builds a key from its big-endian modulus and exponent.
    ///
    /// Both must be minimal (no leading zero octet, RFC 7518 §6.3.1); the modulus
    /// must be odd with 2048 to 8192 bits and the exponent odd, at least 3 and at
    /// most 32 bits long.
    pub fn from_components(n: Vec<u8>, e: Vec<u8>) -> Result<Self, JwkError> {
        if n.first().is_none_or(|&b| b == 0) {
            return Err(JwkError::InvalidParameter("n"));
        }
        if e.first().is_none_or(|&b| b == 0) {
            return Err(JwkError::InvalidParameter("e"));
        }
        let bits = modulus_bits(&n);
        if !(Self::MIN_BITS..=Self::MAX_BITS).contains(&bits) || n[n.len() - 1] & 1 == 0 {
            return Err(JwkError::WeakRsaKey);
        }
        let small_exponent = e.len() == 1 && e[0] < 3;
        if e.len() > 4 || small_exponent || e[e.len() - 1] & 1 == 0 {
            return Err(JwkError::WeakRsaKey);
        }
        Ok(Self { n, e })
    }

    /// The modulus, big-endian without leading zeros.
    #[must_use]
    pub fn n(&self) -> &[u8] {
        &self.n
    }

    /// The public exponent, big-endian without leading zeros.
    #[must_use]
    pub fn e(&self) -> &[u8] {
        &self.e
    }

    /// The size of the modulus in bits.
    #[must_use]
    pub fn bits(&self) -> usize {
        modulus_bits(&self.n)
    }
}

/// The bit length of a big-endian number without leading zero octets.
fn modulus_bits(n: &[u8]) -> usize {
    n.first()
        .map_or(0, |first| n.len() * 8 - first.leading_zeros() as usize)
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field(
                "bits",
                &(self.n.len() * 8 - self.n[0].leading_zeros() as usize),
            )
            .field("e", &base64url::encode(&self.e))
            .finish_non_exhaustive()
    }
}

/// The intended use of a key (`use`, [RFC 7517 §4.2]).
///
/// [RFC 7517 §4.2]: https://www.rfc-editor.org/rfc/rfc7517#section-4.2
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyUse {
    /// `enc`: encryption only.
    Encryption,
    /// Any other registered or private value.
    Other(String),
    /// `sig`: signatures.
    Signature,
}

impl KeyUse {
    fn as_str(&self) -> &str {
        match self {
            Self::Encryption => "enc",
            Self::Other(other) => other,
            Self::Signature => "sig",
        }
    }

    fn from_name(name: &str) -> Self {
        match name {
            "enc" => Self::Encryption,
            "sig" => Self::Signature,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// A public JSON Web Key with the metadata atlogin reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwk {
    key: PublicKey,
    kid: Option<String>,
    alg: Option<Algorithm>,
    key_use: Option<KeyUse>,
    key_ops: Option<Vec<String>>,
}

impl Jwk {
    /// A JWK for `key` with no metadata.
    #[must_use]
    pub fn new(key: PublicKey) -> Self {
        Self {
            key,
            kid: None,
            alg: None,
            key_use: None,
            key_ops: None,
        }
    }

    /// Sets the key id.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Sets `alg` to the key's own algorithm.
    #[must_use]
    pub fn with_algorithm(mut self) -> Self {
        self.alg = Some(self.key.algorithm());
        self
    }

    /// Sets `use`.
    #[must_use]
    pub fn with_use(mut self, key_use: KeyUse) -> Self {
        self.key_use = Some(key_use);
        self
    }

    /// Parses one public JWK from JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JwkError> {
        if bytes.len() > MAX_JWK_SET_LEN {
            return Err(JwkError::TooLarge);
        }
        let map = json::parse_object(bytes).map_err(|_| JwkError::Malformed)?;
        Self::from_map(&map)
    }

    /// Parses one public JWK from an already parsed JSON object.
    pub fn from_map(map: &Map<String, Value>) -> Result<Self, JwkError> {
        let key = match required_str(map, "kty")? {
            "EC" => {
                check_ec_curve(map)?;
                if map.contains_key("d") {
                    return Err(JwkError::PrivateKeyMaterial);
                }
                PublicKey::EcP256(ec_public_from_map(map)?)
            }
            "RSA" => {
                if ["d", "p", "q", "dp", "dq", "qi", "oth"]
                    .iter()
                    .any(|m| map.contains_key(*m))
                {
                    return Err(JwkError::PrivateKeyMaterial);
                }
                let n = base64url::decode(required_str(map, "n")?)
                    .map_err(|_| JwkError::InvalidParameter("n"))?;
                let e = base64url::decode(required_str(map, "e")?)
                    .map_err(|_| JwkError::InvalidParameter("e"))?;
                PublicKey::Rsa(RsaPublicKey::from_components(n, e)?)
            }
            _ => return Err(JwkError::UnsupportedKeyType),
        };
        let alg = match optional_str(map, "alg")? {
            None => None,
            Some(name) => {
                let alg = Algorithm::from_name(name).ok_or(JwkError::UnsupportedAlgorithm)?;
                if alg != key.algorithm() {
                    return Err(JwkError::AlgorithmMismatch);
                }
                Some(alg)
            }
        };
        let key_use = optional_str(map, "use")?.map(KeyUse::from_name);
        let key_ops = match map.get("key_ops") {
            None => None,
            Some(value) => Some(key_ops_from_value(value)?),
        };
        let kid = optional_str(map, "kid")?.map(str::to_owned);
        Ok(Self {
            key,
            kid,
            alg,
            key_use,
            key_ops,
        })
    }

    /// The key.
    #[must_use]
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// The key id, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The `alg` the JWK is restricted to, if it names one.
    #[must_use]
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.alg
    }

    /// The RFC 7638 thumbprint of the key.
    #[must_use]
    pub fn thumbprint(&self) -> JwkThumbprint {
        self.key.thumbprint()
    }

    /// Whether this key may verify signatures made with `alg`: the key type fits
    /// (and with it `alg`, if present), `use` (if present) is `sig`, and `key_ops`
    /// (if present) includes `verify`.
    #[must_use]
    pub fn can_verify(&self, alg: Algorithm) -> bool {
        // `alg`, when present, was checked against the key type when parsed.
        self.key.algorithm() == alg
            && self
                .key_use
                .as_ref()
                .is_none_or(|u| *u == KeyUse::Signature)
            && self
                .key_ops
                .as_ref()
                .is_none_or(|ops| ops.iter().any(|op| op == "verify"))
    }

    /// The JWK as a JSON object.
    #[must_use]
    pub fn to_json_value(&self) -> Value {
        let mut map = Map::new();
        self.key.write_members(&mut map);
        if let Some(kid) = &self.kid {
            map.insert("kid".into(), kid.clone().into());
        }
        if let Some(alg) = self.alg {
            map.insert("alg".into(), alg.as_str().into());
        }
        if let Some(key_use) = &self.key_use {
            map.insert("use".into(), key_use.as_str().into());
        }
        if let Some(ops) = &self.key_ops {
            map.insert("key_ops".into(), ops.clone().into());
        }
        Value::Object(map)
    }
}

impl serde::Serialize for Jwk {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json_value().serialize(serializer)
    }
}

/// A JWK Set ([RFC 7517 §5]).
///
/// Parsing skips keys atlogin cannot use (other key types, curves or algorithms,
/// missing or out-of-range members), as the RFC asks, and fails on a set that
/// carries private key material.
///
/// [RFC 7517 §5]: https://www.rfc-editor.org/rfc/rfc7517#section-5
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JwkSet {
    keys: Vec<Jwk>,
}

impl JwkSet {
    /// A set of the given keys.
    #[must_use]
    pub fn new(keys: Vec<Jwk>) -> Self {
        Self { keys }
    }

    /// Parses a JWK Set document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JwkError> {
        if bytes.len() > MAX_JWK_SET_LEN {
            return Err(JwkError::TooLarge);
        }
        let map = json::parse_object(bytes).map_err(|_| JwkError::Malformed)?;
        let entries = map
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwkError::InvalidParameter("keys"))?;
        if entries.len() > MAX_JWK_SET_KEYS {
            return Err(JwkError::TooManyKeys);
        }
        let mut keys = Vec::with_capacity(entries.len());
        for entry in entries {
            let object = entry
                .as_object()
                .ok_or(JwkError::InvalidParameter("keys"))?;
            match Jwk::from_map(object) {
                Ok(jwk) => keys.push(jwk),
                Err(err) if err.is_skippable() => {}
                Err(err) => return Err(err),
            }
        }
        Ok(Self { keys })
    }

    /// The keys of the set.
    #[must_use]
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// The set as a JSON object, `{"keys": [...]}`.
    #[must_use]
    pub fn to_json_value(&self) -> Value {
        let keys = self.keys.iter().map(Jwk::to_json_value).collect();
        let mut map = Map::new();
        map.insert("keys".into(), Value::Array(keys));
        Value::Object(map)
    }
}

impl serde::Serialize for JwkSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json_value().serialize(serializer)
    }
}

/// A JWK SHA-256 thumbprint ([RFC 7638]), base64url encoded; the `jkt` of DPoP.
///
/// [RFC 7638]: https://www.rfc-editor.org/rfc/rfc7638
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct JwkThumbprint(String);

impl JwkThumbprint {
    /// The base64url text of the thumbprint.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JwkThumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An EC P-256 private key of atlogin's own: a DPoP key, a client assertion key,
/// an ID token signing key.
///
/// `Debug` shows only the public key's thumbprint; the scalar is zeroized on drop
/// and compared in constant time.
#[derive(Clone)]
pub struct EcPrivateKey {
    secret: p256::SecretKey,
    public: EcP256PublicKey,
}

impl EcPrivateKey {
    /// A fresh key from the caller's RNG.
    #[must_use]
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_secret(p256::SecretKey::generate_from_rng(rng))
    }

    /// The key with the given big-endian scalar.
    pub fn from_scalar(scalar: &[u8; 32]) -> Result<Self, JwkError> {
        let secret =
            p256::SecretKey::from_bytes(&(*scalar).into()).map_err(|_| JwkError::InvalidKey)?;
        Ok(Self::from_secret(secret))
    }

    /// Parses a private EC P-256 JWK (with `d`), checking that `x` and `y` belong to `d`.
    pub fn from_jwk_json(bytes: &[u8]) -> Result<Self, JwkError> {
        if bytes.len() > MAX_JWK_SET_LEN {
            return Err(JwkError::TooLarge);
        }
        let mut map = json::parse_object(bytes).map_err(|_| JwkError::Malformed)?;
        let d_text = match map.remove("d") {
            Some(Value::String(d)) => Zeroizing::new(d),
            _ => return Err(JwkError::InvalidParameter("d")),
        };
        if required_str(&map, "kty")? != "EC" {
            return Err(JwkError::UnsupportedKeyType);
        }
        check_ec_curve(&map)?;
        let d = Zeroizing::new(
            base64url::decode_array::<32>(&d_text).map_err(|_| JwkError::InvalidParameter("d"))?,
        );
        let key = Self::from_scalar(&d)?;
        if ec_public_from_map(&map)? != key.public {
            return Err(JwkError::InvalidKey);
        }
        Ok(key)
    }

    /// The private JWK (`kty`, `crv`, `x`, `y`, `d`, and `kid` when given), for storage.
    ///
    /// Security: the result holds the private key; write it only to storage
    /// readable by atlogin alone.
    #[must_use]
    pub fn to_jwk_json(&self, kid: Option<&str>) -> Zeroizing<String> {
        let scalar = Zeroizing::new(self.scalar());
        let d = Zeroizing::new(base64url::encode(scalar.as_slice()));
        let kid = kid.map(|kid| Value::from(kid).to_string());
        // Sized once up front: a reallocation would leave `d` in freed memory.
        let mut out = Zeroizing::new(String::with_capacity(
            200 + kid.as_ref().map_or(0, String::len),
        ));
        out.push_str(r#"{"kty":"EC","crv":"P-256","x":""#);
        out.push_str(&base64url::encode(&self.public.x));
        out.push_str(r#"","y":""#);
        out.push_str(&base64url::encode(&self.public.y));
        out.push_str(r#"","d":""#);
        out.push_str(&d);
        out.push('"');
        if let Some(kid) = kid {
            out.push_str(r#","kid":"#);
            out.push_str(&kid);
        }
        out.push('}');
        out
    }

    /// The public half.
    #[must_use]
    pub fn public_key(&self) -> &EcP256PublicKey {
        &self.public
    }

    /// The scalar, big-endian.
    ///
    /// Security: this is the private key; zeroize the copy when done with it.
    #[must_use]
    pub fn scalar(&self) -> [u8; 32] {
        self.secret.to_bytes().into()
    }

    /// The `p256` form, for the `p256` backend.
    pub(crate) fn p256_secret(&self) -> &p256::SecretKey {
        &self.secret
    }

    fn from_secret(secret: p256::SecretKey) -> Self {
        let public = EcP256PublicKey::from_point(secret.public_key());
        Self { secret, public }
    }
}

impl fmt::Debug for EcPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcPrivateKey")
            .field(
                "thumbprint",
                &PublicKey::EcP256(self.public.clone()).thumbprint().0,
            )
            .finish_non_exhaustive()
    }
}

/// Serialized as its private JWK, for storing a login in progress.
///
/// Security: the result holds the private key; store it where only atlogin reads.
impl serde::Serialize for EcPrivateKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_jwk_json(None))
    }
}

impl<'de> serde::Deserialize<'de> for EcPrivateKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(deserializer)?);
        Self::from_jwk_json(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

impl PartialEq for EcPrivateKey {
    fn eq(&self, other: &Self) -> bool {
        let a = Zeroizing::new(self.scalar());
        let b = Zeroizing::new(other.scalar());
        a.ct_eq(&*b).into()
    }
}

impl Eq for EcPrivateKey {}

fn check_ec_curve(map: &Map<String, Value>) -> Result<(), JwkError> {
    if required_str(map, "crv")? == "P-256" {
        Ok(())
    } else {
        Err(JwkError::UnsupportedCurve)
    }
}

fn ec_public_from_map(map: &Map<String, Value>) -> Result<EcP256PublicKey, JwkError> {
    let x = base64url::decode_array::<32>(required_str(map, "x")?)
        .map_err(|_| JwkError::InvalidParameter("x"))?;
    let y = base64url::decode_array::<32>(required_str(map, "y")?)
        .map_err(|_| JwkError::InvalidParameter("y"))?;
    EcP256PublicKey::from_coordinates(x, y)
}

fn key_ops_from_value(value: &Value) -> Result<Vec<String>, JwkError> {
    let invalid = || JwkError::InvalidParameter("key_ops");
    let mut ops = Vec::new();
    for op in value.as_array().ok_or_else(invalid)? {
        let op = op.as_str().ok_or_else(invalid)?;
        // Duplicate key operation values must not be present (RFC 7517 §4.3).
        if ops.iter().any(|known| known == op) {
            return Err(invalid());
        }
        ops.push(op.to_owned());
    }
    Ok(ops)
}

fn required_str<'a>(map: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, JwkError> {
    optional_str(map, name)?.ok_or(JwkError::InvalidParameter(name))
}

fn optional_str<'a>(
    map: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, JwkError> {
    json::optional_str(map, name).map_err(JwkError::InvalidParameter)
}

#[cfg(test)]
mod tests;
