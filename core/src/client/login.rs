//! Starting a login: from what the person typed to the authorization server's
//! sign-in page.
//!
//! 1. Resolve the handle or DID ([`IdentityResolver`]); a typed PDS or entryway
//!    URL skips this.
//! 2. Discover the authorization server ([`AuthServerDiscovery`]).
//! 3. Push the authorization request (PAR, RFC 9126) with `response_type=code`, a
//!    fresh PKCE pair, a random `state`, the redirect URI, the scope, `login_hint`,
//!    client authentication and a DPoP proof made with a key of this login's own;
//!    once more with the new nonce if the server answers `use_dpop_nonce`.
//!
//! The result is the URL to send the browser to (carrying only `client_id` and
//! `request_uri`) and a [`PendingLogin`] for the caller to store, keyed by its
//! `state`, until the browser comes back to the callback.

use std::sync::Arc;

use chacha20::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::config::{ClientConfig, Scope};
use super::error::ClientError;
use super::flow::{Answer, LIMITS, ServerSession, parse_body, required_str};
use super::issuer::{FindIssuer, Found};
use crate::dpop::DpopNonces;
use crate::identity::{AtIdentifier, AtIdentifierError, Did, Mode};
use crate::jose::EcPrivateKey;
use crate::pkce::PkceVerifier;
use crate::secret::secret_string;
use crate::time::UnixTime;
use crate::transport::{
    Action, Machine, Outbox, RequestId, Response, TransportError, TxtAnswer, split,
};

secret_string! {
    /// The `state` of one login: random, used once, and the key under which the
    /// caller stores the [`PendingLogin`]. It carries no data.
    pub struct LoginState;
}

/// What a person typed to sign in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginInput {
    /// A handle or DID.
    Identifier(AtIdentifier),
    /// The URL of a PDS or an entryway.
    Service(Url),
}

/// Why the typed text cannot start a login.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginInputError {
    /// Not a handle or DID.
    #[error(transparent)]
    Identifier(#[from] AtIdentifierError),
    /// It starts like a URL but is not one.
    #[error("not a valid server URL")]
    Url,
}

/// A login to start: what was typed, and the scope to ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRequest {
    input: LoginInput,
    login_hint: Option<String>,
    scope: Scope,
    fresh: bool,
}

impl LoginRequest {
    /// Reads what a person typed: an `http(s)://` URL is a server, anything else a
    /// handle or DID. The scope is `atproto` alone.
    pub fn parse(typed: &str, mode: Mode) -> Result<Self, LoginInputError> {
        let trimmed = typed.trim();
        let is_url = ["https://", "http://"].iter().any(|p| {
            trimmed
                .get(..p.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(p))
        });
        let (input, login_hint) = if is_url {
            (
                LoginInput::Service(Url::parse(trimmed).map_err(|_| LoginInputError::Url)?),
                None,
            )
        } else {
            // The hint is the identifier as typed, less the decorative leading `@`.
            let hint = trimmed.strip_prefix('@').unwrap_or(trimmed).to_owned();
            (
                LoginInput::Identifier(AtIdentifier::parse(trimmed, mode)?),
                Some(hint),
            )
        };
        Ok(Self {
            input,
            login_hint,
            scope: Scope::atproto(),
            fresh: false,
        })
    }

    /// Asks the authorization server to make the person sign in again even if
    /// it has a session for them (`prompt=login`), as a relying party's own
    /// `prompt=login` or `max_age` requires.
    #[must_use]
    pub fn with_fresh_sign_in(mut self) -> Self {
        self.fresh = true;
        self
    }

    /// Asks for this scope instead of `atproto` alone; it must include `atproto`.
    pub fn with_scope(mut self, scope: Scope) -> Result<Self, ClientError> {
        if !scope.contains("atproto") {
            return Err(ClientError::ScopeNotAllowed(scope.to_string()));
        }
        self.scope = scope;
        Ok(self)
    }

    /// What was typed.
    #[must_use]
    pub fn input(&self) -> &LoginInput {
        &self.input
    }
}

