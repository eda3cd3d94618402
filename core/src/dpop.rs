//! DPoP: demonstrating proof of possession ([RFC 9449]).
//!
//! - [`DpopProofBuilder`] mints a proof: `typ` `dpop+jwt`, the public JWK in the
//!   header, a fresh `jti`, `htm`, `htu` without query and fragment, `iat`, and
//!   `nonce` and `ath` when given.
//! - [`DpopNonces`] remembers the last `DPoP-Nonce` each origin sent, so that a
//!   client's next proof to that origin carries it. Keep one per session: the
//!   authorization server and the PDS keep separate nonces.
//! - [`is_nonce_challenge`] recognises a server's demand for a (new) nonce, both as
//!   an authorization server's `use_dpop_nonce` error body ([RFC 9449 §8]) and as
//!   a resource server's `WWW-Authenticate: DPoP error="use_dpop_nonce"`
//!   ([RFC 9449 §9]). Retrying is the flow's decision, not this module's.
//! - [`verify_proof`] checks a proof the way RFC 9449 §4.3 tells a server to, for
//!   tests and for servers built on core. Replay detection by `jti` is the
//!   caller's: the verified proof hands back the `jti` to remember.
//!
//! [RFC 9449]: https://www.rfc-editor.org/rfc/rfc9449
//! [RFC 9449 §8]: https://www.rfc-editor.org/rfc/rfc9449#section-8
//! [RFC 9449 §9]: https://www.rfc-editor.org/rfc/rfc9449#section-9

use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};
use rand_core::CryptoRng;
use serde::Serialize;
use url::Url;

use crate::base64url;
use crate::jose::{
    Algorithm, ClaimsError, CryptoProvider, JwkThumbprint, JwsError, JwsSigningKey,
    RegisteredClaims, Verifier,
};
use crate::secret::{AccessToken, secret_string};
use crate::time::UnixTime;

/// The `typ` of a DPoP proof.
pub const DPOP_JWT_TYPE: &str = "dpop+jwt";

/// The name of the response header that carries a server nonce.
pub const DPOP_NONCE_HEADER: &str = "dpop-nonce";

/// The OAuth error code a server uses to demand a nonce.
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";

/// The OAuth error code for a proof that fails any other check.
pub const INVALID_DPOP_PROOF: &str = "invalid_dpop_proof";

/// The size cap on a proof received by [`verify_proof`].
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// The longest nonce accepted from a server.
pub const MAX_NONCE_LEN: usize = 1024;

/// The longest `jti` accepted in a proof.
pub const MAX_JTI_LEN: usize = 256;

/// The most origins a [`DpopNonces`] remembers; the oldest is forgotten first.
const MAX_ORIGINS: usize = 16;

secret_string! {
    /// A signed DPoP proof, sent as the `DPoP` request header.
    pub struct DpopProof;
}

/// Why a proof could not be made or a nonce was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// The server sent a `DPoP-Nonce` that is empty, too long or has characters
    /// outside the RFC 9449 `NQCHAR` set.
    #[error("invalid DPoP-Nonce header")]
    InvalidNonce,
    /// The URL cannot be a DPoP target (it has no host, or is not http(s)).
    #[error("url is not a valid DPoP target")]
    InvalidUrl,
    /// Signing failed.
    #[error(transparent)]
    Jws(#[from] JwsError),
}

/// Builds one DPoP proof for one request.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct DpopProofBuilder<'a> {
    method: &'a Method,
    url: &'a Url,
    nonce: Option<&'a str>,
    access_token: Option<&'a AccessToken>,
}

#[derive(Serialize)]
struct ProofClaims<'a> {
    jti: &'a str,
    htm: &'a str,
    htu: &'a str,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<&'a str>,
}

impl<'a> DpopProofBuilder<'a> {
    /// A proof for a `method` request to `url`.
    pub fn new(method: &'a Method, url: &'a Url) -> Self {
        Self {
            method,
            url,
            nonce: None,
            access_token: None,
        }
    }

    /// Includes the server's nonce.
    pub fn with_nonce(mut self, nonce: Option<&'a str>) -> Self {
        self.nonce = nonce;
        self
    }

    /// Binds the proof to the access token it is presented with (`ath`).
    pub fn with_access_token(mut self, access_token: &'a AccessToken) -> Self {
        self.access_token = Some(access_token);
        self
    }

