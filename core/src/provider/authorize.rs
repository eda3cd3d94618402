//! The authorization endpoint: checking a relying party's request, and issuing
//! the code once the person has signed in upstream.
//!
//! The checks run in the order the specifications imply. First the client and
//! its redirect URI: until both are known good, nothing may be sent to the
//! redirect URI, so those errors are shown to the person ([RFC 6749 §4.1.2.1]).
//! Every later error goes back to the client's redirect URI as `error`,
//! `error_description`, `state` and `iss`.
//!
//! [RFC 6749 §4.1.2.1]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use url::Url;

use super::config::{ProviderConfig, RegisteredClient};
use crate::client::Scope;
use crate::identity::{AtIdentifier, Did, Handle, Mode};
use crate::pkce::{PkceChallenge, check_method};
use crate::secret::AuthorizationCode;
use crate::time::UnixTime;

/// The largest authorization request query read, in bytes.
pub const MAX_AUTHORIZE_QUERY_LEN: usize = 8 * 1024;

/// The longest `state`, `nonce` or `login_hint` accepted.
const MAX_PARAM_LEN: usize = 2048;

/// An authorization request that cannot go back to the client: show it to the person.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {description}")]
#[non_exhaustive]
pub struct PageError {
    /// The OAuth error code, for the page.
    pub error: &'static str,
    /// What went wrong, in words for the person.
    pub description: String,
}

/// Why an authorization request failed, and where the answer goes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// Show this to the person; never redirect.
    #[error(transparent)]
    Page(PageError),
    /// Send the browser here: the client's redirect URI with the error.
    #[error("redirect to the client with {error}")]
    Redirect {
        /// The error code, as in the URL.
        error: &'static str,
        /// The redirect URL with `error`, `error_description`, `state` and `iss`.
        url: Url,
    },
}

/// `prompt` as far as atlogin acts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prompt {
    /// Nothing asked.
    Default,
    /// `login` (or `max_age=0`): sign in at the PDS afresh, even if a session exists there.
    Login,
}

/// A checked authorization request, stored while the person signs in upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PendingAuthorization {
    /// The client.
    pub client_id: String,
    /// The redirect URI, exactly as registered and sent.
    pub redirect_uri: String,
    /// `state`, returned untouched.
    pub state: Option<String>,
    /// `nonce`, for the ID token.
    pub nonce: Option<String>,
    /// The scope granted: what was asked, all of it allowed.
    pub scope: Scope,
    /// The S256 PKCE challenge, if sent.
    pub code_challenge: Option<PkceChallenge>,
    /// Whether a fresh upstream login is required.
    pub prompt: Prompt,
    /// `max_age` in seconds, if sent.
    pub max_age: Option<u64>,
    /// `login_hint`: a handle or DID to start the atproto login with.
    pub login_hint: Option<String>,
    /// When the request was made.
    pub created_at: UnixTime,
    /// When the request stops being usable.
    pub expires_at: UnixTime,
}

/// The person as the upstream atproto login proved them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthenticatedUser {
    /// The DID: the `sub` of every token.
    pub did: Did,
    /// The handle, only when verified in both directions.
    pub handle: Option<Handle>,
    /// The profile's display name.
    pub name: Option<String>,
    /// The avatar URL.
    pub picture: Option<Url>,
    /// The email address, only when the PDS says it is confirmed.
    pub email: Option<String>,
    /// When the person signed in upstream.
    pub auth_time: UnixTime,
}

impl AuthenticatedUser {
    /// A user known by DID alone.
    #[must_use]
    pub fn new(did: Did, auth_time: UnixTime) -> Self {
        Self {
            did,
            handle: None,
            name: None,
            picture: None,
            email: None,
            auth_time,
        }
    }

    /// Adds the verified handle.
    #[must_use]
    pub fn with_handle(mut self, handle: Option<Handle>) -> Self {
        self.handle = handle;
        self
    }

    /// Adds display name and avatar.
    #[must_use]
    pub fn with_profile(mut self, name: Option<String>, picture: Option<Url>) -> Self {
        self.name = name;
        self.picture = picture;
        self
    }

    /// Adds a confirmed email address.
    #[must_use]
    pub fn with_confirmed_email(mut self, email: Option<String>) -> Self {
        self.email = email;
        self
    }
}

/// What the caller stores, keyed by [`storage_key`](super::storage_key) of the
/// code, until the client redeems it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CodeGrant {
    /// The client the code was issued to.
    pub client_id: String,
    /// The redirect URI of the request.
    pub redirect_uri: String,
    /// The PKCE challenge to check the verifier against.
    pub code_challenge: Option<PkceChallenge>,
    /// `nonce`, for the ID token.
    pub nonce: Option<String>,
    /// The scope granted.
    pub scope: Scope,
    /// The person.
    pub user: AuthenticatedUser,
    /// When the code stops being redeemable.
    pub expires_at: UnixTime,
    /// A random id shared by every token this code leads to, so that a replayed
    /// code or refresh token can revoke them all.
    pub family: String,
    /// Set once the code is redeemed.
    pub redeemed: bool,
}

