//! Finishing a login: from the browser's return to a verified identity.
//!
//! 1. The callback query is read strictly (each parameter at most once, a size
//!    cap). `state` must be the login's, the login must not have expired, `iss`
//!    must name the login's authorization server (RFC 9207, checked before an
//!    `error` is believed), and an `error` ends the login with that error.
//! 2. The code is exchanged at the token endpoint with the PKCE verifier, the
//!    redirect URI, client authentication and a DPoP proof (once more with a new
//!    nonce on `use_dpop_nonce`).
//! 3. The token response must say `token_type` DPoP, grant a scope holding
//!    `atproto`, and name a DID as `sub`; it must carry a `DPoP-Nonce` header.
//! 4. The issuer proof: when the login began from a handle or DID, `sub` must be
//!    that DID; in every case `sub` is resolved afresh (DID document, PDS,
//!    protected resource, authorization server) and must lead back to the very
//!    issuer that issued the tokens. Only then is the identity verified.

use std::sync::Arc;

use chacha20::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};
use url::Url;

use super::config::{ClientConfig, Scope};
use super::error::ClientError;
use super::flow::{Answer, LIMITS, ServerSession};
use super::issuer::{FindIssuer, Found};
use super::login::{LoginState, PendingLogin};
use super::tokens::{TokenSet, read_token_response};
use crate::identity::{AtIdentifier, Did, Handle};
use crate::secret::AuthorizationCode;
use crate::time::UnixTime;
use crate::transport::{
    Action, Machine, Outbox, RequestId, Response, TransportError, TxtAnswer, excerpt, split,
};

/// The largest callback query read, in bytes.
pub const MAX_CALLBACK_QUERY_LEN: usize = 8 * 1024;

/// The parameters of an authorization response ([RFC 6749 §4.1.2], [RFC 9207]).
///
/// [RFC 6749 §4.1.2]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
/// [RFC 9207]: https://www.rfc-editor.org/rfc/rfc9207
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackParams {
    /// `code`.
    pub code: Option<AuthorizationCode>,
    /// `state`.
    pub state: Option<LoginState>,
    /// `iss`.
    pub iss: Option<String>,
    /// `error`.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
}

impl CallbackParams {
    /// Reads a callback query string (without the `?`). Each known parameter may
    /// appear once; unknown ones are ignored.
    pub fn parse(query: &str) -> Result<Self, ClientError> {
        if query.len() > MAX_CALLBACK_QUERY_LEN {
            return Err(ClientError::InvalidCallback("the query is too long"));
        }
        let mut params = Self::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "code" => {
                    if params.code.is_some() {
                        return Err(ClientError::InvalidCallback("code appears twice"));
                    }
                    params.code = Some(AuthorizationCode::new(value.into_owned()));
                    continue;
                }
                "state" => {
                    if params.state.is_some() {
                        return Err(ClientError::InvalidCallback("a parameter appears twice"));
                    }
                    params.state = Some(LoginState::new(value.into_owned()));
                    continue;
                }
                "iss" => &mut params.iss,
                "error" => &mut params.error,
                "error_description" => &mut params.error_description,
                _ => continue,
            };
            if slot.is_some() {
                return Err(ClientError::InvalidCallback("a parameter appears twice"));
            }
            *slot = Some(value.into_owned());
        }
        Ok(params)
    }
}

/// A login that went all the way: the identity is proven.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VerifiedLogin {
    /// The account's DID, proven by its own authorization server.
    pub did: Did,
    /// The handle, if it is verified in both directions.
    pub handle: Option<Handle>,
    /// The account's PDS.
    pub pds: Url,
    /// The authorization server that vouched.
    pub issuer: String,
    /// The scope granted.
    pub scope: Scope,
    /// The tokens.
    pub tokens: TokenSet,
    /// What refresh and revocation need.
    pub session: ServerSession,
}

#[derive(Debug)]
enum Stage {
    Token {
        id: RequestId,
        code: AuthorizationCode,
        retried: bool,
    },
    Proving {
        finder: Box<FindIssuer>,
        tokens: TokenSet,
    },
    Finished,
}

/// Finishes a login; drive it as a [`Machine`].
///
/// It signs a client assertion and a DPoP proof, so the caller should pass the
/// current time with [`Machine::handle_time`] before each answer.
#[derive(Debug)]
pub struct CompleteLogin {
    config: Arc<ClientConfig>,
    pending: PendingLogin,
    now: UnixTime,
    rng: ChaCha20Rng,
    outbox: Outbox<Result<VerifiedLogin, ClientError>>,
    stage: Stage,
}

