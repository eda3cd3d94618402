//! The token endpoint: client authentication, the authorization code and refresh
//! token grants, and the ID token.
//!
//! Pure functions over stored state: the caller parses the request
//! ([`parse_token_request`]), authenticates the client ([`authenticate_client`]),
//! looks up the code or refresh token by its [`storage_key`](super::storage_key),
//! and hands the stored grant in; what comes back is the HTTP response and the
//! [`StoreChanges`] to apply.

use std::time::Duration;

use base64ct::{Base64, Encoding};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value, json};

use super::authorize::{AuthenticatedUser, CodeGrant};
use super::config::{ClientAuth, ProviderConfig, RegisteredClient, TOKEN_PATH};
use super::error::{OAuthError, json_response};
use super::storage_key;
use crate::client::Scope;
use crate::jose::{Algorithm, ClaimsValidation, CryptoProvider, Verifier};
use crate::pkce::PkceVerifier;
use crate::secret::{AccessToken, AuthorizationCode, RefreshToken, secret_string};
use crate::time::UnixTime;

/// The largest token request body read.
pub const MAX_TOKEN_REQUEST_LEN: usize = 16 * 1024;

/// The `client_assertion_type` of `private_key_jwt`.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest a client assertion may be valid for.
const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(10 * 60);

secret_string! {
    /// A client assertion JWT as presented.
    pub struct ClientAssertion;
}

/// How the client presented itself.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PresentedAuth {
    /// HTTP Basic.
    Basic {
        /// The client id.
        client_id: String,
        /// The secret.
        secret: crate::provider::ClientSecret,
    },
    /// `client_id` and `client_secret` in the body.
    Post {
        /// The client id.
        client_id: String,
        /// The secret.
        secret: crate::provider::ClientSecret,
    },
    /// A client assertion.
    Assertion {
        /// The `client_id` parameter, if sent.
        client_id: Option<String>,
        /// The JWT.
        assertion: ClientAssertion,
    },
    /// Only a `client_id`.
    None {
        /// The client id.
        client_id: String,
    },
}

/// The grant asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Grant {
    /// `authorization_code`.
    AuthorizationCode {
        /// The code.
        code: AuthorizationCode,
        /// `redirect_uri`.
        redirect_uri: Option<String>,
        /// `code_verifier`.
        code_verifier: Option<PkceVerifier>,
    },
    /// `refresh_token`.
    RefreshToken {
        /// The refresh token.
        refresh_token: RefreshToken,
    },
}

/// A parsed token request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRequest {
    /// How the client authenticates.
    pub auth: PresentedAuth,
    /// What it asks for.
    pub grant: Grant,
}

impl TokenRequest {
    /// The storage key of the code or refresh token, for the caller's lookup.
    #[must_use]
    pub fn lookup_key(&self) -> String {
        match &self.grant {
            Grant::AuthorizationCode { code, .. } => storage_key(code.secret()),
            Grant::RefreshToken { refresh_token } => storage_key(refresh_token.secret()),
        }
    }

    /// Whether the client used HTTP Basic, to shape an `invalid_client` answer.
    #[must_use]
    pub fn used_basic(&self) -> bool {
        self.auth.is_basic()
    }
}

impl PresentedAuth {
    fn is_basic(&self) -> bool {
        matches!(self, Self::Basic { .. })
    }
}

/// Reads a form body into parameters, each at most once (RFC 6749 §3.2).
pub(crate) fn parse_form(
    body: &[u8],
    max_len: usize,
) -> Result<BTreeMap<String, String>, OAuthError> {
    if body.len() > max_len {
        return Err(OAuthError::invalid_request("the request body is too large"));
    }
    let mut params = BTreeMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if params
            .insert(name.into_owned(), value.into_owned())
            .is_some()
        {
            return Err(OAuthError::invalid_request("a parameter appears twice"));
        }
    }
    Ok(params)
}

