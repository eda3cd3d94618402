//! Back-channel logout ([OpenID Connect Back-Channel Logout 1.0]): when a
//! person's sessions end, a signed logout token goes to each relying party that
//! registered a `backchannel_logout_uri`, so it ends its own session too.
//!
//! Sessions end in two ways: `atlogin logout <did>` ends every session of one
//! person (a stolen account, a departing member), and a replayed code or
//! refresh token ends the session it belonged to (RFC 9700 §4.14.2).
//!
//! The URIs come from the operator's configuration, not from the person, so
//! they are reached directly (a relying party often runs on the same host),
//! with short timeouts and no redirects.
//!
//! [OpenID Connect Back-Channel Logout 1.0]: https://openid.net/specs/openid-connect-backchannel-1_0.html

use std::time::Duration;

use atlogin_core::identity::Did;
use atlogin_core::provider::{
    AccessGrant, ProviderConfig, RefreshGrant, RegisteredClient, logout_token,
};
use atlogin_core::time::UnixTime;

use crate::store::{Record, Store, StoreError};

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

    /// Sends `client` a logout token for `sub`, if it registered a
    /// back-channel logout URI; `Ok(false)` when it did not.
    pub async fn send(
        &self,
        provider: &ProviderConfig,
        client: &RegisteredClient,
        sub: &Did,
        now: UnixTime,
    ) -> Result<bool, LogoutError> {
        let Some(uri) = &client.backchannel_logout_uri else {
            return Ok(false);
        };
        let token = logout_token(provider, client, sub, now, &mut crate::app::rng())
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

/// The relying parties whose tokens `rows` are.
fn clients_of(rows: &[Record]) -> Vec<String> {
    let mut clients: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            serde_json::from_str::<AccessGrant>(&row.payload)
                .map(|g| g.client_id)
                .or_else(|_| {
                    serde_json::from_str::<RefreshGrant>(&row.payload).map(|g| g.client_id)
                })
                .ok()
        })
        .collect();
    clients.sort();
    clients.dedup();
    clients
}

/// What [`end_sessions`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Ended {
    /// Access and refresh tokens deleted.
    pub tokens: usize,
    /// Relying parties that held tokens.
    pub clients_with_tokens: Vec<String>,
    /// Relying parties that acknowledged a logout token.
    pub notified: Vec<String>,
    /// Deliveries that failed.
    pub failed: Vec<(String, LogoutError)>,
}

/// Ends every session of `did`: deletes its tokens and sends a logout token to
/// every relying party with a back-channel logout URI (a relying party keeps its
/// own session after its tokens from atlogin expire, so all of them are told).
pub async fn end_sessions(
    store: &dyn Store,
    provider: &ProviderConfig,
    sender: &LogoutSender,
    did: &Did,
    now: UnixTime,
) -> Result<Ended, StoreError> {
    let rows = store.end_sessions(did.as_str(), now).await?;
    let mut ended = Ended {
        tokens: rows.len(),
        clients_with_tokens: clients_of(&rows),
        ..Ended::default()
    };
    for client in provider.clients() {
        match sender.send(provider, client, did, now).await {
            Ok(true) => ended.notified.push(client.client_id.clone()),
            Ok(false) => {}
            Err(error) => ended.failed.push((client.client_id.clone(), error)),
        }
    }
    Ok(ended)
}
