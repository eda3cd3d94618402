//! Provider tests: every check MAS and Synapse make of a provider
//! (shared/notes/relying-parties.md), and every error path with its status,
//! code and delivery.

use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;

use super::*;
use crate::client::Scope;
use crate::identity::{Did, Handle, Mode};
use crate::jose::{
    Algorithm, ClaimsValidation, DefaultProvider, EcPrivateKey, Jwk, JwkSet, JwsSigningKey,
    RsaPrivateKeyDer, Verifier,
};
use crate::secret::SecretBytes;
use crate::time::UnixTime;

const ISSUER: &str = "https://atlogin.example.org/";
const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
const ALICE: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const MAS_REDIRECT: &str = "https://mas.example.com/upstream/callback/01HRPHARNESS00000000000001";
const SYNAPSE_REDIRECT: &str = "https://matrix.example.com/_synapse/client/oidc/callback";
const RSA_PKCS8: &[u8] = include_bytes!("../../testdata/rfc7515-a2-rsa.pkcs8.der");
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn rng(seed: u8) -> chacha20::ChaCha20Rng {
    use rand_core::SeedableRng;
    chacha20::ChaCha20Rng::from_seed([seed; 32])
}

fn es_key(kid: &str, seed: u8) -> JwsSigningKey {
    let key = EcPrivateKey::generate(&mut rng(seed));
    JwsSigningKey::new(DefaultProvider::get().load_es256(&key).expect("loads")).with_kid(kid)
}

fn rs_key() -> JwsSigningKey {
    let der = RsaPrivateKeyDer::Pkcs8(SecretBytes::new(RSA_PKCS8.to_vec()));
    JwsSigningKey::new(DefaultProvider::get().load_rs256(&der).expect("loads")).with_kid("rs-1")
}

/// The key the `private_key_jwt` client signs its assertions with.
fn jwt_client_key() -> JwsSigningKey {
    es_key("client-key", 50)
}

fn config() -> ProviderConfig {
    let mas = RegisteredClient::new(
        "mas",
        vec![MAS_REDIRECT.into()],
        ClientAuth::ClientSecretBasic(StoredSecret::Plain(ClientSecret::new(
            "mas-secret-0123456789",
        ))),
    )
    .with_allowed_scopes(Scope::parse("openid profile email offline_access").expect("scope"));
    let synapse = RegisteredClient::new(
        "synapse",
        vec![SYNAPSE_REDIRECT.into()],
        ClientAuth::ClientSecretBasic(StoredSecret::Sha256(storage_key("synapse-secret"))),
    )
    .with_id_token_alg(Algorithm::Es256);
    let post = RegisteredClient::new(
        "post",
        vec!["https://post.example.com/cb".into()],
        ClientAuth::ClientSecretPost(StoredSecret::Plain(ClientSecret::new(
            "post-secret-0123456789",
        ))),
    );
    let jwt = RegisteredClient::new(
        "jwt",
        vec!["https://jwt.example.com/cb".into()],
        ClientAuth::PrivateKeyJwt(JwkSet::new(vec![jwt_client_key().public_jwk()])),
    )
    .with_backchannel_logout_uri(url::Url::parse("https://jwt.example.com/logout").expect("url"));
    ProviderConfig::new(
        ISSUER,
        vec![rs_key(), es_key("es-1", 1)],
        vec![mas, synapse, post, jwt],
    )
    .expect("valid config")
}

fn user() -> AuthenticatedUser {
    AuthenticatedUser::new(
        Did::parse(ALICE, Mode::Production).expect("did"),
        NOW.saturating_sub(Duration::from_secs(5)),
    )
    .with_handle(Some(
        Handle::parse("alice.example.com", Mode::Production).expect("handle"),
    ))
    .with_profile(
        Some("Alice".into()),
        Some(
            url::Url::parse("https://pds.example.com/xrpc/com.atproto.sync.getBlob?did=x&cid=y")
                .expect("url"),
        ),
    )
    .with_confirmed_email(Some("alice@example.com".into()))
}

fn enc(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The authorization request MAS sends (shared/notes/relying-parties.md).
fn mas_query(extra: &str) -> String {
    format!(
        "response_type=code&client_id=mas&redirect_uri={}&scope=openid%20profile&state=st-1&nonce=n-1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        enc(MAS_REDIRECT)
    )
}

fn basic(id: &str, secret: &str) -> String {
    use base64ct::{Base64, Encoding};
    format!(
        "Basic {}",
        Base64::encode_string(format!("{}:{}", enc(id), enc(secret)).as_bytes())
    )
}

/// A full authorization for `client` up to the code.
fn code_for(config: &ProviderConfig, query: &str) -> (String, CodeGrant) {
    let pending = authorize(config, query, NOW).expect("valid request");
    let (url, code, grant) =
        issue_code(config, &pending, user(), NOW, &mut rng(2)).expect("issues");
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(query[0], ("code".to_owned(), code.secret().to_owned()));
    (code.secret().to_owned(), grant)
}

fn body_json(response: &http::Response<Vec<u8>>) -> Value {
    serde_json::from_slice(response.body()).expect("json body")
}

fn redeem(
    config: &ProviderConfig,
    form: &str,
    authorization: Option<&str>,
    stored: Option<CodeGrant>,
) -> TokenOutcome {
    let request = parse_token_request(form.as_bytes(), authorization).expect("parses");
    let client = authenticate_client(config, &request.auth, NOW, DefaultProvider::get())
        .expect("authenticates");
    token(
        config,
        &client,
        &request,
        Stored::Code(stored),
        NOW,
        &mut rng(3),
    )
}

fn code_form(code: &str, redirect: &str, verifier: &str) -> String {
    format!(
        "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={verifier}",
        enc(redirect)
    )
}

#[test]
fn discovery_passes_the_relying_parties_checks() {
    let config = config();
    let doc = discovery_document(&config);
    // MAS (oidc discovery mode): required fields, exact issuer, https everywhere,
    // openid in scopes_supported, no `none` among signing algorithms.
    for field in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ] {
        assert!(doc.get(field).is_some(), "{field} is required");
    }
    assert_eq!(doc["issuer"], ISSUER, "issuer is used byte for byte");
    for (name, value) in doc.as_object().expect("object") {
        if let Some(text) = value
            .as_str()
            .filter(|_| name.ends_with("_endpoint") || name == "jwks_uri" || name == "issuer")
        {
            let url = url::Url::parse(text).expect("a URL");
            assert_eq!(url.scheme(), "https", "{name}");
            assert_eq!(url.fragment(), None, "{name}");
        }
        if name.ends_with("_signing_alg_values_supported") {
            assert!(
                !value.as_array().expect("list").contains(&json!("none")),
                "{name}"
            );
        }
    }
    assert!(
        doc["scopes_supported"]
            .as_array()
            .expect("list")
            .contains(&json!("openid"))
    );
    // OIDC Discovery: RS256 must be offered; ES256 too since an ES256 key exists.
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256", "ES256"])
    );
    // Synapse: its client_auth_method, S256 and code must be listed.
    assert!(
        doc["token_endpoint_auth_methods_supported"]
            .as_array()
            .expect("list")
            .contains(&json!("client_secret_basic"))
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        doc["authorization_endpoint"],
        "https://atlogin.example.org/authorize"
    );
    assert_eq!(doc["token_endpoint"], "https://atlogin.example.org/token");
    assert_eq!(doc["jwks_uri"], "https://atlogin.example.org/jwks");
    assert_eq!(
        doc["userinfo_endpoint"],
        "https://atlogin.example.org/userinfo"
    );
    assert_eq!(doc["backchannel_logout_supported"], true);
    // The issuer without a trailing slash gives the same endpoints.
    let bare =
        ProviderConfig::new("https://atlogin.example.org", vec![rs_key()], vec![]).expect("valid");
    assert_eq!(
        discovery_document(&bare)["token_endpoint"],
        "https://atlogin.example.org/token"
    );
    assert_eq!(
        discovery_document(&bare)["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
}

#[test]
fn jwks_holds_public_keys_with_kids() {
    let jwks = config().jwks().to_json_value();
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                key.get(private).is_none(),
                "{private} must not be published"
            );
        }
        assert!(key["kid"].is_string());
        assert_eq!(key["use"], "sig");
    }
    assert_eq!(
        JwkSet::from_json(jwks.to_string().as_bytes())
            .expect("valid set")
            .keys()
            .len(),
        2
    );
}

