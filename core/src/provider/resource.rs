//! Userinfo, revocation and back-channel logout.

use rand_core::CryptoRng;
use serde_json::{Map, Value, json};

use super::config::{ProviderConfig, RegisteredClient};
use super::error::{OAuthError, json_response};
use super::token::{
    AccessGrant, AuthenticatedClient, RefreshGrant, form_str, parse_form, scope_claims,
};
use crate::identity::Did;
use crate::secret::{AccessToken, secret_string};
use crate::time::UnixTime;

/// The largest userinfo or revocation body read.
const MAX_BODY_LEN: usize = 16 * 1024;

/// The access token of a userinfo request: `Authorization: Bearer` or, for a
/// form POST, `access_token` in the body ([RFC 6750 §2]); never both.
///
/// [RFC 6750 §2]: https://www.rfc-editor.org/rfc/rfc6750#section-2
pub fn bearer_token(
    authorization: Option<&str>,
    form_body: Option<&[u8]>,
) -> Result<AccessToken, OAuthError> {
    let header = match authorization {
        None => None,
        Some(value) => {
            let (scheme, token) = value.trim().split_once(' ').ok_or_else(|| {
                OAuthError::bearer_invalid_request("malformed Authorization header")
            })?;
            if !scheme.eq_ignore_ascii_case("Bearer") || token.trim().is_empty() {
                return Err(OAuthError::bearer_invalid_request(
                    "a Bearer token is required",
                ));
            }
            Some(token.trim().to_owned())
        }
    };
    let body = match form_body {
        None => None,
        Some(body) => form_str(&parse_form(body, MAX_BODY_LEN)?, "access_token").map(str::to_owned),
    };
    match (header, body) {
        (Some(_), Some(_)) => Err(OAuthError::bearer_invalid_request(
            "the token was sent in more than one way",
        )),
        (Some(token), None) | (None, Some(token)) => Ok(AccessToken::new(token)),
        (None, None) => Err(OAuthError::bearer_unauthenticated()),
    }
}

/// The userinfo response for the grant stored under the token's key.
pub fn userinfo(
    stored: Option<AccessGrant>,
    now: UnixTime,
) -> Result<http::Response<Vec<u8>>, OAuthError> {
    let grant = stored.ok_or_else(|| OAuthError::invalid_token("the access token is unknown"))?;
    if now >= grant.expires_at {
        return Err(OAuthError::invalid_token("the access token has expired"));
    }
    let mut claims = Map::new();
    claims.insert("sub".into(), grant.user.did.as_str().into());
    scope_claims(&grant.user, &grant.scope, &mut claims);
    Ok(json_response(http::StatusCode::OK, &Value::Object(claims)))
}

secret_string! {
    /// A token presented for revocation.
    pub struct PresentedToken;
}

/// What a revocation request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RevocationRequest {
    /// The token.
    pub token: PresentedToken,
}

impl RevocationRequest {
    /// Parses the form body of a revocation request (RFC 7009 §2.1).
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let form = parse_form(body, MAX_BODY_LEN)?;
        let token = form_str(&form, "token")
            .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        Ok(Self {
            token: PresentedToken::new(token),
        })
    }

    /// The key to look the token up under.
    #[must_use]
    pub fn lookup_key(&self) -> String {
        super::storage_key(self.token.secret())
    }
}

/// What a revocation asks the caller to delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Revocation {
    /// The token's own key, when the store knew it.
    pub delete: Option<String>,
    /// For a refresh token: the family whose access tokens go with it (RFC 7009 §2.1).
    pub revoke_family: Option<String>,
}

/// Revokes a token of `client`. A token the store does not know is answered 200
/// as well (RFC 7009 §2.2); another client's token is refused.
pub fn revoke(
    client: &AuthenticatedClient<'_>,
    request: &RevocationRequest,
    access: Option<&AccessGrant>,
    refresh: Option<&RefreshGrant>,
) -> Result<(http::Response<Vec<u8>>, Revocation), OAuthError> {
    let owner = access
        .map(|g| g.client_id.as_str())
        .or(refresh.map(|g| g.client_id.as_str()));
    if owner.is_some_and(|owner| owner != client.client.client_id) {
        return Err(OAuthError::unauthorized_client(
            "the token was issued to another client",
        ));
    }
    let revocation = Revocation {
        delete: (access.is_some() || refresh.is_some()).then(|| request.lookup_key()),
        revoke_family: refresh.map(|grant| grant.family.clone()),
    };
    let mut response = http::Response::new(Vec::new());
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    Ok((response, revocation))
}

/// The OIDC Back-Channel Logout 1.0 logout token for `client` about `sub`; the
/// server POSTs it as `logout_token` to the client's `backchannel_logout_uri`.
///
/// With `sid` (the `sid` of the ID tokens of one sign-in, the family of its
/// code) it ends that session only; without, every session of `sub` at the
/// client (§2.4). Some relying parties (Synapse) accept only the first kind.
pub fn logout_token<R: CryptoRng + ?Sized>(
    config: &ProviderConfig,
    client: &RegisteredClient,
    sub: &Did,
    sid: Option<&str>,
    now: UnixTime,
    rng: &mut R,
) -> Result<String, OAuthError> {
    let key = config
        .signing_key(client.id_token_signed_response_alg)
        .ok_or_else(OAuthError::server_error)?;
    let mut jti = [0u8; 16];
    rng.fill_bytes(&mut jti);
    let mut claims = json!({
        "iss": config.issuer(),
        "sub": sub.as_str(),
        "aud": client.client_id,
        "iat": now.as_secs(),
        "exp": now.saturating_add(std::time::Duration::from_secs(120)).as_secs(),
        "jti": crate::base64url::encode(&jti),
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    });
    if let Some(sid) = sid {
        claims["sid"] = sid.into();
    }

    key.sign(Some("logout+jwt"), &claims)
        .map_err(|_| OAuthError::server_error())
}
