//! The AT Protocol OAuth client: signing a person in at their own authorization
//! server and proving who they are.
//!
//! - [`ClientConfig`]: the client, its keys and the documents it publishes.
//! - [`StartLogin`]: what was typed → PAR → the URL to send the browser to, and a
//!   [`PendingLogin`] to store.
//! - [`CompleteLogin`]: the callback → token exchange → issuer proof →
//!   [`VerifiedLogin`].
//! - [`Refresh`] and [`Revoke`]: the tokens after login.
//! - [`FetchProfile`] and [`FetchEmail`]: display name, avatar and email.
//!
//! # The atproto OAuth client checklist, and where each item is enforced
//!
//! | item | rule | where |
//! | --- | --- | --- |
//! | 1 | `client_id` is the https URL of the metadata, no port | [`ClientConfig::confidential`] |
//! | 2 | metadata served with 200 and JSON, `client_id` equal to its URL | [`ClientConfig::metadata_document`] builds it; serving it with 200 and JSON is the server's part |
//! | 3 | grant types, scope ∋ `atproto`, `response_types`, redirect URIs, `dpop_bound_access_tokens` | [`ClientConfig::metadata_document`], [`ClientConfig::with_scope`] |
//! | 4 | `private_key_jwt`, ES256, `jwks` or `jwks_uri` | [`ClientConfig::metadata_document`], [`ClientConfig::with_jwks_uri`] |
//! | 5 | `client_uri` on the client's host; https logo, terms, policy | [`ClientConfig::with_client_uri`], [`ClientConfig::with_policy_uris`] |
//! | 6 | key rotation: several keys with `kid`, new sessions use the newest | [`ClientConfig::current_key`], [`ServerSession::client_kid`] |
//! | 7 | loopback client id `http://localhost?redirect_uri=…&scope=…`, public | [`ClientConfig::loopback`] |
//! | 8 | resolve and verify the identity; start from a PDS URL too | [`StartLogin`] through [`crate::identity`] |
//! | 9 | identity cache under ten minutes | the flows resolve afresh and cache nothing; [`crate::identity::IdentityCache`] is there for callers that cache |
//! | 10, 11 | protected resource and authorization server metadata rules | [`crate::discovery`] |
//! | 12 | PAR for every request; redirect with `client_id` and `request_uri` only | [`StartLogin`] |
//! | 13 | PAR fields: `response_type`, S256 challenge, `state`, redirect URI, scope, client assertion, `login_hint`; no `client_secret` | [`StartLogin`] |
//! | 14 | a fresh PKCE pair per request | [`StartLogin`] |
//! | 15 | client assertion: `iss` = `sub` = client id, `aud` = issuer, `jti`, `iat`; refresh with the same key | [`ServerSession`], [`Refresh`] |
//! | 16 | DPoP from PAR on, a key per session, a fresh `jti`, nonces per server, one retry, `DPoP-Nonce` required on success, `ath` toward the PDS | [`ServerSession`] (PAR, token, refresh: a success without `DPoP-Nonce` fails); [`FetchEmail`] (PDS nonce and `ath`). Revocation and PDS answers may come without a nonce: RFC 7009 and RFC 9449 do not ask for one there |
//! | 17 | callback: `state` and `iss` | [`CompleteLogin::new`] |
//! | 18 | `sub` is the expected DID, and resolves back to this issuer | [`CompleteLogin`] |
//! | 19 | `scope` present and holding `atproto` | [`CompleteLogin`], [`Refresh`] |
//! | 20 | tokens are opaque; refresh tokens single-use | [`TokenSet`], [`Refresh`] (callers serialise refreshes) |
//! | 21 | login state stored server-side, never in `state` | [`PendingLogin`], [`LoginState`] |
//! | 22 | a hardened HTTP client for every fetch | the [`FetchLimits`](crate::transport::FetchLimits) each request carries; the runtime adapters |
//! | 23 | `atproto` alone by default; more only when configured | [`LoginRequest::with_scope`], [`ClientConfig::with_scope`] |
//! | 24 | no ID token from the PDS; atlogin mints its own | [`CompleteLogin`] never reads an `id_token` |

mod callback;
mod config;
mod error;
mod flow;
mod issuer;
mod login;
mod profile;
mod session;
mod tokens;

pub use callback::{CallbackParams, CompleteLogin, MAX_CALLBACK_QUERY_LEN, VerifiedLogin};
pub use config::{ClientConfig, ClientConfigError, DEFAULT_LOGIN_LIFETIME, Jwks, Scope};
pub use error::ClientError;
pub use flow::ServerSession;
pub use login::{
    LoginInput, LoginInputError, LoginRequest, LoginStarted, LoginState, ParResponse, PendingLogin,
    StartLogin, parse_par_response,
};
pub use profile::{AccountEmail, FetchEmail, FetchProfile, Profile};
pub use session::{Refresh, Refreshed, Revoke, RevokeToken};
pub use tokens::{TokenSet, parse_token_response};

#[cfg(test)]
#[expect(
    clippy::too_many_lines,
    reason = "flow tests read top to bottom, one login each"
)]
mod tests;