/// A non-empty form parameter.
pub(crate) fn form_str<'a>(form: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    form.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// Parses a token request: the form body and the `Authorization` header, if any.
pub fn parse_token_request(
    body: &[u8],
    authorization: Option<&str>,
) -> Result<TokenRequest, OAuthError> {
    let form = parse_form(body, MAX_TOKEN_REQUEST_LEN)?;
    let auth = client_auth(&form, authorization)?;
    let grant = match form_str(&form, "grant_type") {
        Some("authorization_code") => Grant::AuthorizationCode {
            code: AuthorizationCode::new(
                form_str(&form, "code")
                    .ok_or_else(|| OAuthError::invalid_request("code is missing"))?,
            ),
            redirect_uri: form_str(&form, "redirect_uri").map(str::to_owned),
            code_verifier: form_str(&form, "code_verifier").map(PkceVerifier::new),
        },
        Some("refresh_token") => Grant::RefreshToken {
            refresh_token: RefreshToken::new(
                form_str(&form, "refresh_token")
                    .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?,
            ),
        },
        Some(_) => {
            return Err(OAuthError::unsupported_grant_type(
                "only authorization_code and refresh_token are supported",
            ));
        }
        None => return Err(OAuthError::invalid_request("grant_type is missing")),
    };
    Ok(TokenRequest { auth, grant })
}

/// Parses how the client of a revocation request (or any endpoint taking a form
/// and client authentication) presents itself: the form body and the
/// `Authorization` header, with the same rules as at the token endpoint.
pub fn parse_client_auth(
    body: &[u8],
    authorization: Option<&str>,
) -> Result<PresentedAuth, OAuthError> {
    client_auth(&parse_form(body, MAX_TOKEN_REQUEST_LEN)?, authorization)
}

/// The client authentication of a parsed form (RFC 6749 §2.3, RFC 7523 §2.2):
/// exactly one method, or a bare `client_id` for a public client.
fn client_auth(
    form: &BTreeMap<String, String>,
    authorization: Option<&str>,
) -> Result<PresentedAuth, OAuthError> {
    let basic = authorization.map(parse_basic).transpose()?;
    let body_secret = form_str(form, "client_secret");
    let assertion = match (
        form_str(form, "client_assertion_type"),
        form_str(form, "client_assertion"),
    ) {
        (None, None) => None,
        (Some(JWT_BEARER), Some(assertion)) => Some(ClientAssertion::new(assertion)),
        _ => {
            return Err(OAuthError::invalid_request(
                "client_assertion_type must be jwt-bearer, with a client_assertion",
            ));
        }
    };
    let client_id = form_str(form, "client_id").map(str::to_owned);
    let methods = usize::from(basic.is_some())
        + usize::from(body_secret.is_some())
        + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(OAuthError::invalid_request(
            "more than one client authentication method was used",
        ));
    }
    let auth = if let Some((id, secret)) = basic {
        if client_id.as_deref().is_some_and(|c| c != id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the Basic credentials",
            ));
        }
        PresentedAuth::Basic {
            client_id: id,
            secret,
        }
    } else if let Some(secret) = body_secret {
        let client_id =
            client_id.ok_or_else(|| OAuthError::invalid_request("client_id is missing"))?;
        PresentedAuth::Post {
            client_id,
            secret: crate::provider::ClientSecret::new(secret),
        }
    } else if let Some(assertion) = assertion {
        PresentedAuth::Assertion {
            client_id,
            assertion,
        }
    } else {
        let client_id = client_id
            .ok_or_else(|| OAuthError::invalid_client("no client authentication", false))?;
        PresentedAuth::None { client_id }
    };
    Ok(auth)
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(header: &str) -> Result<(String, crate::provider::ClientSecret), OAuthError> {
    let bad = || OAuthError::invalid_client("the Basic credentials are malformed", true);
    let (scheme, credentials) = header.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return Err(OAuthError::invalid_request(
            "only Basic authorization is accepted here",
        ));
    }
    let decoded =
        zeroize::Zeroizing::new(Base64::decode_vec(credentials.trim()).map_err(|_| bad())?);
    let text = std::str::from_utf8(&decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    // Each part is application/x-www-form-urlencoded: '+' is a space, then percent-decoding.
    let decode = |part: &str| {
        let spaced = part.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .ok()
            .map(std::borrow::Cow::into_owned)
    };
    let id = decode(id).filter(|id| !id.is_empty()).ok_or_else(bad)?;
    let secret = decode(secret).ok_or_else(bad)?;
    Ok((id, crate::provider::ClientSecret::new(secret)))
}

