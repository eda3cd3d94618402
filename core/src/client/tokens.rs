//! Token responses ([RFC 6749 §5.1]) as the atproto profile requires them.
//!
//! [RFC 6749 §5.1]: https://www.rfc-editor.org/rfc/rfc6749#section-5.1

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::config::Scope;
use super::error::ClientError;
use super::flow::required_str;
use crate::identity::{Did, Mode};
use crate::secret::{AccessToken, RefreshToken};
use crate::time::UnixTime;
use crate::transport::excerpt;

/// The tokens of a session. `Debug` shows no token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenSet {
    /// The DPoP-bound access token.
    pub access_token: AccessToken,
    /// The refresh token, if one was issued.
    pub refresh_token: Option<RefreshToken>,
    /// When the access token expires, if the server said.
    pub expires_at: Option<UnixTime>,
    /// The scope granted.
    pub scope: Scope,
    /// The account the tokens are for.
    pub sub: Did,
}

/// Parses and checks a token endpoint success body received at `now`: a JSON
/// object with `access_token`, `token_type` DPoP, a `scope` holding `atproto`,
/// and a DID as `sub`.
pub fn parse_token_response(
    body: &[u8],
    now: UnixTime,
    mode: Mode,
) -> Result<TokenSet, ClientError> {
    if body.len() > super::flow::MAX_ANSWER_LEN {
        return Err(ClientError::InvalidResponse {
            endpoint: "token",
            problem: "it is too large".into(),
        });
    }
    let map = crate::json::parse_object(body).map_err(|_| ClientError::InvalidResponse {
        endpoint: "token",
        problem: "it is not a JSON object".into(),
    })?;
    read_token_response(&map, now, mode)
}

/// Checks a token endpoint success body received at `now`: `access_token`,
/// `token_type` DPoP, a `scope` holding `atproto`, a DID as `sub`.
pub(crate) fn read_token_response(
    body: &Map<String, Value>,
    now: UnixTime,
    mode: Mode,
) -> Result<TokenSet, ClientError> {
    let endpoint = "token";
    let invalid = |problem: String| ClientError::InvalidResponse { endpoint, problem };
    let access_token = AccessToken::new(required_str(body, endpoint, "access_token")?);
    let token_type = required_str(body, endpoint, "token_type")?;
    // Token types compare case-insensitively (RFC 6749 §5.1).
    if !token_type.eq_ignore_ascii_case("DPoP") {
        return Err(invalid(format!(
            "token_type is {}, not DPoP",
            excerpt(token_type)
        )));
    }
    let scope_text = required_str(body, endpoint, "scope")?;
    let scope = Scope::parse(scope_text).map_err(|_| invalid("scope is malformed".into()))?;
    if !scope.contains("atproto") {
        return Err(invalid(format!(
            "the granted scope {} lacks atproto",
            excerpt(scope_text)
        )));
    }
    let sub = required_str(body, endpoint, "sub")?;
    let sub = Did::parse(sub, mode)
        .map_err(|error| invalid(format!("sub is not a usable DID ({error})")))?;
    let refresh_token = match crate::json::optional_str(body, "refresh_token") {
        Ok(token) => token.map(RefreshToken::new),
        Err(_) => return Err(invalid("refresh_token is not a string".into())),
    };
    let expires_at = match body.get("expires_in") {
        None => None,
        Some(value) => {
            let secs = value
                .as_u64()
                .filter(|s| *s > 0)
                .ok_or_else(|| invalid("expires_in is not a positive integer".into()))?;
            Some(now.saturating_add(std::time::Duration::from_secs(secs)))
        }
    };
    Ok(TokenSet {
        access_token,
        refresh_token,
        expires_at,
        scope,
        sub,
    })
}