#[test]
fn authorize_accepts_what_mas_and_synapse_send() {
    let config = config();
    let pending = authorize(&config, &mas_query(""), NOW).expect("valid");
    assert_eq!(pending.client_id, "mas");
    assert_eq!(pending.redirect_uri, MAS_REDIRECT);
    assert_eq!(pending.state.as_deref(), Some("st-1"));
    assert_eq!(pending.nonce.as_deref(), Some("n-1"));
    assert_eq!(pending.scope.to_string(), "openid profile");
    assert_eq!(
        pending
            .code_challenge
            .as_ref()
            .map(crate::pkce::PkceChallenge::as_str),
        Some(CHALLENGE)
    );
    assert_eq!(pending.prompt, Prompt::Default);
    assert_eq!(
        pending.expires_at,
        NOW.saturating_add(Duration::from_secs(15 * 60))
    );
    let hinted = authorize(
        &config,
        &mas_query("&login_hint=alice.bsky.social&prompt=login"),
        NOW,
    )
    .expect("valid");
    assert_eq!(hinted.login_hint.as_deref(), Some("alice.bsky.social"));
    assert_eq!(hinted.prompt, Prompt::Login);
    assert_eq!(
        authorize(&config, &mas_query("&max_age=0"), NOW)
            .expect("valid")
            .prompt,
        Prompt::Login
    );
    assert_eq!(
        authorize(
            &config,
            &mas_query("&max_age=3600&prompt=consent&response_mode=query"),
            NOW
        )
        .expect("valid")
        .max_age,
        Some(3600)
    );
}

#[test]
fn authorize_errors_before_the_redirect_uri_is_trusted_are_shown() {
    let config = config();
    let page = |query: &str| match authorize(&config, query, NOW) {
        Err(AuthorizeError::Page(page)) => page.error,
        other => panic!("expected a page error, got {other:?}"),
    };
    let redirect = enc(MAS_REDIRECT);
    assert_eq!(page("response_type=code&scope=openid"), "invalid_request");
    assert_eq!(
        page(&format!(
            "client_id=nobody&redirect_uri={redirect}&response_type=code&scope=openid"
        )),
        "invalid_client"
    );
    assert_eq!(
        page("client_id=mas&response_type=code&scope=openid"),
        "invalid_request"
    );
    assert_eq!(
        page(&format!(
            "client_id=mas&redirect_uri={}&response_type=code&scope=openid",
            enc("https://evil.example.com/cb")
        )),
        "invalid_request"
    );
    // Close is not equal: a trailing slash or another case is another URI.
    assert_eq!(
        page(&format!(
            "client_id=mas&redirect_uri={}&response_type=code&scope=openid",
            enc(&format!("{MAS_REDIRECT}/"))
        )),
        "invalid_request"
    );
    assert_eq!(
        page(&format!("{}&client_id=mas", mas_query(""))),
        "invalid_request"
    );
    assert_eq!(page(&"a=b&".repeat(2000)), "invalid_request");
}

#[test]
fn authorize_errors_after_it_go_back_with_state_and_iss() {
    let config = config();
    let base = format!(
        "client_id=mas&redirect_uri={}&state=st-9",
        enc(MAS_REDIRECT)
    );
    let pkce = format!("&code_challenge={CHALLENGE}&code_challenge_method=S256");
    let cases = [
        (
            format!("{base}&response_type=token&scope=openid{pkce}"),
            "unsupported_response_type",
        ),
        (format!("{base}&scope=openid{pkce}"), "invalid_request"),
        (
            format!("{base}&response_type=code&scope=profile{pkce}"),
            "invalid_scope",
        ),
        (format!("{base}&response_type=code{pkce}"), "invalid_scope"),
        (
            format!("{base}&response_type=code&scope=openid%20admin{pkce}"),
            "invalid_scope",
        ),
        (
            format!("{base}&response_type=code&scope=openid"),
            "invalid_request",
        ),
        (
            format!(
                "{base}&response_type=code&scope=openid&code_challenge={CHALLENGE}&code_challenge_method=plain"
            ),
            "invalid_request",
        ),
        (
            format!("{base}&response_type=code&scope=openid&code_challenge={CHALLENGE}"),
            "invalid_request",
        ),
        (
            format!(
                "{base}&response_type=code&scope=openid&code_challenge=short&code_challenge_method=S256"
            ),
            "invalid_request",
        ),
        (
            format!("{base}&response_type=code&scope=openid&code_challenge_method=S256"),
            "invalid_request",
        ),
        (
            format!("{base}&response_type=code&scope=openid{pkce}&prompt=none"),
            "login_required",
        ),
        (
            format!("{base}&response_type=code&scope=openid{pkce}&prompt=none%20login"),
            "invalid_request",
        ),
        (
            format!("{base}&response_type=code&scope=openid{pkce}&prompt=select_account"),
            "invalid_request",
        ),
        (
            format!("{base}&response_type=code&scope=openid{pkce}&request=eyJ"),
            "request_not_supported",
        ),
        (
            format!("{base}&response_type=code&scope=openid{pkce}&request_uri=urn:x"),
            "request_uri_not_supported",
        ),
        (
            format!("{base}&response_type=code&scope=openid{pkce}&registration=%7B%7D"),
            "registration_not_supported",
        ),
        (
            format!("{base}&response_type=code&scope=openid{pkce}&response_mode=fragment"),
            "invalid_request",
        ),
        (
            format!("{base}&response_type=code&scope=openid{pkce}&max_age=-1"),
            "invalid_request",
        ),
        (
            format!(
                "{base}&response_type=code&scope=openid{pkce}&nonce={}",
                "n".repeat(3000)
            ),
            "invalid_request",
        ),
    ];
    for (query, expected) in cases {
        match authorize(&config, &query, NOW) {
            Err(AuthorizeError::Redirect { error, url }) => {
                assert_eq!(error, expected, "{query}");
                assert!(url.as_str().starts_with(MAS_REDIRECT), "{url}");
                let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
                let get = |name: &str| {
                    params
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.as_str())
                };
                assert_eq!(get("error"), Some(expected));
                assert!(get("error_description").is_some());
                assert_eq!(get("state"), Some("st-9"));
                assert_eq!(get("iss"), Some(ISSUER));
            }
            other => panic!("{query}: expected a redirect, got {other:?}"),
        }
    }
}

