//! What every request to an authorization server shares: client authentication
//! with an RFC 7523 client assertion, a DPoP proof carrying the server's nonce,
//! one retry when the server asks for a new nonce, and the reading of answers.

use std::time::Duration;

use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::config::ClientConfig;
use super::error::ClientError;
use crate::dpop::{DpopNonces, DpopProofBuilder, is_nonce_challenge};
use crate::jose::{EcPrivateKey, JwkThumbprint, JwsSigningKey};
use crate::secret::AccessToken;
use crate::time::UnixTime;
use crate::transport::{FetchLimits, Response, TransportError, excerpt, is_json};

/// The `client_assertion_type` of `private_key_jwt` (RFC 7523 §2.2).
pub(crate) const CLIENT_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a client assertion is valid.
pub(crate) const ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

/// The largest answer read from an authorization server endpoint.
pub(crate) const MAX_ANSWER_LEN: usize = 64 * 1024;

/// Limits for every request to an authorization server endpoint: no redirects.
pub(crate) const LIMITS: FetchLimits = FetchLimits {
    max_body_len: MAX_ANSWER_LEN,
    max_redirects: 0,
};

/// What a login keeps of its authorization server between requests: where to
/// send them, which client key and DPoP key it uses, and the nonces it learned.
///
/// Refreshes must use the same client key and DPoP key as the first request, so
/// both stay with the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServerSession {
    /// The authorization server's issuer identifier.
    pub issuer: String,
    /// Its token endpoint.
    pub token_endpoint: Url,
    /// Its revocation endpoint, if it has one.
    pub revocation_endpoint: Option<Url>,
    /// The `kid` of the client key this session authenticates with; `None` for
    /// the loopback client.
    pub client_kid: Option<String>,
    /// That key's thumbprint: a key replaced under the same `kid` is another key.
    pub client_jkt: Option<JwkThumbprint>,
    /// The session's own DPoP key.
    pub dpop_key: EcPrivateKey,
    /// The DPoP nonces learned so far.
    pub dpop_nonces: DpopNonces,
}