    /// Signs the proof with `key` at time `now`; the `jti` comes from `rng`.
    pub fn sign<R: CryptoRng + ?Sized>(
        &self,
        key: &JwsSigningKey,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<DpopProof, DpopError> {
        let htu = htu(self.url).ok_or(DpopError::InvalidUrl)?;
        let mut jti = [0u8; 16];
        rng.fill_bytes(&mut jti);
        let jti = base64url::encode(&jti);
        let ath = self
            .access_token
            .map(|token| access_token_hash(token.secret()));
        let claims = ProofClaims {
            jti: &jti,
            htm: self.method.as_str(),
            htu: &htu,
            iat: now.as_secs(),
            nonce: self.nonce,
            ath: ath.as_deref(),
        };
        let proof = key.sign_with_embedded_jwk(Some(DPOP_JWT_TYPE), &claims)?;
        Ok(DpopProof::new(proof))
    }
}

/// The `htu` of a request URL: the URL without query, fragment and user info
/// ([RFC 9449 §4.2]).
///
/// `url` has already lower-cased the scheme and host and dropped a default port.
/// `None` when the URL is not an http(s) URL with a host.
///
/// [RFC 9449 §4.2]: https://www.rfc-editor.org/rfc/rfc9449#section-4.2
#[must_use]
pub fn htu(url: &Url) -> Option<String> {
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return None;
    }
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    // A request target carries no user info (RFC 9110 §4.2.4); never put it in a proof.
    url.set_username("").ok()?;
    url.set_password(None).ok()?;
    Some(url.into())
}

/// `ath`: the base64url SHA-256 of the access token ([RFC 9449 §4.2]).
///
/// [RFC 9449 §4.2]: https://www.rfc-editor.org/rfc/rfc9449#section-4.2
#[must_use]
pub fn access_token_hash(access_token: &str) -> String {
    base64url::encode_sha256(access_token.as_bytes())
}

/// The last nonce each server origin sent, for one session.
///
/// Serializable, so that the nonces learned while starting a login carry over
/// to the callback.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DpopNonces {
    /// `(origin, nonce)`, oldest first. A session talks to two or three origins.
    entries: Vec<(String, String)>,
}

impl DpopNonces {
    /// An empty memory.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The nonce to put in the next proof to `url`'s origin, if one is known.
    #[must_use]
    pub fn nonce_for(&self, url: &Url) -> Option<&str> {
        let origin = url.origin();
        if !origin.is_tuple() {
            return None;
        }
        let origin = origin.ascii_serialization();
        self.entries
            .iter()
            .find(|(o, _)| *o == origin)
            .map(|(_, n)| n.as_str())
    }

    /// Learns the `DPoP-Nonce` of a response from `url`'s origin.
    ///
    /// Returns whether the response carried a nonce. A nonce that breaks the RFC
    /// 9449 syntax is an error and is not stored.
    pub fn handle_response(&mut self, url: &Url, headers: &HeaderMap) -> Result<bool, DpopError> {
        let Some(value) = headers.get(DPOP_NONCE_HEADER) else {
            return Ok(false);
        };
        let nonce = value.to_str().map_err(|_| DpopError::InvalidNonce)?;
        if !is_valid_nonce(nonce) {
            return Err(DpopError::InvalidNonce);
        }
        let origin = url.origin();
        if !origin.is_tuple() {
            // URLs without a server origin would all share the one name "null".
            return Ok(false);
        }
        let origin = origin.ascii_serialization();
        self.entries.retain(|(o, _)| *o != origin);
        if self.entries.len() >= MAX_ORIGINS {
            self.entries.remove(0);
        }
        self.entries.push((origin, nonce.to_owned()));
        Ok(true)
    }
}

/// `nonce = 1*NQCHAR`, `NQCHAR = %x21 / %x23-5B / %x5D-7E` (RFC 9449 §8.1), bounded.
fn is_valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// The largest error body [`is_nonce_challenge`] reads.
const MAX_ERROR_BODY_LEN: usize = 16 * 1024;

/// Whether a response demands that the request be retried with a DPoP nonce.
///
/// True for an authorization server's `400` with a JSON body whose `error` is
/// `use_dpop_nonce`, and for a resource server's `401` with a `WWW-Authenticate`
/// `DPoP` challenge whose `error` is `use_dpop_nonce`. Bodies over 16 KiB and
/// malformed headers are not a challenge.
#[must_use]
pub fn is_nonce_challenge(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> bool {
    match status {
        StatusCode::BAD_REQUEST => {
            body.len() <= MAX_ERROR_BODY_LEN
                && crate::json::parse_object(body).is_ok_and(|map| {
                    map.get("error").and_then(serde_json::Value::as_str) == Some(USE_DPOP_NONCE)
                })
        }
        StatusCode::UNAUTHORIZED => headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| {
                www_authenticate::parse(value).is_some_and(|challenges| {
                    challenges.iter().any(|c| {
                        c.scheme.eq_ignore_ascii_case("DPoP")
                            && c.param("error") == Some(USE_DPOP_NONCE)
                    })
                })
            }),
        _ => false,
    }
}