impl CompleteLogin {
    /// Checks the callback against the stored login and starts the code exchange.
    pub fn new<R: CryptoRng + ?Sized>(
        pending: PendingLogin,
        callback: &CallbackParams,
        config: Arc<ClientConfig>,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<Self, ClientError> {
        let state = callback
            .state
            .as_ref()
            .ok_or(ClientError::InvalidCallback("state is missing"))?;
        // Secret types compare in constant time.
        if *state != pending.state {
            return Err(ClientError::StateMismatch);
        }
        if now >= pending.expires_at {
            return Err(ClientError::Expired);
        }
        match callback.iss.as_deref() {
            Some(iss) if iss == pending.session.issuer => {}
            found => {
                return Err(ClientError::IssuerMismatch {
                    expected: pending.session.issuer.clone(),
                    found: found.map_or_else(|| "no issuer".to_owned(), excerpt),
                });
            }
        }
        if let Some(error) = &callback.error {
            return Err(ClientError::AuthorizationDenied {
                error: excerpt(error),
                description: callback.error_description.as_deref().map(excerpt),
            });
        }
        let code = callback
            .code
            .clone()
            .ok_or(ClientError::InvalidCallback("code is missing"))?;
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut login = Self {
            config,
            pending,
            now,
            rng: ChaCha20Rng::from_seed(seed),
            outbox: Outbox::new(),
            stage: Stage::Finished,
        };
        login.send_token(code, false)?;
        Ok(login)
    }

    fn send_token(&mut self, code: AuthorizationCode, retried: bool) -> Result<(), ClientError> {
        let params = [
            ("grant_type", "authorization_code"),
            ("code", code.secret()),
            ("redirect_uri", self.pending.redirect_uri.as_str()),
            ("code_verifier", self.pending.pkce_verifier.secret()),
        ];
        let url = self.pending.session.token_endpoint.clone();
        let request =
            self.pending
                .session
                .post(&self.config, &url, &params, self.now, &mut self.rng)?;
        let id = self.outbox.push_fetch(request, LIMITS);
        self.stage = Stage::Token { id, code, retried };
        Ok(())
    }

    fn finish(&mut self, result: Result<VerifiedLogin, ClientError>) {
        self.stage = Stage::Finished;
        self.outbox.finish(result);
    }

    fn handle_token(
        &mut self,
        code: AuthorizationCode,
        retried: bool,
        response: Result<Response, TransportError>,
    ) {
        let url = self.pending.session.token_endpoint.clone();
        let answer = self
            .pending
            .session
            .read_answer("token", &url, response, !retried);
        let body = match answer {
            Ok(Answer::Retry) => {
                if let Err(error) = self.send_token(code, true) {
                    self.finish(Err(error));
                }
                return;
            }
            Ok(Answer::Success { body, .. }) => body,
            Err(error) => return self.finish(Err(error)),
        };
        let tokens = match read_token_response(&body, self.now, self.config.identity().mode) {
            Ok(tokens) => tokens,
            Err(error) => return self.finish(Err(error)),
        };
        if let Some(expected) = &self.pending.expected_did
            && *expected != tokens.sub
        {
            let error = ClientError::SubjectMismatch {
                expected: expected.to_string(),
                found: tokens.sub.to_string(),
            };
            return self.finish(Err(error));
        }
        // The issuer proof: whatever the start, sub is resolved afresh and must lead
        // back to this issuer.
        let identifier = AtIdentifier::Did(tokens.sub.clone());
        let finder =
            FindIssuer::for_identifier(identifier, self.config.identity(), self.outbox.last_id());
        self.stage = Stage::Proving {
            finder: Box::new(finder),
            tokens,
        };
    }

    fn after_proof(&mut self, tokens: TokenSet, found: Found) {
        let expected = &self.pending.session.issuer;
        // A search that starts from a DID always yields its identity; without one
        // nothing is proven.
        let Some(identity) = found.identity else {
            return self.finish(Err(ClientError::IssuerProof {
                did: tokens.sub.to_string(),
                found: found.server.metadata.issuer,
                expected: expected.clone(),
            }));
        };
        if found.server.metadata.issuer != *expected {
            return self.finish(Err(ClientError::IssuerProof {
                did: identity.did.to_string(),
                found: found.server.metadata.issuer,
                expected: expected.clone(),
            }));
        }
        let verified = VerifiedLogin {
            did: identity.did,
            handle: identity.handle,
            pds: identity.pds,
            issuer: expected.clone(),
            scope: tokens.scope.clone(),
            tokens,
            session: self.pending.session.clone(),
        };
        self.finish(Ok(verified));
    }
}

impl Machine for CompleteLogin {
    type Output = Result<VerifiedLogin, ClientError>;

    fn poll(&mut self) -> Option<Action<Self::Output>> {
        loop {
            if let Some(action) = self.outbox.pop() {
                return Some(action);
            }
            let Stage::Proving { finder, .. } = &mut self.stage else {
                return None;
            };
            match split(finder.poll()?) {
                Ok(action) => return Some(action),
                Err(result) => {
                    let Stage::Proving { tokens, .. } =
                        std::mem::replace(&mut self.stage, Stage::Finished)
                    else {
                        return None;
                    };
                    match result {
                        Ok(found) => self.after_proof(tokens, found),
                        Err(error) => self.finish(Err(error)),
                    }
                }
            }
        }
    }

    fn handle_response(&mut self, id: RequestId, response: Result<Response, TransportError>) {
        match std::mem::replace(&mut self.stage, Stage::Finished) {
            Stage::Token {
                id: expected,
                code,
                retried,
            } if expected == id => {
                self.handle_token(code, retried, response);
            }
            Stage::Proving { mut finder, tokens } => {
                finder.handle_response(id, response);
                self.stage = Stage::Proving { finder, tokens };
            }
            stage => self.stage = stage,
        }
    }

    fn handle_txt(&mut self, id: RequestId, answer: TxtAnswer) {
        if let Stage::Proving { finder, .. } = &mut self.stage {
            finder.handle_txt(id, answer);
        }
    }

    fn handle_time(&mut self, now: UnixTime) {
        self.now = now;
    }
}
