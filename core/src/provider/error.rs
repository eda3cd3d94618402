//! Errors in the exact shapes of RFC 6749 and OpenID Connect.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use serde_json::json;

/// An OAuth error answered from the token, userinfo or revocation endpoint
/// ([RFC 6749 §5.2], [RFC 6750 §3]).
///
/// [RFC 6749 §5.2]: https://www.rfc-editor.org/rfc/rfc6749#section-5.2
/// [RFC 6750 §3]: https://www.rfc-editor.org/rfc/rfc6750#section-3
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {description}")]
#[non_exhaustive]
pub struct OAuthError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The error code.
    pub error: &'static str,
    /// A description for the developer of the client.
    pub description: String,
    /// A `WWW-Authenticate` challenge to send, if any.
    pub www_authenticate: Option<String>,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            www_authenticate: None,
        }
    }

    /// `invalid_request` (400).
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// `invalid_client` (401); with HTTP Basic, a `Basic` challenge goes with it
    /// (RFC 6749 §5.2).
    pub fn invalid_client(description: impl Into<String>, basic: bool) -> Self {
        let mut error = Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description);
        if basic {
            error.www_authenticate = Some(r#"Basic realm="atlogin", charset="UTF-8""#.to_owned());
        }
        error
    }

    /// `invalid_grant` (400).
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    /// `unauthorized_client` (400).
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    /// `unsupported_grant_type` (400).
    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            description,
        )
    }

    /// `invalid_scope` (400).
    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    /// `invalid_token` (401) with a `Bearer` challenge (RFC 6750 §3.1).
    pub fn invalid_token(description: impl Into<String>) -> Self {
        let description = description.into();
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            description.clone(),
        );
        error.www_authenticate = Some(format!(
            r#"Bearer error="invalid_token", error_description="{}""#,
            description.replace('"', "'")
        ));
        error
    }

    /// `invalid_request` (400) at a resource endpoint, with its `Bearer` challenge.
    pub fn bearer_invalid_request(description: impl Into<String>) -> Self {
        let mut error = Self::invalid_request(description);
        error.www_authenticate = Some(r#"Bearer error="invalid_request""#.to_owned());
        error
    }

    /// A request with no credentials at all: 401 with a bare `Bearer` challenge
    /// and no error code (RFC 6750 §3.1).
    pub fn bearer_unauthenticated() -> Self {
        let mut error = Self::new(StatusCode::UNAUTHORIZED, "", "no access token");
        error.www_authenticate = Some("Bearer".to_owned());
        error
    }

    /// `server_error` (500): an internal fault, described no further.
    pub fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error",
        )
    }

    /// The HTTP response: a JSON body, `Cache-Control: no-store`.
    #[must_use]
    pub fn to_response(&self) -> http::Response<Vec<u8>> {
        let body = if self.error.is_empty() {
            json!({})
        } else {
            json!({"error": self.error, "error_description": self.description})
        };
        let mut response = json_response(self.status, &body);
        if let Some(challenge) = &self.www_authenticate
            && let Ok(value) = HeaderValue::from_str(challenge)
        {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// A JSON response that no cache may keep (RFC 6749 §5.1).
pub(crate) fn json_response(
    status: StatusCode,
    body: &serde_json::Value,
) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.to_string().into_bytes());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
