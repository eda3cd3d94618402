//! The OpenID Connect provider atlogin is toward Matrix: the authorization-code
//! flow with PKCE, as Matrix Authentication Service and Synapse use it.
//!
//! Pure functions over values: each takes the parsed request, `now`, an RNG
//! where something is generated, and whatever stored state the caller looked up
//! by [`storage_key`]; each returns the HTTP answer and what to store. Codes and
//! tokens are stored under the SHA-256 of their value, never the value itself.
//!
//! | endpoint | functions |
//! | --- | --- |
//! | discovery, JWKS | [`discovery_document`], [`ProviderConfig::jwks`] |
//! | authorization | [`authorize`], then [`issue_code`] or [`deny`] after the upstream login |
//! | token | [`parse_token_request`], [`authenticate_client`], [`token`] |
//! | userinfo | [`bearer_token`], [`userinfo`] |
//! | revocation | [`RevocationRequest`], [`parse_client_auth`], [`authenticate_client`], [`revoke`] |
//! | back-channel logout | [`logout_token`] |
//!
//! # Not supported
//!
//! Implicit and hybrid flows, `client_secret_jwt`, request objects, dynamic
//! client registration, introspection, RP-initiated logout, pairwise subjects.

mod authorize;
mod config;
mod error;
mod resource;
mod token;

pub use authorize::{
    AuthenticatedUser, AuthorizeError, CodeGrant, MAX_AUTHORIZE_QUERY_LEN, PageError,
    PendingAuthorization, Prompt, authorize, deny, issue_code,
};
pub use config::{
    ClientAuth, ClientSecret, Lifetimes, MIN_SECRET_LEN, ProviderConfig, ProviderConfigError,
    RegisteredClient, StoredSecret,
};
pub use error::OAuthError;
pub use resource::{
    PresentedToken, Revocation, RevocationRequest, bearer_token, logout_token, revoke, userinfo,
};
pub use token::{
    AccessGrant, AuthenticatedClient, ClientAssertion, Grant, MAX_TOKEN_REQUEST_LEN, PresentedAuth,
    RefreshGrant, StoreChanges, Stored, TokenOutcome, TokenRequest, authenticate_client,
    parse_client_auth, parse_token_request, token,
};

use serde_json::{Value, json};

use config::{AUTHORIZE_PATH, JWKS_PATH, REVOKE_PATH, TOKEN_PATH, USERINFO_PATH};

/// The key under which a code or token is stored: its SHA-256, base64url. A
/// leaked store gives away no usable code or token.
#[must_use]
pub fn storage_key(secret: &str) -> String {
    crate::base64url::encode_sha256(secret.as_bytes())
}

/// The discovery document served at `/.well-known/openid-configuration`
/// (OpenID Connect Discovery 1.0 §3, RFC 8414 §2).
#[must_use]
pub fn discovery_document(config: &ProviderConfig) -> Value {
    let algs: Vec<&str> = config
        .signing_algorithms()
        .into_iter()
        .map(crate::jose::Algorithm::as_str)
        .collect();
    json!({
        "issuer": config.issuer(),
        "authorization_endpoint": config.endpoint(AUTHORIZE_PATH),
        "token_endpoint": config.endpoint(TOKEN_PATH),
        "userinfo_endpoint": config.endpoint(USERINFO_PATH),
        "jwks_uri": config.endpoint(JWKS_PATH),
        "revocation_endpoint": config.endpoint(REVOKE_PATH),
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid",
            "preferred_username", "name", "picture", "email", "email_verified",
        ],
        "prompt_values_supported": ["login", "consent", "none"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    })
}

#[cfg(test)]
#[expect(
    clippy::too_many_lines,
    reason = "table-driven tests, one row per rule"
)]
mod tests;
