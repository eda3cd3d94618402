//! After the login: refreshing the tokens, and revoking them ([RFC 7009]).
//!
//! atlogin needs the person's identity, not a standing session at their PDS, so a
//! deployment can revoke the upstream tokens as soon as the login is verified.
//! A refresh uses the same client key and DPoP key as the first request, as the
//! atproto profile requires; refresh tokens are single-use, so the caller must
//! not run two refreshes of one session at once.
//!
//! [RFC 7009]: https://www.rfc-editor.org/rfc/rfc7009

use std::sync::Arc;

use chacha20::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};

use super::config::ClientConfig;
use super::error::ClientError;
use super::flow::{Answer, LIMITS, ServerSession, server_error};
use super::tokens::{TokenSet, read_token_response};
use crate::dpop::is_nonce_challenge;
use crate::secret::{AccessToken, RefreshToken};
use crate::time::UnixTime;
use crate::transport::{Action, Machine, Outbox, RequestId, Response, TransportError, TxtAnswer};

/// A refreshed session.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Refreshed {
    /// The new tokens; the old refresh token is spent.
    pub tokens: TokenSet,
    /// The session with the nonces learned.
    pub session: ServerSession,
}

/// Exchanges a refresh token for new tokens; drive it as a [`Machine`].
#[derive(Debug)]
pub struct Refresh {
    config: Arc<ClientConfig>,
    session: ServerSession,
    token: RefreshToken,
    previous: TokenSet,
    now: UnixTime,
    rng: ChaCha20Rng,
    outbox: Outbox<Result<Refreshed, ClientError>>,
    pending: Option<(RequestId, bool)>,
}

impl Refresh {
    /// Starts refreshing `tokens`; fails at once if they have no refresh token.
    pub fn new<R: CryptoRng + ?Sized>(
        session: ServerSession,
        tokens: TokenSet,
        config: Arc<ClientConfig>,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<Self, ClientError> {
        let refresh_token = tokens
            .refresh_token
            .clone()
            .ok_or(ClientError::NoRefreshToken)?;
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut refresh = Self {
            config,
            session,
            token: refresh_token,
            previous: tokens,
            now,
            rng: ChaCha20Rng::from_seed(seed),
            outbox: Outbox::new(),
            pending: None,
        };
        refresh.send(false)?;
        Ok(refresh)
    }

    fn send(&mut self, retried: bool) -> Result<(), ClientError> {
        let params = [
            ("grant_type", "refresh_token"),
            ("refresh_token", self.token.secret()),
        ];
        let url = self.session.token_endpoint.clone();
        let request = self
            .session
            .post(&self.config, &url, &params, self.now, &mut self.rng)?;
        self.pending = Some((self.outbox.push_fetch(request, LIMITS), retried));
        Ok(())
    }

    fn finish(&mut self, result: Result<Refreshed, ClientError>) {
        self.pending = None;
        self.outbox.finish(result);
    }
}

impl Machine for Refresh {
    type Output = Result<Refreshed, ClientError>;

    fn poll(&mut self) -> Option<Action<Self::Output>> {
        self.outbox.pop()
    }

    fn handle_response(&mut self, id: RequestId, response: Result<Response, TransportError>) {
        let Some((expected, retried)) = self.pending else {
            return;
        };
        if expected != id {
            return;
        }
        let url = self.session.token_endpoint.clone();
        let body = match self.session.read_answer("token", &url, response, !retried) {
            Ok(Answer::Retry) => {
                if let Err(error) = self.send(true) {
                    self.finish(Err(error));
                }
                return;
            }
            Ok(Answer::Success { body, .. }) => body,
            Err(error) => return self.finish(Err(error)),
        };
        let result =
            read_token_response(&body, self.now, self.config.identity().mode).and_then(|tokens| {
                if tokens.sub == self.previous.sub {
                    Ok(Refreshed {
                        tokens,
                        session: self.session.clone(),
                    })
                } else {
                    Err(ClientError::SubjectMismatch {
                        expected: self.previous.sub.to_string(),
                        found: tokens.sub.to_string(),
                    })
                }
            });
        self.finish(result);
    }