/// A login waiting for the browser to come back; the caller stores it by `state`.
///
/// It holds secrets (the PKCE verifier, the DPoP private key): store it where only
/// atlogin can read it, and delete it once the callback has used it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PendingLogin {
    /// The login's `state`.
    pub state: LoginState,
    /// The authorization server this login went to, and what it needs to finish.
    pub session: ServerSession,
    /// The redirect URI sent with the request.
    pub redirect_uri: Url,
    /// The PKCE verifier.
    pub pkce_verifier: PkceVerifier,
    /// The DID resolved at the start, when the person typed a handle or DID.
    pub expected_did: Option<Did>,
    /// What the person typed, less a leading `@`, as sent in `login_hint`.
    pub login_hint: Option<String>,
    /// The scope asked for.
    pub scope: Scope,
    /// When the login stops being usable.
    pub expires_at: UnixTime,
}

/// The answer to a pushed authorization request ([RFC 9126 §2.2]).
///
/// [RFC 9126 §2.2]: https://www.rfc-editor.org/rfc/rfc9126#section-2.2
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParResponse {
    /// The `request_uri` to send the browser with.
    pub request_uri: String,
    /// How many seconds it stays valid.
    pub expires_in: u64,
}

const PAR: &str = "pushed authorization request";

/// Parses a PAR success body: a JSON object with a non-empty `request_uri` and a
/// positive integer `expires_in`.
pub fn parse_par_response(body: &[u8]) -> Result<ParResponse, ClientError> {
    read_par_response(&parse_body(PAR, body)?)
}

fn read_par_response(body: &serde_json::Map<String, Value>) -> Result<ParResponse, ClientError> {
    let request_uri = required_str(body, PAR, "request_uri")?.to_owned();
    if request_uri.len() > 2048 {
        return Err(ClientError::InvalidResponse {
            endpoint: PAR,
            problem: "request_uri is too long".into(),
        });
    }
    let expires_in = body
        .get("expires_in")
        .and_then(Value::as_u64)
        .filter(|s| *s > 0)
        .ok_or_else(|| ClientError::InvalidResponse {
            endpoint: PAR,
            problem: "expires_in is missing or not a positive integer".into(),
        })?;
    Ok(ParResponse {
        request_uri,
        expires_in,
    })
}

/// A started login.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LoginStarted {
    /// Where to send the browser: the authorization endpoint with `client_id` and
    /// `request_uri` only.
    pub redirect_url: Url,
    /// What to store until the callback.
    pub pending: PendingLogin,
}

#[derive(Debug)]
enum Stage {
    Finding(Box<FindIssuer>),
    Par {
        id: RequestId,
        url: Url,
        authorize: Url,
        pending: Box<PendingLogin>,
        retried: bool,
    },
    Finished,
}

/// Starts a login; drive it as a [`Machine`].
///
/// It signs a client assertion and a DPoP proof, so the caller should pass the
/// current time with [`Machine::handle_time`] before each answer.
#[derive(Debug)]
pub struct StartLogin {
    config: Arc<ClientConfig>,
    request: LoginRequest,
    now: UnixTime,
    rng: ChaCha20Rng,
    outbox: Outbox<Result<LoginStarted, ClientError>>,
    stage: Stage,
}