/// A client that proved who it is.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AuthenticatedClient<'a> {
    /// The registered client.
    pub client: &'a RegisteredClient,
    /// For `private_key_jwt`: the assertion's `jti` and expiry. The caller must
    /// refuse an assertion whose `jti` it has seen before ([`OAuthError::invalid_client`])
    /// and remember this one until it expires.
    pub assertion_jti: Option<(String, UnixTime)>,
}

/// Authenticates the client of a token (or revocation) request with the method
/// it registered; every failure is `invalid_client`.
pub fn authenticate_client<'a>(
    config: &'a ProviderConfig,
    request_auth: &PresentedAuth,
    now: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<AuthenticatedClient<'a>, OAuthError> {
    let fail = |why: &str| OAuthError::invalid_client(why, request_auth.is_basic());
    let (client_id, assertion) = match request_auth {
        PresentedAuth::Basic { client_id, .. }
        | PresentedAuth::Post { client_id, .. }
        | PresentedAuth::None { client_id } => (client_id.clone(), None),
        PresentedAuth::Assertion {
            client_id,
            assertion,
        } => {
            // The client is named by the assertion's own iss, whose signature is
            // checked below against that client's keys.
            let unverified = unverified_issuer(assertion.secret())
                .ok_or_else(|| fail("the client assertion names no issuer"))?;
            if client_id.as_deref().is_some_and(|c| c != unverified) {
                return Err(fail("client_id does not match the assertion"));
            }
            (unverified, Some(assertion))
        }
    };
    let client = config
        .client(&client_id)
        .ok_or_else(|| fail("unknown client"))?;
    match (&client.auth, request_auth) {
        (ClientAuth::ClientSecretBasic(stored), PresentedAuth::Basic { secret, .. })
        | (ClientAuth::ClientSecretPost(stored), PresentedAuth::Post { secret, .. }) => {
            if stored.matches(secret.secret()) {
                Ok(AuthenticatedClient {
                    client,
                    assertion_jti: None,
                })
            } else {
                Err(fail("wrong client secret"))
            }
        }
        (ClientAuth::PrivateKeyJwt(keys), PresentedAuth::Assertion { .. }) => {
            let assertion = assertion.map_or("", ClientAssertion::secret);
            let verified = Verifier::new(provider)
                .verify(assertion, keys)
                .map_err(|_| fail("the client assertion does not verify"))?;
            let validation =
                ClaimsValidation::new(now, Duration::from_secs(30)).with_issuer(&client.client_id);
            let claims = verified
                .validate(&validation)
                .map_err(|_| fail("the client assertion's claims are not valid"))?;
            if claims.sub.as_deref() != Some(client.client_id.as_str()) {
                return Err(fail("the client assertion's sub is not the client"));
            }
            let token_endpoint = config.endpoint(TOKEN_PATH);
            let audience_ok = claims
                .aud
                .as_ref()
                .is_some_and(|aud| aud.contains(&token_endpoint) || aud.contains(config.issuer()));
            if !audience_ok {
                return Err(fail("the client assertion is not for this provider"));
            }
            let expires = claims
                .exp
                .ok_or_else(|| fail("the client assertion has no exp"))?;
            if expires > now.saturating_add(MAX_ASSERTION_LIFETIME) {
                return Err(fail("the client assertion lives too long"));
            }
            let jti = claims
                .jti
                .filter(|j| !j.is_empty() && j.len() <= 256)
                .ok_or_else(|| fail("the client assertion has no jti"))?;
            Ok(AuthenticatedClient {
                client,
                assertion_jti: Some((jti, expires)),
            })
        }
        _ => Err(fail(
            "this client must authenticate with the method it registered",
        )),
    }
}

/// The `iss` of a JWT before its signature is checked, to pick the client's keys.
fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = crate::base64url::decode(payload).ok()?;
    let claims = crate::json::parse_object(&bytes).ok()?;
    claims.get("iss").and_then(Value::as_str).map(str::to_owned)
}

/// What an access token grants, stored under its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccessGrant {
    /// The client.
    pub client_id: String,
    /// The scope.
    pub scope: Scope,
    /// The person.
    pub user: AuthenticatedUser,
    /// Expiry.
    pub expires_at: UnixTime,
    /// The code this token descends from (see [`CodeGrant::family`]).
    pub family: String,
}

