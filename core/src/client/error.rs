//! The one error type of the client flows.

use crate::discovery::DiscoveryError;
use crate::identity::IdentityError;
use crate::transport::TransportError;

/// Why a login, refresh or revocation failed. Messages say what to look at and
/// never include a token, code, key or proof.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The authorization server sent the person back with an error.
    #[error("the authorization server did not authorize the login: {error}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    AuthorizationDenied {
        /// The OAuth error code.
        error: String,
        /// Its description, if any (cut to 200 characters).
        description: Option<String>,
    },
    /// Finding the authorization server failed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The login waited longer than its lifetime for the browser.
    #[error("the login has expired; start again")]
    Expired,
    /// Resolving an identity failed.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The callback query is malformed or incomplete.
    #[error("the callback is malformed: {0}")]
    InvalidCallback(&'static str),
    /// An answer from the authorization server breaks the protocol.
    #[error("the authorization server's {endpoint} answer is unusable: {problem}")]
    InvalidResponse {
        /// Which endpoint answered.
        endpoint: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The tokens were issued by another server than the account's own.
    #[error(
        "{did} is served by the authorization server {found}, not by {expected}, which issued the tokens"
    )]
    IssuerProof {
        /// The account.
        did: String,
        /// The issuer its PDS names.
        found: String,
        /// The issuer the login went to.
        expected: String,
    },
    /// The callback's `iss` is missing or names another server (RFC 9207).
    #[error("the callback comes from {found}, not from {expected}")]
    IssuerMismatch {
        /// The issuer of the login.
        expected: String,
        /// The `iss` the callback carries, or "no issuer".
        found: String,
    },
    /// The session's client key is no longer configured.
    #[error("the client key {0} this session began with is no longer configured")]
    KeyRetired(String),
    /// A success answer came without the `DPoP-Nonce` header the profile requires.
    #[error("the authorization server's {endpoint} answer has no DPoP-Nonce header")]
    MissingDpopNonce {
        /// Which endpoint answered.
        endpoint: &'static str,
    },
    /// A refresh was asked of a session without a refresh token.
    #[error("the session has no refresh token")]
    NoRefreshToken,
    /// The login asked for a scope the client is not configured for.
    #[error("the scope {0} is not among the client's configured scope")]
    ScopeNotAllowed(String),
    /// The authorization server refused a request with an OAuth error.
    #[error("the authorization server refused the {endpoint} request: {error}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    ServerRefused {
        /// Which endpoint refused.
        endpoint: &'static str,
        /// The OAuth error code.
        error: String,
        /// Its description, if any (cut to 200 characters).
        description: Option<String>,
    },
    /// Signing an assertion or proof failed (a local fault).
    #[error("signing failed: {0}")]
    Signing(&'static str),
    /// The callback's `state` is not this login's.
    #[error("the callback's state does not match the login")]
    StateMismatch,
    /// A response had an unexpected status and no OAuth error.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The token's `sub` is not the DID the login started from.
    #[error("the tokens are for {found}, but the login was for {expected}")]
    SubjectMismatch {
        /// The DID the login resolved at the start.
        expected: String,
        /// The `sub` of the token response.
        found: String,
    },
    /// A request produced no response.
    #[error("could not reach {url}: {error}")]
    Transport {
        /// The URL.
        url: String,
        /// Why.
        error: TransportError,
    },
}