/// Reads the query of an authorization request into parameters, each at most once.
fn parse_query(query: &str) -> Result<Vec<(String, String)>, &'static str> {
    if query.len() > MAX_AUTHORIZE_QUERY_LEN {
        return Err("the request is too long");
    }
    let mut params: Vec<(String, String)> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if params.iter().any(|(n, _)| *n == name) {
            return Err("a parameter appears twice");
        }
        params.push((name.into_owned(), value.into_owned()));
    }
    Ok(params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The client's redirect URI with `params` added to its query. Registered
/// redirect URIs are checked to parse when the configuration loads; a stored
/// one that does not is a fault of the store.
fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> Result<Url, PageError> {
    let mut url = Url::parse(redirect_uri).map_err(|_| PageError {
        error: "server_error",
        description: "the stored redirect URI is not a URL".to_owned(),
    })?;
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    Ok(url)
}

/// Checks an authorization request (the query string of `GET /authorize`) at
/// time `now`.
pub fn authorize(
    config: &ProviderConfig,
    query: &str,
    now: UnixTime,
) -> Result<PendingAuthorization, AuthorizeError> {
    let page = |error, description: &str| {
        AuthorizeError::Page(PageError {
            error,
            description: description.to_owned(),
        })
    };
    let params = match parse_query(query) {
        Ok(params) => params,
        // Without trustworthy client_id and redirect_uri there is nowhere safe to redirect.
        Err(problem) => return Err(page("invalid_request", problem)),
    };
    let client_id = param(&params, "client_id")
        .ok_or_else(|| page("invalid_request", "the request names no client"))?;
    let client = config.client(client_id).ok_or_else(|| {
        page(
            "invalid_client",
            "this application is not registered with atlogin",
        )
    })?;
    let redirect_uri = param(&params, "redirect_uri")
        .ok_or_else(|| page("invalid_request", "the request has no redirect_uri"))?;
    if !client.redirect_uris.iter().any(|uri| uri == redirect_uri) {
        return Err(page(
            "invalid_request",
            "the redirect_uri is not one this application registered",
        ));
    }

    // From here on, errors go back to the client.
    let state = param(&params, "state");
    let fail =
        |error, description: &str| redirect_error(config, redirect_uri, state, error, description);
    check_request(&params, client, now, config)
        .map_err(|(error, description)| fail(error, description))
}

type Refusal = (&'static str, &'static str);

fn check_request(
    params: &[(String, String)],
    client: &RegisteredClient,
    now: UnixTime,
    config: &ProviderConfig,
) -> Result<PendingAuthorization, Refusal> {
    if param(params, "request").is_some() {
        return Err(("request_not_supported", "request objects are not supported"));
    }
    if param(params, "request_uri").is_some() {
        return Err(("request_uri_not_supported", "request_uri is not supported"));
    }
    if param(params, "registration").is_some() {
        return Err((
            "registration_not_supported",
            "the registration parameter is not supported",
        ));
    }
    match param(params, "response_type") {
        Some("code") => {}
        None => return Err(("invalid_request", "response_type is missing")),
        Some(_) => {
            return Err((
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    match param(params, "response_mode") {
        None | Some("query") => {}
        Some(_) => return Err(("invalid_request", "only response_mode=query is supported")),
    }
    let scope = param(params, "scope").ok_or(("invalid_scope", "scope is missing"))?;
    let scope = Scope::parse(scope).map_err(|_| ("invalid_scope", "scope is malformed"))?;
    if !scope.contains("openid") {
        return Err(("invalid_scope", "the scope must include openid"));
    }
    if !scope.is_subset_of(&client.allowed_scopes) {
        return Err((
            "invalid_scope",
            "the scope asks for more than this application may have",
        ));
    }
    let code_challenge = pkce_challenge(params, client)?;
    let mut prompt = prompt(params)?;
    let max_age = match param(params, "max_age") {
        None => None,
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| ("invalid_request", "max_age is not a non-negative integer"))?,
        ),
    };
    if max_age == Some(0) {
        prompt = Prompt::Login;
    }
    let bounded = |name| match param(params, name) {
        Some(value) if value.len() > MAX_PARAM_LEN => {
            Err(("invalid_request", "a parameter is too long"))
        }
        value => Ok(value.map(str::to_owned)),
    };
    Ok(PendingAuthorization {
        client_id: client.client_id.clone(),
        redirect_uri: param(params, "redirect_uri").unwrap_or_default().to_owned(),
        state: bounded("state")?,
        nonce: bounded("nonce")?,
        scope,
        code_challenge,
        prompt,
        max_age,
        login_hint: bounded("login_hint")?
            .filter(|hint| AtIdentifier::parse(hint, Mode::Development).is_ok()),
        created_at: now,
        expires_at: now.saturating_add(config.lifetimes().authorization),
    })
}

/// The PKCE challenge of a request: S256 only, required when the client must use PKCE.
fn pkce_challenge(
    params: &[(String, String)],
    client: &RegisteredClient,
) -> Result<Option<PkceChallenge>, Refusal> {
    match (
        param(params, "code_challenge"),
        param(params, "code_challenge_method"),
    ) {
        (None, None) if client.require_pkce => {
            Err(("invalid_request", "PKCE with S256 is required"))
        }
        (None, None) => Ok(None),
        (None, Some(_)) => Err(("invalid_request", "code_challenge is missing")),
        (Some(challenge), method) => {
            // RFC 7636 §4.3 defaults a missing method to plain, which is refused.
            check_method(method.unwrap_or("plain")).map_err(|_| {
                (
                    "invalid_request",
                    "only code_challenge_method=S256 is supported",
                )
            })?;
            let challenge = PkceChallenge::parse(challenge)
                .map_err(|_| ("invalid_request", "code_challenge is malformed"))?;
            Ok(Some(challenge))
        }
    }
}

/// `prompt`: `login` and `consent` are honoured; `none` can never be met, since
/// atlogin keeps no session of its own and every login goes to the PDS.
fn prompt(params: &[(String, String)]) -> Result<Prompt, Refusal> {
    let Some(values) = param(params, "prompt") else {
        return Ok(Prompt::Default);
    };
    let values: Vec<&str> = values.split(' ').collect();
    if values.contains(&"none") {
        if values.len() > 1 {
            return Err((
                "invalid_request",
                "prompt=none cannot be combined with other values",
            ));
        }
        return Err(("login_required", "the person must sign in"));
    }
    let mut prompt = Prompt::Default;
    for value in values {
        match value {
            "login" => prompt = Prompt::Login,
            "consent" => {}
            _ => return Err(("invalid_request", "prompt holds an unsupported value")),
        }
    }
    Ok(prompt)
}

/// The client's redirect URI carrying an error, `state` and `iss`.
fn redirect_error(
    config: &ProviderConfig,
    redirect_uri: &str,
    state: Option<&str>,
    error: &'static str,
    description: &str,
) -> AuthorizeError {
    let mut answer = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        answer.push(("state", state));
    }
    answer.push(("iss", config.issuer()));
    match redirect_with(redirect_uri, &answer) {
        Ok(url) => AuthorizeError::Redirect { error, url },
        Err(page) => AuthorizeError::Page(page),
    }
}

/// The code for a request whose person signed in upstream: returns the URL to
/// send the browser to (`code`, `state`, `iss`), the code, and the grant to
/// store under the code's [`storage_key`](super::storage_key).
///
/// The login must be fresh enough: within the request's lifetime, within
/// `max_age` of `auth_time`, and made after the request when `prompt=login`
/// asked for a new one; otherwise the client gets `login_required`.
pub fn issue_code<R: CryptoRng + ?Sized>(
    config: &ProviderConfig,
    pending: &PendingAuthorization,
    user: AuthenticatedUser,
    now: UnixTime,
    rng: &mut R,
) -> Result<(Url, AuthorizationCode, CodeGrant), AuthorizeError> {
    let state = pending.state.as_deref();
    let login_required = |why| {
        Err(redirect_error(
            config,
            &pending.redirect_uri,
            state,
            "login_required",
            why,
        ))
    };
    if now >= pending.expires_at {
        return login_required("the sign-in took too long; start again");
    }
    if let Some(max_age) = pending.max_age
        && now
            > user
                .auth_time
                .saturating_add(std::time::Duration::from_secs(max_age))
    {
        return login_required("the sign-in is older than max_age");
    }
    if pending.prompt == Prompt::Login && user.auth_time < pending.created_at {
        return login_required("a fresh sign-in was asked for");
    }
    let code = AuthorizationCode::generate(rng);
    let mut answer = vec![("code", code.secret())];
    if let Some(state) = state {
        answer.push(("state", state));
    }
    answer.push(("iss", config.issuer()));
    let url = redirect_with(&pending.redirect_uri, &answer).map_err(AuthorizeError::Page)?;
    let grant = CodeGrant {
        client_id: pending.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        code_challenge: pending.code_challenge.clone(),
        nonce: pending.nonce.clone(),
        scope: pending.scope.clone(),
        user,
        expires_at: now.saturating_add(config.lifetimes().code),
        family: crate::secret::random_string(rng, 16),
        redeemed: false,
    };
    Ok((url, code, grant))
}

/// The redirect for a request that failed upstream (`access_denied` and the like).
#[must_use]
pub fn deny(
    config: &ProviderConfig,
    pending: &PendingAuthorization,
    error: &'static str,
    description: &str,
) -> AuthorizeError {
    redirect_error(
        config,
        &pending.redirect_uri,
        pending.state.as_deref(),
        error,
        description,
    )
}