/// What a refresh token grants, stored under its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefreshGrant {
    /// The client.
    pub client_id: String,
    /// The scope.
    pub scope: Scope,
    /// The person.
    pub user: AuthenticatedUser,
    /// Expiry.
    pub expires_at: UnixTime,
    /// The code this token descends from.
    pub family: String,
    /// Set once it was used; a rotated token that comes back ends its family.
    pub rotated: bool,
}

/// What the caller must store or delete after a token request.
///
/// A code and a refresh token are single-use: the caller stores `code` and
/// `used_refresh` back **only if the stored grant is still unused** (an atomic
/// compare-and-set), and answers `invalid_grant` instead if it was used in the
/// meantime, so that two racing requests cannot both get tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreChanges {
    /// The code's grant, now marked redeemed, under the code's key.
    pub code: Option<(String, CodeGrant)>,
    /// The refresh grant that was used, now marked rotated, under its key.
    pub used_refresh: Option<(String, RefreshGrant)>,
    /// A new access token's grant.
    pub access: Option<(String, AccessGrant)>,
    /// A new refresh token's grant.
    pub refresh: Option<(String, RefreshGrant)>,
    /// Delete every access and refresh grant of this family: a code or refresh
    /// token came back after it was used (RFC 9700 §4.14.2).
    pub revoke_family: Option<String>,
}

/// The answer to a token request. `Debug` leaves out the body, which holds tokens.
#[non_exhaustive]
pub struct TokenOutcome {
    /// The HTTP response to send.
    pub response: http::Response<Vec<u8>>,
    /// What to store.
    pub changes: StoreChanges,
}

impl fmt::Debug for TokenOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenOutcome")
            .field("status", &self.response.status())
            .field("changes", &self.changes)
            .finish_non_exhaustive()
    }
}

impl TokenOutcome {
    fn refused(error: &OAuthError, changes: StoreChanges) -> Self {
        Self {
            response: error.to_response(),
            changes,
        }
    }

    fn replayed(what: &str, family: &str) -> Self {
        let changes = StoreChanges {
            revoke_family: Some(family.to_owned()),
            ..StoreChanges::default()
        };
        Self::refused(
            &OAuthError::invalid_grant(format!("the {what} was already used")),
            changes,
        )
    }
}

/// Runs an authenticated token request against the stored grant the caller found
/// under [`TokenRequest::lookup_key`] (`None` when there was none).
pub fn token<R: CryptoRng + ?Sized>(
    config: &ProviderConfig,
    client: &AuthenticatedClient<'_>,
    request: &TokenRequest,
    stored: Stored,
    now: UnixTime,
    rng: &mut R,
) -> TokenOutcome {
    match (&request.grant, stored) {
        (
            Grant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            },
            Stored::Code(stored),
        ) => {
            let presented = Presented {
                redirect_uri: redirect_uri.as_deref(),
                code_verifier: code_verifier.as_ref(),
            };
            redeem_code(config, client.client, code, &presented, stored, now, rng)
        }
        (Grant::RefreshToken { refresh_token }, Stored::Refresh(stored)) => {
            refresh(config, client.client, refresh_token, stored, now, rng)
        }
        _ => TokenOutcome::refused(
            &OAuthError::invalid_grant("the grant is unknown"),
            StoreChanges::default(),
        ),
    }
}

/// The stored grant found for a token request.
#[derive(Clone, Debug)]
pub enum Stored {
    /// The code's grant, or `None`.
    Code(Option<CodeGrant>),
    /// The refresh token's grant, or `None`.
    Refresh(Option<RefreshGrant>),
}

/// What the client sent with a code.
struct Presented<'a> {
    redirect_uri: Option<&'a str>,
    code_verifier: Option<&'a PkceVerifier>,
}