#[test]
fn a_client_may_opt_out_of_pkce() {
    let client = RegisteredClient::new(
        "legacy",
        vec!["https://legacy.example.com/cb".into()],
        ClientAuth::ClientSecretPost(StoredSecret::Plain(ClientSecret::new(
            "sixteen-chars-at-least",
        ))),
    )
    .without_required_pkce();
    let config = ProviderConfig::new(ISSUER, vec![rs_key()], vec![client]).expect("valid");
    let query = format!(
        "client_id=legacy&redirect_uri={}&response_type=code&scope=openid",
        enc("https://legacy.example.com/cb")
    );
    assert_eq!(
        authorize(&config, &query, NOW)
            .expect("valid")
            .code_challenge,
        None
    );
}

#[test]
fn the_code_redirect_carries_code_state_and_iss() {
    let config = config();
    let pending = authorize(&config, &mas_query(""), NOW).expect("valid");
    let (url, code, grant) =
        issue_code(&config, &pending, user(), NOW, &mut rng(2)).expect("issues");
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(
        params,
        vec![
            ("code".to_owned(), code.secret().to_owned()),
            ("state".to_owned(), "st-1".to_owned()),
            ("iss".to_owned(), ISSUER.to_owned()),
        ]
    );
    assert_eq!(code.secret().len(), 43, "256 random bits");
    assert_eq!(
        grant.expires_at,
        NOW.saturating_add(Duration::from_secs(60))
    );
    assert!(!grant.redeemed);
    assert_eq!(grant.family.len(), 22, "128 random bits");
    let AuthorizeError::Redirect { error, url: denied } =
        deny(&config, &pending, "access_denied", "the person declined")
    else {
        panic!("a denial goes back to the client");
    };
    assert_eq!(error, "access_denied");
    assert!(
        denied.as_str().contains("error=access_denied") && denied.as_str().contains("state=st-1")
    );
}

/// Verifies an ID token the way MAS does: signature against the JWKS, the
/// configured algorithm exactly, `iss`, `aud`, `exp`, `iat`, `sub`, `nonce`, `at_hash`.
fn check_like_mas(
    config: &ProviderConfig,
    id_token: &str,
    alg: Algorithm,
    client_id: &str,
    access_token: &str,
) -> serde_json::Map<String, Value> {
    let jwks =
        JwkSet::from_json(config.jwks().to_json_value().to_string().as_bytes()).expect("jwks");
    let verified = Verifier::new(DefaultProvider::get())
        .with_algorithms(&[alg])
        .verify(id_token, &jwks)
        .expect("signature");
    assert_eq!(verified.header().alg, alg);
    let validation = ClaimsValidation::new(NOW, Duration::ZERO)
        .with_issuer(ISSUER)
        .with_audience(client_id)
        .with_required_iat();
    let registered = verified.validate(&validation).expect("claims");
    assert_eq!(registered.sub.as_deref(), Some(ALICE));
    let claims = verified.claims().clone();
    assert_eq!(claims["nonce"], "n-1");
    let hash = sha2::Sha256::digest(access_token.as_bytes());
    assert_eq!(
        claims["at_hash"],
        crate::base64url::encode(&hash[..16]),
        "left half of SHA-256"
    );
    assert!(
        claims["sid"].as_str().is_some_and(|sid| !sid.is_empty()),
        "the session, for back-channel logout"
    );
    claims
}

#[test]
fn a_whole_code_exchange_as_mas_does_it() {
    let config = config();
    let (code, grant) = code_for(&config, &mas_query(""));
    let outcome = redeem(
        &config,
        &code_form(&code, MAS_REDIRECT, VERIFIER),
        Some(&basic("mas", "mas-secret-0123456789")),
        Some(grant),
    );
    let response = outcome.response;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = body_json(&response);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "openid profile");
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    let access = body["access_token"].as_str().expect("token");
    let claims = check_like_mas(
        &config,
        body["id_token"].as_str().expect("id_token"),
        Algorithm::Rs256,
        "mas",
        access,
    );
    assert_eq!(claims["preferred_username"], "alice.example.com");
    assert_eq!(claims["name"], "Alice");
    assert!(
        claims["picture"]
            .as_str()
            .is_some_and(|p| p.starts_with("https://"))
    );
    assert_eq!(claims["auth_time"], NOW.as_secs() - 5);
    assert!(claims.get("email").is_none(), "email was not in the scope");
    // What to store: the code redeemed, the access token under its hash only.
    let changes = outcome.changes;
    let (key, redeemed) = changes.code.expect("code marked");
    assert_eq!(key, storage_key(&code));
    assert!(redeemed.redeemed);
    let (access_key, access_grant) = changes.access.expect("access stored");
    assert_eq!(access_key, storage_key(access));
    assert_ne!(access_key, access);
    assert_eq!(access_grant.user.did.as_str(), ALICE);
}

#[test]
fn synapse_gets_es256_when_registered_so() {
    let config = config();
    let query = format!(
        "response_type=code&client_id=synapse&redirect_uri={}&scope=openid%20profile%20email&state=s&nonce=n-1&code_challenge={CHALLENGE}&code_challenge_method=S256",
        enc(SYNAPSE_REDIRECT)
    );
    let (code, grant) = code_for(&config, &query);
    let outcome = redeem(
        &config,
        &code_form(&code, SYNAPSE_REDIRECT, VERIFIER),
        Some(&basic("synapse", "synapse-secret")),
        Some(grant),
    );
    let body = body_json(&outcome.response);
    let id_token = body["id_token"].as_str().expect("id_token");
    let header = crate::jose::UnverifiedJws::parse(id_token, 16 * 1024).expect("parses");
    assert_eq!(header.header().kid.as_deref(), Some("es-1"));
    let claims = check_like_mas(
        &config,
        id_token,
        Algorithm::Es256,
        "synapse",
        body["access_token"].as_str().expect("token"),
    );
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
}