/// What [`verify_proof`] checks a proof against.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct DpopProofCheck<'a> {
    method: &'a Method,
    url: &'a Url,
    now: UnixTime,
    max_age: Duration,
    leeway: Duration,
    nonce: Option<&'a str>,
    access_token: Option<&'a AccessToken>,
    jkt: Option<&'a JwkThumbprint>,
    algorithms: &'a [Algorithm],
}

impl<'a> DpopProofCheck<'a> {
    /// Checks for a `method` request to `url` received at `now`. `iat` may be up to
    /// `max_age` old; five seconds of leeway apply on both sides.
    pub fn new(method: &'a Method, url: &'a Url, now: UnixTime, max_age: Duration) -> Self {
        Self {
            method,
            url,
            now,
            max_age,
            leeway: Duration::from_secs(5),
            nonce: None,
            access_token: None,
            jkt: None,
            algorithms: &[Algorithm::Es256, Algorithm::Rs256],
        }
    }

    /// Sets the clock leeway.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Requires the proof to carry this server nonce.
    pub fn with_nonce(mut self, nonce: &'a str) -> Self {
        self.nonce = Some(nonce);
        self
    }

    /// Requires `ath` for this access token.
    pub fn with_access_token(mut self, access_token: &'a AccessToken) -> Self {
        self.access_token = Some(access_token);
        self
    }

    /// Requires the proof key to have this thumbprint (the token's `cnf.jkt`).
    pub fn with_jkt(mut self, jkt: &'a JwkThumbprint) -> Self {
        self.jkt = Some(jkt);
        self
    }

    /// Accepts only these signature algorithms (the server's
    /// `dpop_signing_alg_values_supported`).
    pub fn with_algorithms(mut self, algorithms: &'a [Algorithm]) -> Self {
        self.algorithms = algorithms;
        self
    }
}

/// A proof that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedDpopProof {
    /// The thumbprint of the proof's key; bind tokens to it as `cnf.jkt`.
    pub jkt: JwkThumbprint,
    /// The proof's `jti`; the caller refuses a second proof with the same one.
    pub jti: String,
    /// When the proof says it was made.
    pub iat: UnixTime,
}

/// Why a received proof was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopProofError {
    /// `ath` is missing or does not hash the presented access token.
    #[error("dpop proof ath does not match the access token")]
    AccessTokenHash,
    /// A claim is missing, has the wrong type or an impossible value.
    #[error("dpop proof claim `{0}` is missing or malformed")]
    InvalidClaim(&'static str),
    /// `iat` is in the future, beyond the leeway.
    #[error("dpop proof issued in the future")]
    IssuedInFuture,
    /// The JWS itself failed (format, header, `typ`, algorithm, signature).
    #[error("dpop proof: {0}")]
    Jws(JwsError),
    /// The proof key is not the one the access token is bound to.
    #[error("dpop proof key does not match the token binding")]
    KeyMismatch,
    /// `htm` is not the request method.
    #[error("dpop proof htm does not match the request")]
    MethodMismatch,
    /// The header has no `jwk`.
    #[error("dpop proof header has no jwk")]
    MissingJwk,
    /// The proof's nonce is not the current one.
    #[error("dpop proof nonce is stale")]
    NonceMismatch,
    /// The server requires a nonce and the proof has none.
    #[error("dpop proof has no nonce")]
    NonceRequired,
    /// `iat` is older than the allowed age.
    #[error("dpop proof is too old")]
    TooOld,
    /// `htu` is not the request URL.
    #[error("dpop proof htu does not match the request")]
    UrlMismatch,
}

impl DpopProofError {
    /// The OAuth `error` code to answer with: `use_dpop_nonce` when the client
    /// should retry with the nonce in the `DPoP-Nonce` header, otherwise
    /// `invalid_dpop_proof`.
    #[must_use]
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::NonceMismatch | Self::NonceRequired => USE_DPOP_NONCE,
            _ => INVALID_DPOP_PROOF,
        }
    }
}

