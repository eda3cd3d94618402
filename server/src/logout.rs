//! Back-channel logout ([OpenID Connect Back-Channel Logout 1.0]): when a
//! person's sessions end, a signed logout token goes to each relying party that
//! registered a `backchannel_logout_uri`, so it ends its own session too.
//!
//! Sessions end in two ways: `atlogin logout <did>` ends every session of one
//! person (a stolen account, a departing member), and a replayed code or
//! refresh token ends the session it belonged to (RFC 9700 §4.14.2).
//!
//! Each sign-in that gave a relying party a code is a session, named by the
//! family of its code: the `sid` of its ID tokens and of the logout token
//! (Synapse accepts logout tokens with a `sid` only). atlogin remembers the
//! session for as long as a refresh token would live, since the relying
//! party's own session outlives atlogin's short-lived access tokens.
//!
//! The URIs come from the operator's configuration, not from the person, so
//! they are reached directly (a relying party often runs on the same host),
//! with short timeouts and no redirects.
//!
//! [OpenID Connect Back-Channel Logout 1.0]: https://openid.net/specs/openid-connect-backchannel-1_0.html

use std::time::Duration;

use atlogin_core::identity::Did;
use atlogin_core::provider::{ProviderConfig, RegisteredClient, logout_token};
use atlogin_core::time::UnixTime;

use crate::store::{Store, StoreError};

/// How long a relying party has to acknowledge a logout token.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a logout token was not delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutError {
    /// The token could not be signed.
    #[error("the logout token could not be signed")]
    Signing,
    /// The relying party could not be reached.
    #[error("{uri} could not be reached: {reason}")]
    Unreachable {
        /// Its back-channel logout URI.
        uri: String,
        /// Why.
        reason: String,
    },
    /// The relying party refused the token.
    #[error("{uri} answered HTTP {status}")]
    Refused {
        /// Its back-channel logout URI.
        uri: String,
        /// The status.
        status: u16,
    },
}

/// Sends logout tokens.
#[derive(Clone, Debug)]
pub struct LogoutSender {
    http: reqwest::Client,
}

impl LogoutSender {
    /// A sender with the workspace's TLS roots.
    pub fn new() -> Result<Self, String> {
        let tls = atlogin_driver::hardening::tls_config(&[]).map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(atlogin_driver::hardening::USER_AGENT)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http })
    }

    /// Sends `client` a logout token for the session `sid` of `sub`, if it
    /// registered a back-channel logout URI; `Ok(false)` when it did not.
    pub async fn send(
        &self,
        provider: &ProviderConfig,
        client: &RegisteredClient,
        sub: &Did,
        sid: &str,
        now: UnixTime,
    ) -> Result<bool, LogoutError> {
        let Some(uri) = &client.backchannel_logout_uri else {
            return Ok(false);
        };
        let token = logout_token(
            provider,
            client,
            sub,
            Some(sid),
            now,
            &mut crate::app::rng(),
        )
        .map_err(|_| LogoutError::Signing)?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("logout_token", &token)
            .finish();
        let response = self
            .http
            .post(uri.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| LogoutError::Unreachable {
                uri: uri.to_string(),
                // reqwest's message names the URL and the failure, not the body.
                reason: e.to_string(),
            })?;
        // §2.8: 200 OK (or any success) acknowledges; anything else is a refusal.
        if response.status().is_success() {
            Ok(true)
        } else {
            Err(LogoutError::Refused {
                uri: uri.to_string(),
                status: response.status().as_u16(),
            })
        }
    }
}

/// A session a relying party holds, as stored. Its fields are exactly these, so
/// the other rows of a person (codes and tokens, which name a client and a
/// family among much else) never read as one.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// The relying party.
    pub client_id: String,
    /// The family of the sign-in's code: the session's `sid`.
    pub family: String,
}

/// What [`end_sessions`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Ended {
    /// Codes, access and refresh tokens deleted.
    pub tokens: usize,
    /// Sessions ended.
    pub sessions: usize,
    /// Logout tokens the relying parties acknowledged, by client.
    pub notified: Vec<String>,
    /// Deliveries that failed.
    pub failed: Vec<(String, LogoutError)>,
}

/// Ends every session of `did`: deletes its codes and tokens and sends a logout
/// token for each session to its relying party, when it registered a
/// back-channel logout URI.
pub async fn end_sessions(
    store: &dyn Store,
    provider: &ProviderConfig,
    sender: &LogoutSender,
    did: &Did,
    now: UnixTime,
) -> Result<Ended, StoreError> {
    let rows = store.end_sessions(did.as_str(), now).await?;
    let sessions: Vec<Session> = rows
        .iter()
        .filter_map(|row| serde_json::from_str::<Session>(&row.payload).ok())
        .collect();
    let mut ended = Ended {
        tokens: rows.len() - sessions.len(),
        sessions: sessions.len(),
        ..Ended::default()
    };
    for session in &sessions {
        let Some(client) = provider.client(&session.client_id) else {
            continue;
        };
        match sender
            .send(provider, client, did, &session.family, now)
            .await
        {
            Ok(true) => ended.notified.push(client.client_id.clone()),
            Ok(false) => {}
            Err(error) => ended.failed.push((client.client_id.clone(), error)),
        }
    }
    Ok(ended)
}
