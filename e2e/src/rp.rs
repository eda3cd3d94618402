//! The tests' own relying party: a confidential OIDC client `mas` (secret
//! basic auth, PKCE S256, a nonce) whose redirect URI nobody serves, so the
//! browser's last stop is read, not followed.

use std::collections::HashMap;

use atlogin_core::pkce::PkceVerifier;
use atlogin_core::provider::{ClientAuth, ClientSecret, RegisteredClient, StoredSecret};
use serde_json::Value;
use url::Url;

/// Its client id.
pub const CLIENT_ID: &str = "mas";
/// Its one redirect URI.
pub const REDIRECT: &str = "https://mas.example.com/upstream/callback";
/// Its client secret (a test value).
pub const SECRET: &str = "mas-secret-0123456789abcdef";
/// The nonce of every request.
pub const NONCE: &str = "rp-nonce";

/// Its registration, for atlogin's settings.
#[must_use]
pub fn registered() -> RegisteredClient {
    RegisteredClient::new(
        CLIENT_ID,
        vec![REDIRECT.to_owned()],
        ClientAuth::ClientSecretBasic(StoredSecret::Plain(ClientSecret::new(SECRET))),
    )
}

/// The PKCE verifier of every request.
///
/// # Panics
///
/// Never: the text is a valid verifier.
#[must_use]
pub fn verifier() -> PkceVerifier {
    PkceVerifier::parse("an-e2e-verifier-that-is-long-enough-0123456789").expect("a verifier")
}

/// Its authorization request to atlogin at `base`, with `state`.
///
/// # Panics
///
/// When `base` is not a URL.
#[must_use]
pub fn authorize_url(base: &str, state: &str) -> String {
    let mut url = Url::parse(&format!("{base}/authorize")).expect("atlogin's URL");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid profile")
        .append_pair("state", state)
        .append_pair("nonce", NONCE)
        .append_pair("code_challenge", verifier().challenge().as_str())
        .append_pair("code_challenge_method", "S256");
    url.into()
}

/// The parameters atlogin sent back on `location`.
///
/// # Panics
///
/// When `location` is not the redirect URI.
#[must_use]
pub fn answer(location: &str) -> HashMap<String, String> {
    assert!(location.starts_with(REDIRECT), "{location}");
    Url::parse(location)
        .expect("a URL")
        .query_pairs()
        .into_owned()
        .collect()
}

/// Redeems `code` at atlogin's token endpoint: the status and the JSON.
///
/// # Panics
///
/// When atlogin does not answer with JSON.
pub async fn redeem(http: &reqwest::Client, base: &str, code: &str) -> (u16, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_verifier", verifier().secret())
        .finish();
    let response = http
        .post(format!("{base}/token"))
        .basic_auth(CLIENT_ID, Some(SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("atlogin answers");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("a body");
    (status, serde_json::from_slice(&bytes).expect("JSON"))
}

/// atlogin's userinfo for `access_token`.
///
/// # Panics
///
/// When atlogin does not answer with JSON.
pub async fn userinfo(http: &reqwest::Client, base: &str, access_token: &str) -> Value {
    let bytes = http
        .get(format!("{base}/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("atlogin answers")
        .bytes()
        .await
        .expect("a body");
    serde_json::from_slice(&bytes).expect("JSON")
}