impl StartLogin {
    /// Starts the login at time `now`, drawing its secrets from `rng`.
    pub fn new<R: CryptoRng + ?Sized>(
        request: LoginRequest,
        config: Arc<ClientConfig>,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<Self, ClientError> {
        if !request.scope.is_subset_of(config.scope()) {
            return Err(ClientError::ScopeNotAllowed(request.scope.to_string()));
        }
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let finder = match &request.input {
            LoginInput::Identifier(identifier) => {
                FindIssuer::for_identifier(identifier.clone(), config.identity(), 0)
            }
            LoginInput::Service(url) => FindIssuer::for_service(url, config.identity(), 0)?,
        };
        let stage = Stage::Finding(Box::new(finder));
        Ok(Self {
            config,
            request,
            now,
            rng: ChaCha20Rng::from_seed(seed),
            outbox: Outbox::new(),
            stage,
        })
    }

    fn finish(&mut self, result: Result<LoginStarted, ClientError>) {
        self.stage = Stage::Finished;
        self.outbox.finish(result);
    }

    fn after_finding(&mut self, last_id: u32, found: Found) {
        let metadata = found.server.metadata;
        let client_key = self.config.current_key();
        let session = ServerSession {
            issuer: metadata.issuer,
            token_endpoint: metadata.token_endpoint,
            revocation_endpoint: metadata.revocation_endpoint,
            client_kid: client_key.and_then(|k| k.kid()).map(str::to_owned),
            client_jkt: client_key.map(|k| k.public_jwk().thumbprint()),
            dpop_key: EcPrivateKey::generate(&mut self.rng),
            dpop_nonces: DpopNonces::new(),
        };
        let pending = PendingLogin {
            state: LoginState::new(crate::secret::random_string(&mut self.rng, 32)),
            session,
            redirect_uri: self.config.redirect_uri().clone(),
            pkce_verifier: PkceVerifier::generate(&mut self.rng),
            expected_did: found.identity.map(|identity| identity.did),
            login_hint: self.request.login_hint.clone(),
            scope: self.request.scope.clone(),
            expires_at: self.now.saturating_add(self.config.login_lifetime()),
        };
        self.outbox = Outbox::after(last_id);
        self.send_par(
            metadata.pushed_authorization_request_endpoint,
            metadata.authorization_endpoint,
            Box::new(pending),
            false,
        );
    }

    fn send_par(&mut self, url: Url, authorize: Url, pending: Box<PendingLogin>, retried: bool) {
        let challenge = pending.pkce_verifier.challenge();
        let scope = pending.scope.to_string();
        let mut params = vec![
            ("response_type", "code"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", challenge.method()),
            ("state", pending.state.secret()),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("scope", scope.as_str()),
        ];
        if let Some(hint) = &pending.login_hint {
            params.push(("login_hint", hint));
        }
        if self.request.fresh {
            params.push(("prompt", "login"));
        }
        let request =
            match pending
                .session
                .post(&self.config, &url, &params, self.now, &mut self.rng)
            {
                Ok(request) => request,
                Err(error) => return self.finish(Err(error)),
            };
        let id = self.outbox.push_fetch(request, LIMITS);
        self.stage = Stage::Par {
            id,
            url,
            authorize,
            pending,
            retried,
        };
    }

    fn handle_par(
        &mut self,
        url: Url,
        authorize: Url,
        mut pending: Box<PendingLogin>,
        retried: bool,
        response: Result<Response, TransportError>,
    ) {
        let body = match pending.session.read_answer(PAR, &url, response, !retried) {
            Ok(Answer::Retry) => return self.send_par(url, authorize, pending, true),
            Ok(Answer::Success { body }) => body,
            Err(error) => return self.finish(Err(error)),
        };
        let request_uri = match read_par_response(&body) {
            Ok(par) => par.request_uri,
            Err(error) => return self.finish(Err(error)),
        };
        let mut redirect_url = authorize;
        redirect_url
            .query_pairs_mut()
            .append_pair("client_id", self.config.client_id())
            .append_pair("request_uri", &request_uri);
        self.finish(Ok(LoginStarted {
            redirect_url,
            pending: *pending,
        }));
    }
}

impl Machine for StartLogin {
    type Output = Result<LoginStarted, ClientError>;

    fn poll(&mut self) -> Option<Action<Self::Output>> {
        loop {
            if let Some(action) = self.outbox.pop() {
                return Some(action);
            }
            let Stage::Finding(finder) = &mut self.stage else {
                return None;
            };
            match split(finder.poll()?) {
                Ok(action) => return Some(action),
                Err(result) => {
                    let last = finder.last_request_id();
                    match result {
                        Ok(found) => self.after_finding(last, found),
                        Err(error) => self.finish(Err(error)),
                    }
                }
            }
        }
    }

    fn handle_response(&mut self, id: RequestId, response: Result<Response, TransportError>) {
        match std::mem::replace(&mut self.stage, Stage::Finished) {
            Stage::Finding(mut finder) => {
                finder.handle_response(id, response);
                self.stage = Stage::Finding(finder);
            }
            Stage::Par {
                id: expected,
                url,
                authorize,
                pending,
                retried,
            } if expected == id => {
                self.handle_par(url, authorize, pending, retried, response);
            }
            stage => self.stage = stage,
        }
    }

    fn handle_txt(&mut self, id: RequestId, answer: TxtAnswer) {
        if let Stage::Finding(finder) = &mut self.stage {
            finder.handle_txt(id, answer);
        }
    }

    fn handle_time(&mut self, now: UnixTime) {
        self.now = now;
    }
}