impl ServerSession {
    /// A form POST to `url` with client authentication and a DPoP proof.
    pub(crate) fn post<R: CryptoRng + ?Sized>(
        &self,
        config: &ClientConfig,
        url: &Url,
        params: &[(&str, &str)],
        now: UnixTime,
        rng: &mut R,
    ) -> Result<http::Request<Vec<u8>>, ClientError> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in params {
            form.append_pair(name, value);
        }
        form.append_pair("client_id", config.client_id());
        if let Some(assertion) = self.client_assertion(config, now, rng)? {
            form.append_pair("client_assertion_type", CLIENT_ASSERTION_TYPE);
            form.append_pair("client_assertion", &assertion);
        }
        let proof = self.dpop_header(config, &Method::POST, url, None, now, rng)?;
        let uri: http::Uri = url
            .as_str()
            .parse()
            .map_err(|_| ClientError::Signing("the endpoint is not a valid URI"))?;
        let mut request = http::Request::new(form.finish().into_bytes());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert("dpop", proof);
        Ok(request)
    }

    /// A `DPoP` header value for a request to `url`, with the nonce known for its
    /// origin and, toward a resource server, the access token's hash.
    pub(crate) fn dpop_header<R: CryptoRng + ?Sized>(
        &self,
        config: &ClientConfig,
        method: &Method,
        url: &Url,
        access_token: Option<&AccessToken>,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<HeaderValue, ClientError> {
        let key = config
            .provider()
            .load_es256(&self.dpop_key)
            .map_err(|_| ClientError::Signing("the DPoP key could not be loaded"))?;
        let mut builder =
            DpopProofBuilder::new(method, url).with_nonce(self.dpop_nonces.nonce_for(url));
        if let Some(token) = access_token {
            builder = builder.with_access_token(token);
        }
        let proof = builder
            .sign(&JwsSigningKey::new(key), now, rng)
            .map_err(|_| ClientError::Signing("the DPoP proof could not be signed"))?;
        HeaderValue::from_str(proof.secret())
            .map_err(|_| ClientError::Signing("the DPoP proof is not a header value"))
    }

    /// The client assertion for this session's key; `None` for a public client.
    fn client_assertion<R: CryptoRng + ?Sized>(
        &self,
        config: &ClientConfig,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<Option<String>, ClientError> {
        let Some(kid) = &self.client_kid else {
            return Ok(None);
        };
        // A key replaced under the same kid is not the key this session began with.
        let key = config
            .key(kid)
            .filter(|key| {
                self.client_jkt
                    .as_ref()
                    .is_none_or(|jkt| key.public_jwk().thumbprint() == *jkt)
            })
            .ok_or_else(|| ClientError::KeyRetired(kid.clone()))?;
        let mut jti = [0u8; 16];
        rng.fill_bytes(&mut jti);
        let claims = serde_json::json!({
            "iss": config.client_id(),
            "sub": config.client_id(),
            "aud": self.issuer,
            "jti": crate::base64url::encode(&jti),
            "iat": now.as_secs(),
            "exp": now.saturating_add(ASSERTION_LIFETIME).as_secs(),
        });
        key.sign(None, &claims)
            .map(Some)
            .map_err(|_| ClientError::Signing("the client assertion could not be signed"))
    }

    /// Reads an answer from `endpoint` at `url`: learns its DPoP nonce, says
    /// whether to retry for a new nonce (once), and otherwise returns the JSON body
    /// of a success or the server's OAuth error.
    pub(crate) fn read_answer(
        &mut self,
        endpoint: &'static str,
        url: &Url,
        response: Result<Response, TransportError>,
        may_retry: bool,
    ) -> Result<Answer, ClientError> {
        let response = response.map_err(|error| ClientError::Transport {
            url: url.to_string(),
            error,
        })?;
        let had_nonce = self
            .dpop_nonces
            .handle_response(url, response.headers())
            .map_err(|_| ClientError::InvalidResponse {
                endpoint,
                problem: "its DPoP-Nonce header is malformed".into(),
            })?;
        if is_nonce_challenge(response.status(), response.headers(), response.body()) {
            return if may_retry && had_nonce {
                Ok(Answer::Retry)
            } else {
                Err(ClientError::ServerRefused {
                    endpoint,
                    error: "use_dpop_nonce".into(),
                    description: Some("the server asked for a DPoP nonce again".into()),
                })
            };
        }
        let status = response.status().as_u16();
        if matches!(status, 200 | 201) {
            if !had_nonce {
                return Err(ClientError::MissingDpopNonce { endpoint });
            }
            if !is_json(&response) {
                return Err(ClientError::InvalidResponse {
                    endpoint,
                    problem: "it is not JSON".into(),
                });
            }
            return Ok(Answer::Success {
                body: parse_body(endpoint, response.body())?,
            });
        }
        Err(server_error(endpoint, url, status, response.body()))
    }
}

/// A readable answer from an authorization server.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Send the request again with the nonce just learned.
    Retry,
    /// A success and its JSON body.
    Success { body: Map<String, Value> },
}

/// The OAuth error in a failed answer, or the bare status when there is none.
pub(crate) fn server_error(
    endpoint: &'static str,
    url: &Url,
    status: u16,
    body: &[u8],
) -> ClientError {
    let map = (body.len() <= MAX_ANSWER_LEN)
        .then(|| crate::json::parse_object(body).ok())
        .flatten();
    let error = map
        .as_ref()
        .and_then(|m| m.get("error"))
        .and_then(Value::as_str);
    match error {
        Some(error) => ClientError::ServerRefused {
            endpoint,
            error: excerpt(error),
            description: map
                .as_ref()
                .and_then(|m| m.get("error_description"))
                .and_then(Value::as_str)
                .map(excerpt),
        },
        None => ClientError::Status {
            url: url.to_string(),
            status,
        },
    }
}

/// The JSON object of an answer body, refused when larger than [`MAX_ANSWER_LEN`].
pub(crate) fn parse_body(
    endpoint: &'static str,
    body: &[u8],
) -> Result<Map<String, Value>, ClientError> {
    if body.len() > MAX_ANSWER_LEN {
        return Err(ClientError::InvalidResponse {
            endpoint,
            problem: "it is too large".into(),
        });
    }
    crate::json::parse_object(body).map_err(|_| ClientError::InvalidResponse {
        endpoint,
        problem: "it is not a JSON object".into(),
    })
}

/// A required string member of an answer.
pub(crate) fn required_str<'a>(
    body: &'a Map<String, Value>,
    endpoint: &'static str,
    name: &'static str,
) -> Result<&'a str, ClientError> {
    match crate::json::optional_str(body, name) {
        Ok(Some(value)) if !value.is_empty() => Ok(value),
        _ => Err(ClientError::InvalidResponse {
            endpoint,
            problem: format!("{name} is missing or not a string"),
        }),
    }
}
