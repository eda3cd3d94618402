//! The built-in demo relying party at `/demo`: a real OpenID Connect code flow
//! with PKCE and a nonce against this same server, over HTTP like any other
//! relying party, ending in a page with the verified claims. It is on by
//! default in the laptop mode, so `atlogin serve` alone shows a whole sign-in.

use std::fmt::Write as _;
use std::time::Duration;

use atlogin_core::jose::{ClaimsValidation, JwkSet, Verifier};
use atlogin_core::pkce::PkceVerifier;
use atlogin_core::provider::{
    ClientAuth, ClientSecret, RegisteredClient, StoredSecret, storage_key,
};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;
use zeroize::Zeroizing;

use super::pages::{self, escape, private_page};
use super::signin::redirect;
use super::{Shared, now, random_token, rng};
use crate::store::{Kind, Put};

/// The demo relying party's `client_id`.
pub const DEMO_CLIENT_ID: &str = "atlogin-demo";

/// How long a demo sign-in may take.
const DEMO_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The demo relying party.
pub struct Demo {
    secret: Zeroizing<String>,
    /// Where the demo reaches this server: its own listening address.
    base: Url,
    http: reqwest::Client,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Demo {
    /// A demo with a fresh secret, reaching the server at `base`, and its
    /// registration for the provider (redirecting to `<issuer>/demo/callback`).
    pub fn new(issuer: &str, base: Url) -> Result<(Self, RegisteredClient), String> {
        let secret = Zeroizing::new(random_token());
        let registered = RegisteredClient::new(
            DEMO_CLIENT_ID,
            vec![format!("{issuer}/demo/callback")],
            ClientAuth::ClientSecretPost(StoredSecret::Plain(ClientSecret::new(secret.as_str()))),
        );
        let tls = atlogin_driver::hardening::tls_config(&[]).map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        Ok((Self { secret, base, http }, registered))
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }
}

/// A demo sign-in in progress.
#[derive(Serialize, Deserialize)]
struct DemoRecord {
    verifier: PkceVerifier,
    nonce: String,
}

/// `GET /demo`.
pub(super) async fn page() -> Response {
    private_page(
        StatusCode::OK,
        "Demo",
        "<h1>atlogin demo</h1>\n<p>This page is a small application that signs you in \
         through atlogin, the way Matrix Authentication Service or Synapse do: a real \
         OpenID Connect sign-in with PKCE, ending with the claims atlogin vouches for.</p>\n\
         <p><a href=\"/demo/start\">Sign in with Bluesky</a></p>",
    )
}

/// `GET /demo/start`: the demo's authorization request.
pub(super) async fn start(State(app): State<Shared>) -> Response {
    let provider = app.provider();
    let issuer = provider.issuer();
    let state = random_token();
    let record = DemoRecord {
        verifier: PkceVerifier::generate(&mut rng()),
        nonce: random_token(),
    };
    let Ok(mut url) = Url::parse(&format!("{issuer}/authorize")) else {
        return demo_error("the issuer is not a URL");
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", DEMO_CLIENT_ID)
        .append_pair("redirect_uri", &format!("{issuer}/demo/callback"))
        .append_pair("scope", "openid profile")
        .append_pair("state", &state)
        .append_pair("nonce", &record.nonce)
        .append_pair("code_challenge", record.verifier.challenge().as_str())
        .append_pair("code_challenge_method", "S256");
    let Ok(payload) = serde_json::to_string(&record) else {
        return demo_error("the sign-in could not be saved");
    };
    let now = now();
    let row = Put::new(
        Kind::Demo,
        storage_key(&state),
        payload,
        now.saturating_add(DEMO_LIFETIME),
    );
    if app.store.put(row, now).await.is_err() {
        return demo_error("the sign-in could not be saved");
    }
    redirect(url.as_str())
}

/// What comes back to the demo's redirect URI.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct DemoCallback {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn demo_error(what: &str) -> Response {
    pages::error(
        StatusCode::BAD_REQUEST,
        &format!("The demo sign-in failed: {what}."),
        "Start again at /demo.",
    )
}

/// `GET /demo/callback`: redeems the code, verifies the ID token, reads
/// userinfo and shows the claims.
pub(super) async fn callback(
    State(app): State<Shared>,
    Query(answer): Query<DemoCallback>,
) -> Response {
    let Some(demo) = app.demo.as_ref() else {
        return pages::not_found().await;
    };
    let provider = app.provider();
    let issuer = provider.issuer();
    let Some(state) = answer.state.as_deref() else {
        return demo_error("the answer has no state");
    };
    let record = match app.store.take(Kind::Demo, &storage_key(state), now()).await {
        Ok(Some(row)) => match serde_json::from_str::<DemoRecord>(&row.payload) {
            Ok(record) => record,
            Err(_) => return demo_error("the saved sign-in does not parse"),
        },
        _ => return demo_error("this sign-in is unknown or was already finished"),
    };
    if answer.iss.as_deref() != Some(issuer) {
        return demo_error("the answer does not come from this server (iss)");
    }
    if let Some(error) = &answer.error {
        let why = answer
            .error_description
            .as_deref()
            .unwrap_or("no description");
        return demo_error(&format!("atlogin answered {error} ({why})"));
    }
    let Some(code) = answer.code.as_deref() else {
        return demo_error("the answer has no code");
    };
    match redeem(demo, issuer, code, &record, app.crypto).await {
        Ok((claims, userinfo)) => show(&claims, &userinfo),
        Err(why) => demo_error(&why),
    }
}

/// The token request, the ID token's checks and the userinfo request.
async fn redeem(
    demo: &Demo,
    issuer: &str,
    code: &str,
    record: &DemoRecord,
    crypto: &dyn atlogin_core::jose::crypto::CryptoProvider,
) -> Result<(serde_json::Map<String, Value>, Value), String> {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", &format!("{issuer}/demo/callback"))
        .append_pair("code_verifier", record.verifier.secret())
        .append_pair("client_id", DEMO_CLIENT_ID)
        .append_pair("client_secret", demo.secret.as_str())
        .finish();
    let tokens = fetch_json(
        demo.http
            .post(demo.endpoint("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form),
        "token",
    )
    .await?;
    let id_token = tokens
        .get("id_token")
        .and_then(Value::as_str)
        .ok_or("the token response has no ID token")?;
    let access_token = tokens
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or("the token response has no access token")?;
    let jwks = demo
        .http
        .get(demo.endpoint("/jwks"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("the JWKS could not be read ({e})"))?
        .bytes()
        .await
        .map_err(|e| format!("the JWKS could not be read ({e})"))?;
    let jwks = JwkSet::from_json(&jwks).map_err(|e| format!("the JWKS does not parse ({e})"))?;
    let verified = Verifier::new(crypto)
        .verify(id_token, &jwks)
        .map_err(|e| format!("the ID token does not verify ({e})"))?;
    let validation = ClaimsValidation::new(now(), Duration::from_secs(60))
        .with_issuer(issuer)
        .with_audience(DEMO_CLIENT_ID);
    verified
        .validate(&validation)
        .map_err(|e| format!("the ID token's claims are not valid ({e})"))?;
    let claims = verified.claims().clone();
    if claims.get("nonce").and_then(Value::as_str) != Some(record.nonce.as_str()) {
        return Err("the ID token's nonce is not this sign-in's".to_owned());
    }
    let userinfo = fetch_json(
        demo.http
            .get(demo.endpoint("/userinfo"))
            .bearer_auth(access_token),
        "userinfo",
    )
    .await?;
    if userinfo.get("sub") != claims.get("sub") {
        return Err("userinfo is about someone else than the ID token".to_owned());
    }
    Ok((claims, userinfo))
}

async fn fetch_json(request: reqwest::RequestBuilder, what: &str) -> Result<Value, String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("the {what} request failed ({e})"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("the {what} response could not be read ({e})"))?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|_| format!("the {what} response is not JSON (HTTP {status})"))?;
    if !status.is_success() {
        let error = value
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("an error");
        return Err(format!(
            "the {what} endpoint answered {error} (HTTP {status})"
        ));
    }
    Ok(value)
}

/// The result page: the ID token's identity claims and the userinfo answer.
fn show(claims: &serde_json::Map<String, Value>, userinfo: &Value) -> Response {
    let mut rows = String::new();
    for name in [
        "sub",
        "preferred_username",
        "name",
        "picture",
        "email",
        "iss",
        "aud",
        "auth_time",
    ] {
        if let Some(value) = claims.get(name) {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(rows, "<dt>{name}</dt><dd>{}</dd>", escape(&text));
        }
    }
    let userinfo = serde_json::to_string_pretty(userinfo).unwrap_or_default();
    let main = format!(
        "<h1>Signed in</h1>\n<p>The ID token's signature, issuer, audience, expiry and \
         nonce check out. atlogin vouches for:</p>\n<dl>\n{rows}</dl>\n\
         <h2>userinfo</h2>\n<pre>{}</pre>\n<p><a href=\"/demo\">Sign in again</a></p>",
        escape(&userinfo)
    );
    private_page(StatusCode::OK, "Signed in", &main)
}