/// Checks a received DPoP proof against the request it came with (RFC 9449 §4.3).
pub fn verify_proof(
    proof: &str,
    check: &DpopProofCheck<'_>,
    provider: &dyn CryptoProvider,
) -> Result<VerifiedDpopProof, DpopProofError> {
    let verifier = Verifier::new(provider)
        .with_typ(DPOP_JWT_TYPE)
        .with_max_len(MAX_PROOF_LEN)
        .with_algorithms(check.algorithms);
    let jws = verifier.parse(proof).map_err(DpopProofError::Jws)?;
    let jwk = jws
        .header()
        .jwk()
        .map_err(DpopProofError::Jws)?
        .ok_or(DpopProofError::MissingJwk)?;
    let proof_jws = jws.verify(provider, &jwk).map_err(DpopProofError::Jws)?;
    let claims = proof_jws.claims();
    let registered = RegisteredClaims::from_map(claims).map_err(|err| match err {
        ClaimsError::InvalidClaim(name) | ClaimsError::MissingClaim(name) => {
            DpopProofError::InvalidClaim(name)
        }
        _ => DpopProofError::InvalidClaim("claims"),
    })?;

    let jti = registered.jti.ok_or(DpopProofError::InvalidClaim("jti"))?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(DpopProofError::InvalidClaim("jti"));
    }
    let htm = claims
        .get("htm")
        .and_then(|v| v.as_str())
        .ok_or(DpopProofError::InvalidClaim("htm"))?;
    if htm != check.method.as_str() {
        return Err(DpopProofError::MethodMismatch);
    }
    let claimed_htu = claims
        .get("htu")
        .and_then(|v| v.as_str())
        .ok_or(DpopProofError::InvalidClaim("htu"))?;
    let claimed_htu = Url::parse(claimed_htu)
        .ok()
        .and_then(|url| htu(&url))
        .ok_or(DpopProofError::InvalidClaim("htu"))?;
    if Some(claimed_htu) != htu(check.url) {
        return Err(DpopProofError::UrlMismatch);
    }

    let iat = registered.iat.ok_or(DpopProofError::InvalidClaim("iat"))?;
    if iat > check.now.saturating_add(check.leeway) {
        return Err(DpopProofError::IssuedInFuture);
    }
    if check.now
        > iat
            .saturating_add(check.max_age)
            .saturating_add(check.leeway)
    {
        return Err(DpopProofError::TooOld);
    }

    if let Some(expected) = check.nonce {
        let nonce = match claims.get("nonce") {
            None => return Err(DpopProofError::NonceRequired),
            Some(value) => value
                .as_str()
                .ok_or(DpopProofError::InvalidClaim("nonce"))?,
        };
        if nonce != expected {
            return Err(DpopProofError::NonceMismatch);
        }
    }
    if let Some(token) = check.access_token {
        let ath = claims
            .get("ath")
            .and_then(|v| v.as_str())
            .ok_or(DpopProofError::AccessTokenHash)?;
        let expected = access_token_hash(token.secret());
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            ath.as_bytes(),
            expected.as_bytes(),
        )) {
            return Err(DpopProofError::AccessTokenHash);
        }
    }

    let jkt = jwk.thumbprint();
    if check.jkt.is_some_and(|expected| *expected != jkt) {
        return Err(DpopProofError::KeyMismatch);
    }
    Ok(VerifiedDpopProof { jkt, jti, iat })
}

/// A small parser for `WWW-Authenticate` challenges ([RFC 9110 §11.6.1]).
///
/// [RFC 9110 §11.6.1]: https://www.rfc-editor.org/rfc/rfc9110#section-11.6.1
mod www_authenticate {
    /// One challenge: a scheme and its auth-params (a `token68` is kept as no params).
    #[derive(Debug, PartialEq, Eq)]
    pub(super) struct Challenge {
        pub(super) scheme: String,
        params: Vec<(String, String)>,
    }

    impl Challenge {
        /// The value of a parameter; names compare case-insensitively.
        pub(super) fn param(&self, name: &str) -> Option<&str> {
            self.params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    fn is_tchar(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
    }

    struct Cursor<'a> {
        bytes: &'a [u8],
        pos: usize,
    }

    impl Cursor<'_> {
        fn peek(&self) -> Option<u8> {
            self.bytes.get(self.pos).copied()
        }

        fn skip_ws(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t')) {
                self.pos += 1;
            }
        }