#[test]
fn claims_follow_what_is_verified_and_granted() {
    let config = config();
    let pending = authorize(&config, &mas_query(""), NOW).expect("valid");
    let unverified = AuthenticatedUser::new(Did::parse(ALICE, Mode::Production).expect("did"), NOW);
    let (_, code, grant) =
        issue_code(&config, &pending, unverified, NOW, &mut rng(4)).expect("issues");
    let outcome = redeem(
        &config,
        &code_form(code.secret(), MAS_REDIRECT, VERIFIER),
        Some(&basic("mas", "mas-secret-0123456789")),
        Some(grant),
    );
    let body = body_json(&outcome.response);
    let claims = check_like_mas(
        &config,
        body["id_token"].as_str().expect("id"),
        Algorithm::Rs256,
        "mas",
        body["access_token"].as_str().expect("at"),
    );
    for absent in [
        "preferred_username",
        "name",
        "picture",
        "email",
        "email_verified",
    ] {
        assert!(
            claims.get(absent).is_none(),
            "{absent} without a verified value"
        );
    }
    // Without a display name, the verified handle is the name.
    let handle_only =
        AuthenticatedUser::new(Did::parse(ALICE, Mode::Production).expect("did"), NOW).with_handle(
            Some(Handle::parse("alice.example.com", Mode::Production).expect("handle")),
        );
    let (_, code, grant) =
        issue_code(&config, &pending, handle_only, NOW, &mut rng(5)).expect("issues");
    let outcome = redeem(
        &config,
        &code_form(code.secret(), MAS_REDIRECT, VERIFIER),
        Some(&basic("mas", "mas-secret-0123456789")),
        Some(grant),
    );
    let body = body_json(&outcome.response);
    let claims = check_like_mas(
        &config,
        body["id_token"].as_str().expect("id"),
        Algorithm::Rs256,
        "mas",
        body["access_token"].as_str().expect("at"),
    );
    assert_eq!(claims["name"], "alice.example.com");
}