fn redeem_code<R: CryptoRng + ?Sized>(
    config: &ProviderConfig,
    client: &RegisteredClient,
    code: &AuthorizationCode,
    presented: &Presented<'_>,
    stored: Option<CodeGrant>,
    now: UnixTime,
    rng: &mut R,
) -> TokenOutcome {
    let refuse =
        |why: &str| TokenOutcome::refused(&OAuthError::invalid_grant(why), StoreChanges::default());
    let Some(grant) = stored else {
        return refuse("the code is unknown or expired");
    };
    if grant.redeemed {
        // A code used twice: revoke what its first use produced (RFC 6749 §4.1.2).
        return TokenOutcome::replayed("code", &grant.family);
    }
    if now >= grant.expires_at {
        return refuse("the code has expired");
    }
    if grant.client_id != client.client_id {
        return refuse("the code was issued to another client");
    }
    if presented.redirect_uri != Some(grant.redirect_uri.as_str()) {
        return refuse("redirect_uri does not match the authorization request");
    }
    match (&grant.code_challenge, presented.code_verifier) {
        (Some(challenge), Some(verifier)) => {
            if challenge.verify(verifier).is_err() {
                return refuse("code_verifier does not match the code_challenge");
            }
        }
        (Some(_), None) => return refuse("code_verifier is missing"),
        (None, Some(_)) => {
            return refuse("code_verifier was sent but the request had no code_challenge");
        }
        (None, None) => {}
    }
    let (response, mut changes) = match issue_tokens(config, client, &grant, now, rng) {
        Ok(issued) => issued,
        Err(error) => return TokenOutcome::refused(&error, StoreChanges::default()),
    };
    let mut redeemed = grant;
    redeemed.redeemed = true;
    changes.code = Some((storage_key(code.secret()), redeemed));
    TokenOutcome { response, changes }
}

fn refresh<R: CryptoRng + ?Sized>(
    config: &ProviderConfig,
    client: &RegisteredClient,
    refresh_token: &RefreshToken,
    stored: Option<RefreshGrant>,
    now: UnixTime,
    rng: &mut R,
) -> TokenOutcome {
    let refuse =
        |why: &str| TokenOutcome::refused(&OAuthError::invalid_grant(why), StoreChanges::default());
    let Some(grant) = stored else {
        return refuse("the refresh token is unknown");
    };
    if grant.rotated {
        // A rotated refresh token came back: someone else may hold it. End the family.
        return TokenOutcome::replayed("refresh token", &grant.family);
    }
    if now >= grant.expires_at {
        return refuse("the refresh token has expired");
    }
    if grant.client_id != client.client_id {
        return refuse("the refresh token was issued to another client");
    }
    let source = Source {
        scope: &grant.scope,
        user: &grant.user,
        nonce: None,
        family: &grant.family,
    };
    let (response, mut changes) = match issue(config, client, &source, now, rng) {
        Ok(issued) => issued,
        Err(error) => return TokenOutcome::refused(&error, StoreChanges::default()),
    };
    let mut used = grant;
    used.rotated = true;
    changes.used_refresh = Some((storage_key(refresh_token.secret()), used));
    TokenOutcome { response, changes }
}

/// What new tokens are made from.
struct Source<'a> {
    scope: &'a Scope,
    user: &'a AuthenticatedUser,
    nonce: Option<&'a str>,
    family: &'a str,
}

fn issue_tokens<R: CryptoRng + ?Sized>(
    config: &ProviderConfig,
    client: &RegisteredClient,
    grant: &CodeGrant,
    now: UnixTime,
    rng: &mut R,
) -> Result<(http::Response<Vec<u8>>, StoreChanges), OAuthError> {
    let source = Source {
        scope: &grant.scope,
        user: &grant.user,
        nonce: grant.nonce.as_deref(),
        family: &grant.family,
    };
    issue(config, client, &source, now, rng)
}