        fn skip_ws_and_commas(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
                self.pos += 1;
            }
        }

        fn token(&mut self) -> Option<String> {
            let start = self.pos;
            while self.peek().is_some_and(is_tchar) {
                self.pos += 1;
            }
            (self.pos > start).then(|| String::from_utf8_lossy(&self.bytes[start..self.pos]).into())
        }

        fn quoted_string(&mut self) -> Option<String> {
            // Caller saw the opening quote.
            self.pos += 1;
            let mut out = Vec::new();
            loop {
                match self.peek()? {
                    b'"' => {
                        self.pos += 1;
                        return String::from_utf8(out).ok();
                    }
                    b'\\' => {
                        self.pos += 1;
                        out.push(self.peek()?);
                        self.pos += 1;
                    }
                    b => {
                        out.push(b);
                        self.pos += 1;
                    }
                }
            }
        }
    }

    /// Parses a header value into its challenges; `None` when it is malformed.
    pub(super) fn parse(value: &str) -> Option<Vec<Challenge>> {
        let mut cur = Cursor {
            bytes: value.as_bytes(),
            pos: 0,
        };
        let mut challenges = Vec::new();
        cur.skip_ws_and_commas();
        while cur.peek().is_some() {
            let scheme = cur.token()?;
            let mut params = Vec::new();
            loop {
                cur.skip_ws_and_commas();
                let save = cur.pos;
                let Some(name) = cur.token() else { break };
                if cur.peek() == Some(b'/') {
                    // A token68 (base64 with '/'); such challenges carry no params.
                    while matches!(cur.peek(), Some(b) if is_tchar(b) || b == b'/' || b == b'=') {
                        cur.pos += 1;
                    }
                    continue;
                }
                cur.skip_ws();
                if cur.peek() != Some(b'=') {
                    // Not a parameter: the next challenge's scheme starts here.
                    cur.pos = save;
                    break;
                }
                cur.pos += 1;
                if cur.peek() == Some(b'=') || cur.peek().is_none() {
                    // A token68 (base64 padding); such challenges carry no params.
                    while matches!(cur.peek(), Some(b'=')) {
                        cur.pos += 1;
                    }
                    continue;
                }
                cur.skip_ws();
                let value = if cur.peek() == Some(b'"') {
                    cur.quoted_string()?
                } else {
                    cur.token()?
                };
                params.push((name, value));
            }
            challenges.push(Challenge { scheme, params });
            cur.skip_ws_and_commas();
        }
        Some(challenges)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_rfc9449_challenges() {
            // RFC 9449 §9, with the line folding of the example removed.
            let value = r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#;
            let challenges = parse(value).expect("well-formed");
            assert_eq!(challenges.len(), 1);
            assert_eq!(challenges[0].scheme, "DPoP");
            assert_eq!(challenges[0].param("error"), Some("use_dpop_nonce"));
            assert_eq!(
                challenges[0].param("ERROR_description"),
                Some("Resource server requires nonce in DPoP proof")
            );
        }

        #[test]
        fn parses_several_challenges_and_escapes() {
            let value = r#"Bearer realm="x\"y", error=invalid_token, DPoP algs="ES256 RS256", error="use_dpop_nonce""#;
            let challenges = parse(value).expect("well-formed");
            assert_eq!(challenges.len(), 2);
            assert_eq!(challenges[0].param("realm"), Some("x\"y"));
            assert_eq!(challenges[0].param("error"), Some("invalid_token"));
            assert_eq!(challenges[1].scheme, "DPoP");
            assert_eq!(challenges[1].param("algs"), Some("ES256 RS256"));
            assert_eq!(challenges[1].param("error"), Some("use_dpop_nonce"));
        }

        #[test]
        fn token68_and_bare_schemes() {
            let challenges = parse("Basic, Negotiate abc==, DPoP error=x").expect("well-formed");
            let schemes: Vec<_> = challenges.iter().map(|c| c.scheme.as_str()).collect();
            assert_eq!(schemes, ["Basic", "Negotiate", "DPoP"]);
            assert_eq!(challenges[2].param("error"), Some("x"));
            let slashes =
                parse(r#"Negotiate YII/x+y=, DPoP error="use_dpop_nonce""#).expect("well-formed");
            assert_eq!(slashes.len(), 2);
            assert_eq!(slashes[1].param("error"), Some("use_dpop_nonce"));
        }

        #[test]
        fn malformed_values() {
            assert_eq!(parse(r#"DPoP error="unterminated"#), None);
            assert_eq!(parse("DPoP error=\"ok\" \u{0}"), None);
            assert_eq!(parse("\"DPoP\""), None);
            assert_eq!(parse(""), Some(vec![]));
        }
    }
}

#[cfg(test)]
mod tests;