    fn handle_txt(&mut self, _: RequestId, _: TxtAnswer) {}

    fn handle_time(&mut self, now: UnixTime) {
        self.now = now;
    }
}

/// Which token to revoke.
#[derive(Clone, Debug)]
pub enum RevokeToken {
    /// An access token.
    Access(AccessToken),
    /// A refresh token (which ends the whole session at most servers).
    Refresh(RefreshToken),
}

/// Revokes a token; drive it as a [`Machine`].
#[derive(Debug)]
pub struct Revoke {
    config: Arc<ClientConfig>,
    session: ServerSession,
    url: url::Url,
    token: RevokeToken,
    now: UnixTime,
    rng: ChaCha20Rng,
    outbox: Outbox<Result<(), ClientError>>,
    pending: Option<(RequestId, bool)>,
}

impl Revoke {
    /// Starts revoking `token`; fails at once if the server has no revocation endpoint.
    pub fn new<R: CryptoRng + ?Sized>(
        session: ServerSession,
        token: RevokeToken,
        config: Arc<ClientConfig>,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<Self, ClientError> {
        let Some(url) = session.revocation_endpoint.clone() else {
            return Err(ClientError::InvalidResponse {
                endpoint: "metadata",
                problem: "the authorization server has no revocation endpoint".into(),
            });
        };
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut revoke = Self {
            config,
            session,
            url,
            token,
            now,
            rng: ChaCha20Rng::from_seed(seed),
            outbox: Outbox::new(),
            pending: None,
        };
        revoke.send(false)?;
        Ok(revoke)
    }

    fn send(&mut self, retried: bool) -> Result<(), ClientError> {
        let (token, hint) = match &self.token {
            RevokeToken::Access(token) => (token.secret(), "access_token"),
            RevokeToken::Refresh(token) => (token.secret(), "refresh_token"),
        };
        let params = [("token", token), ("token_type_hint", hint)];
        let request =
            self.session
                .post(&self.config, &self.url, &params, self.now, &mut self.rng)?;
        self.pending = Some((self.outbox.push_fetch(request, LIMITS), retried));
        Ok(())
    }

    fn finish(&mut self, result: Result<(), ClientError>) {
        self.pending = None;
        self.outbox.finish(result);
    }
}

impl Machine for Revoke {
    type Output = Result<(), ClientError>;

    fn poll(&mut self) -> Option<Action<Self::Output>> {
        self.outbox.pop()
    }

    fn handle_response(&mut self, id: RequestId, response: Result<Response, TransportError>) {
        let Some((expected, retried)) = self.pending else {
            return;
        };
        if expected != id {
            return;
        }
        let url = self.url.clone();
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                return self.finish(Err(ClientError::Transport {
                    url: url.to_string(),
                    error,
                }));
            }
        };
        // A nonce is learned if sent; a successful revocation need not carry one
        // (RFC 7009 answers are bare 200s). A challenge is retried only with a new nonce.
        let learned = self
            .session
            .dpop_nonces
            .handle_response(&url, response.headers())
            .unwrap_or(false);
        if is_nonce_challenge(response.status(), response.headers(), response.body())
            && learned
            && !retried
        {
            if let Err(error) = self.send(true) {
                self.finish(Err(error));
            }
            return;
        }
        // RFC 7009 §2.2: 200 whether or not the token was valid; the body is ignored.
        if response.status() == http::StatusCode::OK {
            self.finish(Ok(()));
        } else {
            let error = server_error(
                "revocation",
                &url,
                response.status().as_u16(),
                response.body(),
            );
            self.finish(Err(error));
        }
    }

    fn handle_txt(&mut self, _: RequestId, _: TxtAnswer) {}

    fn handle_time(&mut self, now: UnixTime) {
        self.now = now;
    }
}