fn issue<R: CryptoRng + ?Sized>(
    config: &ProviderConfig,
    client: &RegisteredClient,
    source: &Source<'_>,
    now: UnixTime,
    rng: &mut R,
) -> Result<(http::Response<Vec<u8>>, StoreChanges), OAuthError> {
    let lifetimes = config.lifetimes();
    let access_token = AccessToken::generate(rng);
    let id_token = id_token(
        config,
        client,
        &IdTokenSubject {
            user: source.user,
            scope: source.scope,
            nonce: source.nonce,
            sid: source.family,
        },
        &access_token,
        now,
    )?;
    let access_grant = AccessGrant {
        client_id: client.client_id.clone(),
        scope: source.scope.clone(),
        user: source.user.clone(),
        expires_at: now.saturating_add(lifetimes.access_token),
        family: source.family.to_owned(),
    };
    let mut body = json!({
        "access_token": access_token.secret(),
        "token_type": "Bearer",
        "expires_in": lifetimes.access_token.as_secs(),
        "id_token": id_token,
        "scope": source.scope.to_string(),
    });
    let mut changes = StoreChanges {
        access: Some((storage_key(access_token.secret()), access_grant)),
        ..StoreChanges::default()
    };
    if source.scope.contains("offline_access") {
        let refresh_token = RefreshToken::generate(rng);
        body["refresh_token"] = refresh_token.secret().into();
        let grant = RefreshGrant {
            client_id: client.client_id.clone(),
            scope: source.scope.clone(),
            user: source.user.clone(),
            expires_at: now.saturating_add(lifetimes.refresh_token),
            family: source.family.to_owned(),
            rotated: false,
        };
        changes.refresh = Some((storage_key(refresh_token.secret()), grant));
    }
    Ok((json_response(http::StatusCode::OK, &body), changes))
}

/// The claims the granted scope releases about the person (OIDC Core §5.4).
pub(crate) fn scope_claims(
    user: &AuthenticatedUser,
    scope: &Scope,
    claims: &mut Map<String, Value>,
) {
    if scope.contains("profile") {
        if let Some(handle) = &user.handle {
            // Handles are lower case [a-z0-9.-]: a valid Matrix localpart as they are.
            claims.insert("preferred_username".into(), handle.as_str().into());
        }
        let name = user
            .name
            .clone()
            .or_else(|| user.handle.as_ref().map(ToString::to_string));
        if let Some(name) = name {
            claims.insert("name".into(), name.into());
        }
        if let Some(picture) = &user.picture {
            claims.insert("picture".into(), picture.as_str().into());
        }
    }
    if scope.contains("email")
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), email.as_str().into());
        claims.insert("email_verified".into(), true.into());
    }
}

/// Who an ID token is about, and for which sign-in.
pub(crate) struct IdTokenSubject<'a> {
    pub(crate) user: &'a AuthenticatedUser,
    pub(crate) scope: &'a Scope,
    pub(crate) nonce: Option<&'a str>,
    /// The session: the family of the code it descends from, which a
    /// back-channel logout token names again (Back-Channel Logout 1.0 §2.1).
    pub(crate) sid: &'a str,
}

/// Signs the ID token for `client` with its registered algorithm.
pub(crate) fn id_token(
    config: &ProviderConfig,
    client: &RegisteredClient,
    subject: &IdTokenSubject<'_>,
    access_token: &AccessToken,
    now: UnixTime,
) -> Result<String, OAuthError> {
    let IdTokenSubject {
        user,
        scope,
        nonce,
        sid,
    } = *subject;
    let alg = client.id_token_signed_response_alg;
    let key = config
        .signing_key(alg)
        .ok_or_else(OAuthError::server_error)?;
    let mut claims = Map::new();
    claims.insert("iss".into(), config.issuer().into());
    claims.insert("sub".into(), user.did.as_str().into());
    claims.insert("aud".into(), client.client_id.as_str().into());
    claims.insert(
        "exp".into(),
        now.saturating_add(config.lifetimes().id_token)
            .as_secs()
            .into(),
    );
    claims.insert("iat".into(), now.as_secs().into());
    claims.insert("auth_time".into(), user.auth_time.as_secs().into());
    if let Some(nonce) = nonce {
        claims.insert("nonce".into(), nonce.into());
    }
    claims.insert("sid".into(), sid.into());
    claims.insert(
        "at_hash".into(),
        left_half_hash(alg, access_token.secret()).into(),
    );
    scope_claims(user, scope, &mut claims);
    key.sign(Some("JWT"), &claims)
        .map_err(|_| OAuthError::server_error())
}

/// `at_hash`: the left half of the hash of the token, with the hash of the
/// signing algorithm (OIDC Core §3.1.3.6). ES256 and RS256 both use SHA-256.
pub(crate) fn left_half_hash(alg: Algorithm, token: &str) -> String {
    use sha2::{Digest, Sha256};
    match alg {
        Algorithm::Es256 | Algorithm::Rs256 => {
            crate::base64url::encode(&Sha256::digest(token.as_bytes())[..16])
        }
    }
}