fn refused(outcome: &TokenOutcome) -> (StatusCode, String) {
    let body = body_json(&outcome.response);
    (
        outcome.response.status(),
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn code_grant_errors() {
    let config = config();
    let auth = basic("mas", "mas-secret-0123456789");
    let (code, grant) = code_for(&config, &mas_query(""));
    let bad = (StatusCode::BAD_REQUEST, "invalid_grant".to_owned());
    assert_eq!(
        refused(&redeem(
            &config,
            &code_form(&code, MAS_REDIRECT, VERIFIER),
            Some(&auth),
            None
        )),
        bad
    );
    assert_eq!(
        refused(&redeem(
            &config,
            &code_form(&code, MAS_REDIRECT, &"x".repeat(43)),
            Some(&auth),
            Some(grant.clone())
        )),
        bad
    );
    let no_verifier = format!(
        "grant_type=authorization_code&code={code}&redirect_uri={}",
        enc(MAS_REDIRECT)
    );
    assert_eq!(
        refused(&redeem(
            &config,
            &no_verifier,
            Some(&auth),
            Some(grant.clone())
        )),
        bad
    );
    assert_eq!(
        refused(&redeem(
            &config,
            &code_form(&code, SYNAPSE_REDIRECT, VERIFIER),
            Some(&auth),
            Some(grant.clone())
        )),
        bad
    );
    let no_redirect = format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}");
    assert_eq!(
        refused(&redeem(
            &config,
            &no_redirect,
            Some(&auth),
            Some(grant.clone())
        )),
        bad
    );
    let mut expired = grant.clone();
    expired.expires_at = NOW;
    assert_eq!(
        refused(&redeem(
            &config,
            &code_form(&code, MAS_REDIRECT, VERIFIER),
            Some(&auth),
            Some(expired)
        )),
        bad
    );
    // Another client's code.
    let other = redeem(
        &config,
        &code_form(&code, MAS_REDIRECT, VERIFIER),
        Some(&basic("synapse", "synapse-secret")),
        Some(grant.clone()),
    );
    assert_eq!(refused(&other), bad);
    // A refused request changes nothing.
    assert_eq!(other.changes, StoreChanges::default());
}

#[test]
fn a_replayed_code_revokes_what_it_produced() {
    let config = config();
    let auth = basic("mas", "mas-secret-0123456789");
    let (code, grant) = code_for(&config, &mas_query(""));
    let first = redeem(
        &config,
        &code_form(&code, MAS_REDIRECT, VERIFIER),
        Some(&auth),
        Some(grant),
    );
    let (_, redeemed) = first.changes.code.expect("marked");
    let redeemed_family = redeemed.family.clone();
    let access_key = first.changes.access.expect("stored").0;
    let second = redeem(
        &config,
        &code_form(&code, MAS_REDIRECT, VERIFIER),
        Some(&auth),
        Some(redeemed),
    );
    assert_eq!(
        refused(&second),
        (StatusCode::BAD_REQUEST, "invalid_grant".to_owned())
    );
    assert_eq!(second.changes.revoke_family, Some(redeemed_family));
    assert_eq!(second.changes.access, None, "a replay issues nothing");
    drop(access_key);
}

fn authenticate(
    config: &ProviderConfig,
    form: &str,
    authorization: Option<&str>,
) -> Result<Option<(String, UnixTime)>, OAuthError> {
    let request = parse_token_request(form.as_bytes(), authorization)?;
    authenticate_client(config, &request.auth, NOW, DefaultProvider::get()).map(|c| c.assertion_jti)
}

fn assertion(claims: &Value, key: &JwsSigningKey) -> String {
    key.sign(None, claims).expect("signs")
}

fn assertion_form(jwt: &str) -> String {
    format!(
        "grant_type=authorization_code&code=c&client_assertion_type={}&client_assertion={jwt}",
        enc("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    )
}

#[test]
fn client_authentication_failures() {
    let config = config();
    let form = "grant_type=authorization_code&code=c";
    assert_eq!(
        authenticate(&config, form, Some(&basic("mas", "mas-secret-0123456789"))),
        Ok(None)
    );
    // Wrong secret over Basic: 401 with a Basic challenge.
    let err = authenticate(&config, form, Some(&basic("mas", "wrong"))).expect_err("refused");
    assert_eq!(
        (err.status, err.error),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    let response = err.to_response();
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .starts_with("Basic")
    );
    // Hashed secrets compare too.
    assert_eq!(
        authenticate(&config, form, Some(&basic("synapse", "synapse-secret"))),
        Ok(None)
    );
    assert!(authenticate(&config, form, Some(&basic("synapse", "Synapse-secret"))).is_err());
    // client_secret_post.
    assert_eq!(
        authenticate(
            &config,
            &format!("{form}&client_id=post&client_secret=post-secret-0123456789"),
            None
        ),
        Ok(None)
    );
    let err = authenticate(
        &config,
        &format!("{form}&client_id=post&client_secret=nope"),
        None,
    )
    .expect_err("refused");
    assert_eq!(
        (err.status, err.error, err.www_authenticate.is_none()),
        (StatusCode::UNAUTHORIZED, "invalid_client", true)
    );
    // A method other than the registered one, an unknown client, no authentication.
    assert_eq!(
        authenticate(
            &config,
            &format!("{form}&client_id=mas&client_secret=mas-secret-0123456789"),
            None
        )
        .map_err(|e| e.error),
        Err("invalid_client")
    );
    assert_eq!(
        authenticate(
            &config,
            form,
            Some(&basic("post", "post-secret-0123456789"))
        )
        .map_err(|e| e.error),
        Err("invalid_client")
    );
    assert_eq!(
        authenticate(&config, form, Some(&basic("nobody", "x"))).map_err(|e| e.error),
        Err("invalid_client")
    );
    assert_eq!(
        authenticate(&config, &format!("{form}&client_id=mas"), None).map_err(|e| e.error),
        Err("invalid_client")
    );
    assert_eq!(
        authenticate(&config, form, None).map_err(|e| e.error),
        Err("invalid_client")
    );
    // Two methods at once, and malformed Basic.
    let err = authenticate(
        &config,
        &format!("{form}&client_id=mas&client_secret=x"),
        Some(&basic("mas", "mas-secret-0123456789")),
    )
    .expect_err("refused");
    assert_eq!(
        (err.status, err.error),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    assert_eq!(
        authenticate(&config, form, Some("Basic !!!")).map_err(|e| e.error),
        Err("invalid_client")
    );
    assert_eq!(
        authenticate(&config, form, Some("Bearer abc")).map_err(|e| e.error),
        Err("invalid_request")
    );
}

#[test]
fn private_key_jwt_client_authentication() {
    let config = config();
    let key = jwt_client_key();
    let good = json!({"iss": "jwt", "sub": "jwt", "aud": "https://atlogin.example.org/token", "jti": "j-1", "iat": NOW.as_secs(), "exp": NOW.as_secs() + 60});
    assert_eq!(
        authenticate(&config, &assertion_form(&assertion(&good, &key)), None),
        Ok(Some((
            "j-1".to_owned(),
            NOW.saturating_add(Duration::from_secs(60))
        )))
    );
    // The issuer as audience is accepted too.
    let mut issuer_aud = good.clone();
    issuer_aud["aud"] = json!([ISSUER]);
    assert!(
        authenticate(
            &config,
            &assertion_form(&assertion(&issuer_aud, &key)),
            None
        )
        .is_ok()
    );
    let stranger = es_key("client-key", 51);
    let cases: Vec<(Value, &JwsSigningKey)> = vec![
        (good.clone(), &stranger),
        (
            json!({"iss": "jwt", "sub": "jwt", "aud": "https://other.example.com/token", "jti": "j", "exp": NOW.as_secs() + 60}),
            &key,
        ),
        (
            json!({"iss": "jwt", "sub": "jwt", "aud": ISSUER, "jti": "j", "exp": NOW.as_secs() - 60}),
            &key,
        ),
        (
            json!({"iss": "jwt", "sub": "jwt", "aud": ISSUER, "exp": NOW.as_secs() + 60}),
            &key,
        ),
        (
            json!({"iss": "jwt", "sub": "jwt", "aud": ISSUER, "jti": "j"}),
            &key,
        ),
        (
            json!({"iss": "jwt", "sub": "jwt", "aud": ISSUER, "jti": "j", "exp": NOW.as_secs() + 3600}),
            &key,
        ),
        (
            json!({"iss": "jwt", "sub": "mas", "aud": ISSUER, "jti": "j", "exp": NOW.as_secs() + 60}),
            &key,
        ),
        (
            json!({"iss": "mas", "sub": "mas", "aud": ISSUER, "jti": "j", "exp": NOW.as_secs() + 60}),
            &key,
        ),
        (
            json!({"sub": "jwt", "aud": ISSUER, "jti": "j", "exp": NOW.as_secs() + 60}),
            &key,
        ),
    ];
    for (claims, signer) in cases {
        let result = authenticate(&config, &assertion_form(&assertion(&claims, signer)), None);
        assert_eq!(
            result.map_err(|e| (e.status, e.error)),
            Err((StatusCode::UNAUTHORIZED, "invalid_client")),
            "{claims}"
        );
    }
    assert!(authenticate(&config, &assertion_form("not.a.jwt"), None).is_err());
    assert_eq!(
        authenticate(
            &config,
            "grant_type=authorization_code&code=c&client_assertion=x",
            None
        )
        .map_err(|e| e.error),
        Err("invalid_request")
    );
}

#[test]
fn token_request_parsing() {
    let parse = |form: &str| parse_token_request(form.as_bytes(), None).map_err(|e| e.error);
    assert_eq!(
        parse("grant_type=password&client_id=x&username=a").map(|_| ()),
        Err("unsupported_grant_type")
    );
    assert_eq!(
        parse("client_id=x&code=c").map(|_| ()),
        Err("invalid_request")
    );
    assert_eq!(
        parse("grant_type=authorization_code&client_id=x").map(|_| ()),
        Err("invalid_request")
    );
    assert_eq!(
        parse("grant_type=authorization_code&code=a&code=b&client_id=x").map(|_| ()),
        Err("invalid_request")
    );
    assert_eq!(
        parse("grant_type=refresh_token&client_id=x").map(|_| ()),
        Err("invalid_request")
    );
    let big = format!(
        "grant_type=authorization_code&code={}",
        "c".repeat(MAX_TOKEN_REQUEST_LEN)
    );
    assert_eq!(parse(&big).map(|_| ()), Err("invalid_request"));
    let debug = format!(
        "{:?}",
        parse_token_request(
            b"grant_type=authorization_code&code=the-code&client_id=x&client_secret=the-secret",
            None
        )
        .expect("parses")
    );
    assert!(
        !debug.contains("the-code") && !debug.contains("the-secret"),
        "{debug}"
    );
}

#[test]
fn refresh_tokens_rotate_and_replays_end_the_line() {
    let config = config();
    let auth = basic("mas", "mas-secret-0123456789");
    let query = mas_query("").replace("scope=openid%20profile", "scope=openid%20offline_access");
    let (code, grant) = code_for(&config, &query);
    let first = redeem(
        &config,
        &code_form(&code, MAS_REDIRECT, VERIFIER),
        Some(&auth),
        Some(grant),
    );
    let body = body_json(&first.response);
    let refresh_token = body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let (refresh_key, refresh_grant) = first.changes.refresh.clone().expect("stored");
    assert_eq!(refresh_key, storage_key(&refresh_token));

    let form = format!("grant_type=refresh_token&refresh_token={refresh_token}");
    let request = parse_token_request(form.as_bytes(), Some(&auth)).expect("parses");
    assert_eq!(request.lookup_key(), refresh_key);
    let client =
        authenticate_client(&config, &request.auth, NOW, DefaultProvider::get()).expect("client");
    let second = token(
        &config,
        &client,
        &request,
        Stored::Refresh(Some(refresh_grant)),
        NOW,
        &mut rng(6),
    );
    assert_eq!(second.response.status(), StatusCode::OK);
    let body = body_json(&second.response);
    assert_ne!(
        body["refresh_token"].as_str(),
        Some(refresh_token.as_str()),
        "rotated"
    );
    assert!(body["id_token"].is_string());
    let (used_key, used) = second.changes.used_refresh.clone().expect("marked");
    assert_eq!(used_key, refresh_key);
    assert!(used.rotated);
    let family = used.family.clone();
    assert_eq!(
        second
            .changes
            .refresh
            .as_ref()
            .map(|(_, g)| g.family.clone()),
        Some(family.clone()),
        "one family"
    );

    let replay = token(
        &config,
        &client,
        &request,
        Stored::Refresh(Some(used)),
        NOW,
        &mut rng(7),
    );
    assert_eq!(
        refused(&replay),
        (StatusCode::BAD_REQUEST, "invalid_grant".to_owned())
    );
    assert_eq!(replay.changes.revoke_family, Some(family));
    assert_eq!(
        refused(&token(
            &config,
            &client,
            &request,
            Stored::Refresh(None),
            NOW,
            &mut rng(7)
        ))
        .1,
        "invalid_grant"
    );
}

#[test]
fn userinfo_with_bearer_tokens() {
    let config = config();
    let query = mas_query("").replace("scope=openid%20profile", "scope=openid%20profile%20email");
    let (code, grant) = code_for(&config, &query);
    let outcome = redeem(
        &config,
        &code_form(&code, MAS_REDIRECT, VERIFIER),
        Some(&basic("mas", "mas-secret-0123456789")),
        Some(grant),
    );
    let access = body_json(&outcome.response)["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (_, access_grant) = outcome.changes.access.expect("stored");

    assert_eq!(
        bearer_token(Some(&format!("Bearer {access}")), None),
        Ok(crate::secret::AccessToken::new(access.clone()))
    );
    assert_eq!(
        bearer_token(None, Some(format!("access_token={access}").as_bytes())),
        Ok(crate::secret::AccessToken::new(access.clone()))
    );
    assert_eq!(
        bearer_token(Some(&format!("bearer {access}")), None),
        Ok(crate::secret::AccessToken::new(access.clone()))
    );
    let both = bearer_token(
        Some(&format!("Bearer {access}")),
        Some(format!("access_token={access}").as_bytes()),
    );
    assert_eq!(both.map_err(|e| e.error), Err("invalid_request"));
    let none = bearer_token(None, None).expect_err("no token");
    assert_eq!(
        (none.status, none.www_authenticate.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("Bearer"))
    );
    let basic = bearer_token(Some("Basic abc"), None).expect_err("not a bearer token");
    assert_eq!(
        (basic.status, basic.error),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    assert_eq!(
        basic.www_authenticate.as_deref(),
        Some(r#"Bearer error="invalid_request""#)
    );
    // No credentials at all: a bare challenge and no error code.
    assert_eq!(body_json(&none.to_response()), json!({}));

    let response = userinfo(Some(access_grant.clone()), NOW).expect("valid");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let claims = body_json(&response);
    assert_eq!(claims["sub"], ALICE);
    assert_eq!(claims["preferred_username"], "alice.example.com");
    assert_eq!(claims["email"], "alice@example.com");
    let expired = userinfo(
        Some(access_grant),
        NOW.saturating_add(Duration::from_secs(300)),
    )
    .expect_err("expired");
    assert_eq!(
        (expired.status, expired.error),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    assert!(
        expired.to_response().headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .starts_with("Bearer error=\"invalid_token\"")
    );
    assert_eq!(
        userinfo(None, NOW).map(|_| ()).map_err(|e| e.error),
        Err("invalid_token")
    );
}

#[test]
fn revocation() {
    let config = config();
    let (code, grant) = code_for(&config, &mas_query(""));
    let outcome = redeem(
        &config,
        &code_form(&code, MAS_REDIRECT, VERIFIER),
        Some(&basic("mas", "mas-secret-0123456789")),
        Some(grant),
    );
    let access = body_json(&outcome.response)["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (key, access_grant) = outcome.changes.access.expect("stored");
    let request =
        RevocationRequest::parse(format!("token={access}&token_type_hint=access_token").as_bytes())
            .expect("parses");
    assert_eq!(request.lookup_key(), key);
    let mas = authenticate_client(
        &config,
        &PresentedAuth::Basic {
            client_id: "mas".into(),
            secret: ClientSecret::new("mas-secret-0123456789"),
        },
        NOW,
        DefaultProvider::get(),
    )
    .expect("client");
    let (response, revocation) =
        revoke(&mas, &request, Some(&access_grant), None).expect("revoked");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(revocation.delete, Some(key));
    assert_eq!(revocation.revoke_family, None, "an access token alone");
    let (_, nothing) = revoke(&mas, &request, None, None).expect("unknown tokens are fine");
    assert_eq!(nothing, Revocation::default());
    let synapse = authenticate_client(
        &config,
        &PresentedAuth::Basic {
            client_id: "synapse".into(),
            secret: ClientSecret::new("synapse-secret"),
        },
        NOW,
        DefaultProvider::get(),
    )
    .expect("client");
    assert_eq!(
        revoke(&synapse, &request, Some(&access_grant), None)
            .map(|_| ())
            .map_err(|e| e.error),
        Err("unauthorized_client")
    );
    assert_eq!(
        RevocationRequest::parse(b"token_type_hint=access_token").map_err(|e| e.error),
        Err("invalid_request")
    );
}

#[test]
fn backchannel_logout_tokens() {
    let config = config();
    let client = config.client("jwt").expect("registered");
    let did = Did::parse(ALICE, Mode::Production).expect("did");
    let token =
        logout_token(&config, client, &did, Some("family-1"), NOW, &mut rng(8)).expect("signs");
    let verified = Verifier::new(DefaultProvider::get())
        .with_typ("logout+jwt")
        .verify(&token, &config.jwks())
        .expect("verifies");
    let claims = verified.claims();
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], "jwt");
    assert_eq!(claims["sub"], ALICE);
    assert!(claims["jti"].is_string());
    assert_eq!(
        claims["events"],
        json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    assert!(
        claims.get("nonce").is_none(),
        "a logout token must not carry a nonce"
    );
    assert_eq!(claims["sid"], "family-1", "the session it ends");
    let every_session = logout_token(&config, client, &did, None, NOW, &mut rng(9)).expect("signs");
    let verified = Verifier::new(DefaultProvider::get())
        .verify(&every_session, &config.jwks())
        .expect("verifies");
    assert!(
        verified.claims().get("sid").is_none(),
        "no sid: every session of sub"
    );
}

#[test]
fn configuration_rules() {
    let client = |auth| RegisteredClient::new("c", vec!["https://c.example.com/cb".into()], auth);
    let secret = || {
        ClientAuth::ClientSecretBasic(StoredSecret::Plain(ClientSecret::new(
            "sixteen-chars-at-least",
        )))
    };
    assert!(matches!(
        ProviderConfig::new(ISSUER, vec![es_key("es", 1)], vec![]),
        Err(ProviderConfigError::Keys(_))
    ));
    assert!(matches!(
        ProviderConfig::new(ISSUER, vec![rs_key(), rs_key()], vec![]),
        Err(ProviderConfigError::Keys(_))
    ));
    let no_kid = JwsSigningKey::new(
        DefaultProvider::get()
            .load_rs256(&RsaPrivateKeyDer::Pkcs8(SecretBytes::new(
                RSA_PKCS8.to_vec(),
            )))
            .expect("loads"),
    );
    assert!(matches!(
        ProviderConfig::new(ISSUER, vec![no_kid], vec![]),
        Err(ProviderConfigError::Keys(_))
    ));
    for issuer in [
        "http://atlogin.example.org/",
        "https://atlogin.example.org/?x",
        "https://atlogin.example.org/#x",
        "not a url",
    ] {
        assert!(
            matches!(
                ProviderConfig::new(issuer, vec![rs_key()], vec![]),
                Err(ProviderConfigError::Issuer(_))
            ),
            "{issuer}"
        );
    }
    assert!(
        ProviderConfig::new("http://127.0.0.1:9411/", vec![rs_key()], vec![]).is_ok(),
        "loopback http for development"
    );
    assert!(
        ProviderConfig::new(
            ISSUER,
            vec![rs_key()],
            vec![client(secret()).with_id_token_alg(Algorithm::Es256)]
        )
        .is_err(),
        "no ES256 key"
    );
    assert!(
        ProviderConfig::new(
            ISSUER,
            vec![rs_key()],
            vec![client(secret()).with_allowed_scopes(Scope::parse("profile").expect("scope"))]
        )
        .is_err()
    );
    assert!(
        ProviderConfig::new(
            ISSUER,
            vec![rs_key()],
            vec![client(secret()), client(secret())]
        )
        .is_err()
    );
    assert!(
        ProviderConfig::new(
            ISSUER,
            vec![rs_key()],
            vec![RegisteredClient::new(
                "a:b",
                vec!["https://c.example.com/cb".into()],
                secret()
            )]
        )
        .is_err()
    );
    assert!(
        ProviderConfig::new(
            ISSUER,
            vec![rs_key()],
            vec![RegisteredClient::new("c", vec![], secret())]
        )
        .is_err()
    );
    let debug = format!("{:?}", config());
    assert!(
        !debug.contains("mas-secret-0123456789"),
        "secrets stay out of Debug"
    );
    let jwk: Jwk = config().jwks().keys()[0].clone();
    assert_eq!(jwk.kid(), Some("rs-1"));
}

#[test]
fn codes_need_a_fresh_enough_login() {
    let config = config();
    let redirect_error = |result: Result<_, AuthorizeError>| match result {
        Err(AuthorizeError::Redirect { error, url }) => {
            assert!(url.as_str().contains("state=st-1"));
            error
        }
        other => panic!("expected a redirect error, got {other:?}"),
    };
    // The request expired while the person was away.
    let pending = authorize(&config, &mas_query(""), NOW).expect("valid");
    let late = pending.expires_at;
    assert_eq!(
        redirect_error(issue_code(&config, &pending, user(), late, &mut rng(1)).map(|_| ())),
        "login_required"
    );
    // max_age: the upstream login is older than allowed.
    let pending = authorize(&config, &mas_query("&max_age=60"), NOW).expect("valid");
    let old = AuthenticatedUser::new(
        Did::parse(ALICE, Mode::Production).expect("did"),
        NOW.saturating_sub(Duration::from_secs(61)),
    );
    assert_eq!(
        redirect_error(issue_code(&config, &pending, old, NOW, &mut rng(1)).map(|_| ())),
        "login_required"
    );
    let recent = AuthenticatedUser::new(
        Did::parse(ALICE, Mode::Production).expect("did"),
        NOW.saturating_sub(Duration::from_secs(60)),
    );
    assert!(issue_code(&config, &pending, recent, NOW, &mut rng(1)).is_ok());
    // prompt=login: a login from before the request does not count.
    let pending = authorize(&config, &mas_query("&prompt=login"), NOW).expect("valid");
    assert_eq!(
        redirect_error(issue_code(&config, &pending, user(), NOW, &mut rng(1)).map(|_| ())),
        "login_required"
    );
    let fresh = AuthenticatedUser::new(Did::parse(ALICE, Mode::Production).expect("did"), NOW);
    assert!(issue_code(&config, &pending, fresh, NOW, &mut rng(1)).is_ok());
}

#[test]
fn login_hints_that_are_no_identifier_are_dropped() {
    let config = config();
    assert_eq!(
        authorize(
            &config,
            &mas_query("&login_hint=did:plc:ewvi7nxzyoun6zhxrhs64oiz"),
            NOW
        )
        .expect("valid")
        .login_hint
        .as_deref(),
        Some(ALICE)
    );
    assert_eq!(
        authorize(&config, &mas_query("&login_hint=alice.test"), NOW)
            .expect("valid")
            .login_hint
            .as_deref(),
        Some("alice.test")
    );
    assert_eq!(
        authorize(&config, &mas_query("&login_hint=%3Cscript%3E"), NOW)
            .expect("valid")
            .login_hint,
        None
    );
}

#[test]
fn more_token_refusals() {
    let config = config();
    let auth = basic("mas", "mas-secret-0123456789");
    // A verifier for a request that had no challenge.
    let legacy = RegisteredClient::new(
        "legacy",
        vec![MAS_REDIRECT.into()],
        ClientAuth::ClientSecretBasic(StoredSecret::Plain(ClientSecret::new("legacy-secret-0123"))),
    )
    .without_required_pkce();
    let config2 = ProviderConfig::new(ISSUER, vec![rs_key()], vec![legacy]).expect("valid");
    let query = format!(
        "response_type=code&client_id=legacy&redirect_uri={}&scope=openid",
        enc(MAS_REDIRECT)
    );
    let (code, grant) = code_for(&config2, &query);
    let outcome = redeem(
        &config2,
        &code_form(&code, MAS_REDIRECT, VERIFIER),
        Some(&basic("legacy", "legacy-secret-0123")),
        Some(grant),
    );
    assert_eq!(
        refused(&outcome),
        (StatusCode::BAD_REQUEST, "invalid_grant".to_owned())
    );
    // Error answers are no-store too.
    assert_eq!(outcome.response.headers()["cache-control"], "no-store");

    // Refresh: expired, and presented by another client.
    let query = mas_query("").replace("scope=openid%20profile", "scope=openid%20offline_access");
    let (code, grant) = code_for(&config, &query);
    let first = redeem(
        &config,
        &code_form(&code, MAS_REDIRECT, VERIFIER),
        Some(&auth),
        Some(grant),
    );
    let refresh_token = body_json(&first.response)["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let (_, refresh_grant) = first.changes.refresh.expect("stored");
    let form = format!("grant_type=refresh_token&refresh_token={refresh_token}");
    let run = |authorization: &str, stored: RefreshGrant, now: UnixTime| {
        let request = parse_token_request(form.as_bytes(), Some(authorization)).expect("parses");
        let client = authenticate_client(&config, &request.auth, NOW, DefaultProvider::get())
            .expect("client");
        refused(&token(
            &config,
            &client,
            &request,
            Stored::Refresh(Some(stored)),
            now,
            &mut rng(9),
        ))
    };
    let expired = refresh_grant.expires_at;
    assert_eq!(
        run(&auth, refresh_grant.clone(), expired).1,
        "invalid_grant"
    );
    assert_eq!(
        run(&basic("synapse", "synapse-secret"), refresh_grant, NOW).1,
        "invalid_grant"
    );
}

#[test]
fn revoking_a_refresh_token_takes_its_family() {
    let config = config();
    let auth = basic("mas", "mas-secret-0123456789");
    let query = mas_query("").replace("scope=openid%20profile", "scope=openid%20offline_access");
    let (code, grant) = code_for(&config, &query);
    let family = grant.family.clone();
    let first = redeem(
        &config,
        &code_form(&code, MAS_REDIRECT, VERIFIER),
        Some(&auth),
        Some(grant),
    );
    let refresh_token = body_json(&first.response)["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let (key, refresh_grant) = first.changes.refresh.expect("stored");
    let request =
        RevocationRequest::parse(format!("token={refresh_token}").as_bytes()).expect("parses");
    let mas = authenticate_client(
        &config,
        &PresentedAuth::Basic {
            client_id: "mas".into(),
            secret: ClientSecret::new("mas-secret-0123456789"),
        },
        NOW,
        DefaultProvider::get(),
    )
    .expect("client");
    let (_, revocation) = revoke(&mas, &request, None, Some(&refresh_grant)).expect("revoked");
    assert_eq!(
        revocation,
        Revocation {
            delete: Some(key),
            revoke_family: Some(family)
        }
    );
}

#[test]
fn more_client_authentication_rules() {
    let config = config();
    let key = jwt_client_key();
    let form = "grant_type=authorization_code&code=c";
    let long_jti = json!({"iss": "jwt", "sub": "jwt", "aud": ISSUER, "jti": "j".repeat(257), "exp": NOW.as_secs() + 60});
    assert!(authenticate(&config, &assertion_form(&assertion(&long_jti, &key)), None).is_err());
    let good =
        json!({"iss": "jwt", "sub": "jwt", "aud": ISSUER, "jti": "j", "exp": NOW.as_secs() + 60});
    let jwt = assertion(&good, &key);
    assert!(
        authenticate(
            &config,
            &format!("{}&client_id=jwt", assertion_form(&jwt)),
            None
        )
        .is_ok()
    );
    assert!(
        authenticate(
            &config,
            &format!("{}&client_id=mas", assertion_form(&jwt)),
            None
        )
        .is_err(),
        "client_id must match the assertion"
    );
    // Basic credentials are form-encoded: '+' is a space, '%26' an ampersand.
    let odd = RegisteredClient::new(
        "odd client",
        vec![MAS_REDIRECT.into()],
        ClientAuth::ClientSecretBasic(StoredSecret::Plain(ClientSecret::new(
            "a&b c+d=e%f-0123456",
        ))),
    );
    let config2 = ProviderConfig::new(ISSUER, vec![rs_key()], vec![odd]).expect("valid");
    assert_eq!(
        authenticate(
            &config2,
            form,
            Some(&basic("odd client", "a&b c+d=e%f-0123456"))
        ),
        Ok(None)
    );
    // Debug of what carries secrets shows none.
    let request = parse_token_request(
        format!(
            "grant_type=authorization_code&code=the-code&code_verifier={VERIFIER}&{}",
            &assertion_form(&jwt)["grant_type=authorization_code&code=c&".len()..]
        )
        .as_bytes(),
        None,
    )
    .expect("parses");
    let debug = format!("{request:?}");
    assert!(
        !debug.contains("the-code") && !debug.contains(VERIFIER) && !debug.contains(&jwt[..20]),
        "{debug}"
    );
    let revocation = RevocationRequest::parse(b"token=the-token").expect("parses");
    assert!(!format!("{revocation:?}").contains("the-token"));
}

#[test]
fn token_outcomes_do_not_show_tokens_in_debug() {
    let config = config();
    let (code, grant) = code_for(&config, &mas_query(""));
    let outcome = redeem(
        &config,
        &code_form(&code, MAS_REDIRECT, VERIFIER),
        Some(&basic("mas", "mas-secret-0123456789")),
        Some(grant),
    );
    let access = body_json(&outcome.response)["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let debug = format!("{outcome:?}");
    assert!(!debug.contains(&access), "{debug}");
}

#[test]
fn discovery_names_signing_algorithms_for_every_jwt_auth_method() {
    let doc = discovery_document(&config());
    for (name, value) in doc.as_object().expect("object") {
        let Some(prefix) = name.strip_suffix("_auth_methods_supported") else {
            continue;
        };
        if value
            .as_array()
            .expect("list")
            .contains(&json!("private_key_jwt"))
        {
            let algs = &doc[format!("{prefix}_auth_signing_alg_values_supported")];
            assert!(
                algs.as_array().is_some_and(|a| !a.is_empty()),
                "{prefix} lists private_key_jwt without its algorithms"
            );
        }
    }
}

#[test]
fn more_configuration_rules() {
    let secret = || {
        ClientAuth::ClientSecretBasic(StoredSecret::Plain(ClientSecret::new(
            "sixteen-chars-at-least",
        )))
    };
    let with_fragment =
        RegisteredClient::new("c", vec!["https://c.example.com/cb#x".into()], secret());
    assert!(ProviderConfig::new(ISSUER, vec![rs_key()], vec![with_fragment]).is_err());
    let short = RegisteredClient::new(
        "c",
        vec!["https://c.example.com/cb".into()],
        ClientAuth::ClientSecretPost(StoredSecret::Plain(ClientSecret::new("short"))),
    );
    assert!(ProviderConfig::new(ISSUER, vec![rs_key()], vec![short]).is_err());
    let elsewhere = RegisteredClient::new("c", vec!["https://c.example.com/cb".into()], secret())
        .with_backchannel_logout_uri(
            url::Url::parse("https://other.example.com/logout").expect("url"),
        );
    assert!(ProviderConfig::new(ISSUER, vec![rs_key()], vec![elsewhere]).is_err());
    for issuer in ["http://localhost:9411/", "http://[::1]:9411/"] {
        assert!(
            ProviderConfig::new(issuer, vec![rs_key()], vec![]).is_ok(),
            "{issuer}"
        );
    }
}

#[test]
fn revocation_client_auth_follows_the_token_endpoint_rules() {
    use base64ct::{Base64, Encoding};
    let basic = format!(
        "Basic {}",
        Base64::encode_string(b"mas:mas-secret-0123456789")
    );
    assert!(matches!(
        parse_client_auth(b"token=t", Some(&basic)),
        Ok(PresentedAuth::Basic { client_id, .. }) if client_id == "mas"
    ));
    assert!(matches!(
        parse_client_auth(b"token=t&client_id=mas&client_secret=s", None),
        Ok(PresentedAuth::Post { client_id, .. }) if client_id == "mas"
    ));
    assert_eq!(
        parse_client_auth(b"token=t&client_id=mas&client_secret=s", Some(&basic))
            .map_err(|e| e.error),
        Err("invalid_request"),
        "two methods at once"
    );
    assert_eq!(
        parse_client_auth(b"token=t", None).map_err(|e| e.error),
        Err("invalid_client")
    );
}
