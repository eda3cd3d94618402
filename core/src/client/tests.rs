//! Flow tests of the client against a scripted PDS, PLC directory and
//! authorization server, asserting the exact requests the machines emit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use super::*;
use crate::dpop::{DpopProofCheck, verify_proof};
use crate::identity::{Did, Mode};
use crate::jose::{
    ClaimsValidation, DefaultProvider, EcPrivateKey, JwkThumbprint, JwsSigningKey, Verifier,
};
use crate::pkce::PkceChallenge;
use crate::time::UnixTime;
use crate::transport::{Action, Fetch, Machine, Response, TransportError, TxtAnswer, TxtLookup};

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
const ALICE: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const BOB: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const PDS: &str = "https://pds.example.com";
const ISSUER: &str = "https://entryway.example.com";
const CLIENT_ID: &str = "https://atlogin.example.com/oauth-client-metadata.json";
const REDIRECT: &str = "https://atlogin.example.com/atproto/callback";

fn url(text: &str) -> Url {
    Url::parse(text).expect("valid url")
}

fn rng(seed: u8) -> chacha20::ChaCha20Rng {
    use rand_core::SeedableRng;
    chacha20::ChaCha20Rng::from_seed([seed; 32])
}

fn client_key(kid: &str, seed: u8) -> JwsSigningKey {
    let key = EcPrivateKey::generate(&mut rng(seed));
    JwsSigningKey::new(DefaultProvider::get().load_es256(&key).expect("loads")).with_kid(kid)
}

fn confidential() -> ClientConfig {
    let keys = vec![client_key("2025-old", 1), client_key("2026-new", 2)];
    ClientConfig::confidential(url(CLIENT_ID), vec![url(REDIRECT)], keys)
        .expect("valid config")
        .with_scope(Scope::parse("atproto account:email").expect("scope"))
        .expect("valid scope")
        .with_client_name("atlogin")
}

fn loopback() -> ClientConfig {
    ClientConfig::loopback(url("http://127.0.0.1:9411/atproto/callback")).expect("valid config")
}

/// One request the machines sent, as the scripted servers saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    url: String,
    headers: http::HeaderMap,
    form: HashMap<String, String>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.form.get(name).map(String::as_str)
    }
}

/// The scripted world: a PLC directory, a PDS and its authorization server.
struct World {
    /// The DID the PDS says each handle has.
    handles: HashMap<String, String>,
    /// The issuer the PDS's protected resource metadata names.
    pds_issuer: String,
    /// How many times PAR and token answer `use_dpop_nonce` first.
    par_challenges: u32,
    token_challenges: u32,
    /// Replaces the token endpoint's success body.
    token_body: Option<Value>,
    /// Whether success answers carry DPoP-Nonce.
    send_nonce: bool,
    nonce_counter: u32,
    seen: Vec<Seen>,
}

impl World {
    fn new() -> Self {
        let mut handles = HashMap::new();
        handles.insert("alice.example.com".to_owned(), ALICE.to_owned());
        Self {
            handles,
            pds_issuer: ISSUER.to_owned(),
            par_challenges: 0,
            token_challenges: 0,
            token_body: None,
            send_nonce: true,
            nonce_counter: 0,
            seen: Vec::new(),
        }
    }

    fn txt(&mut self, lookup: &TxtLookup) -> TxtAnswer {
        self.seen.push(Seen {
            method: Method::from_bytes(b"TXT").expect("method"),
            url: lookup.name.clone(),
            headers: http::HeaderMap::new(),
            form: HashMap::new(),
        });
        let handle = lookup.name.strip_prefix("_atproto.").unwrap_or_default();
        match self.handles.get(handle) {
            Some(did) => TxtAnswer::Records(vec![format!("did={did}")]),
            None => TxtAnswer::NoRecords,
        }
    }

    fn nonce(&mut self) -> String {
        self.nonce_counter += 1;
        format!("nonce-{}", self.nonce_counter)
    }

    #[expect(
        clippy::unnecessary_wraps,
        reason = "answers are fed to the machine as results"
    )]
    fn respond(&mut self, fetch: &Fetch) -> Result<Response, TransportError> {
        let request = &fetch.request;
        let target = url(&request.uri().to_string());
        let form: HashMap<String, String> = url::form_urlencoded::parse(request.body())
            .into_owned()
            .collect();
        self.seen.push(Seen {
            method: request.method().clone(),
            url: target.to_string(),
            headers: request.headers().clone(),
            form,
        });
        let path = target.path().to_owned();
        let host = target.host_str().unwrap_or_default().to_owned();
        match (host.as_str(), path.as_str()) {
            (_, "/.well-known/atproto-did") => Ok(text(404, "")),
            ("plc.directory", did) => {
                let did = did.trim_start_matches('/');
                let handle = self
                    .handles
                    .iter()
                    .find(|(_, d)| *d == did)
                    .map(|(h, _)| format!("at://{h}"));
                Ok(json_answer(
                    200,
                    &json!({
                        "id": did,
                        "alsoKnownAs": handle.into_iter().collect::<Vec<_>>(),
                        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": PDS}],
                    }),
                    None,
                ))
            }
            ("pds.example.com", "/.well-known/oauth-protected-resource") => Ok(json_answer(
                200,
                &json!({"resource": PDS, "authorization_servers": [self.pds_issuer]}),
                None,
            )),
            (_, "/.well-known/oauth-authorization-server") => {
                let issuer = target.origin().ascii_serialization();
                Ok(json_answer(200, &server_metadata(&issuer), None))
            }
            ("entryway.example.com", "/oauth/par") => {
                let nonce = self.nonce();
                if self.par_challenges > 0 {
                    self.par_challenges -= 1;
                    return Ok(json_answer(
                        400,
                        &json!({"error": "use_dpop_nonce"}),
                        Some(&nonce),
                    ));
                }
                let nonce = self.send_nonce.then_some(nonce);
                Ok(json_answer(
                    201,
                    &json!({"request_uri": "urn:ietf:params:oauth:request_uri:req-1", "expires_in": 299}),
                    nonce.as_deref(),
                ))
            }
            ("entryway.example.com", "/oauth/token") => {
                let nonce = self.nonce();
                if self.token_challenges > 0 {
                    self.token_challenges -= 1;
                    return Ok(json_answer(
                        400,
                        &json!({"error": "use_dpop_nonce"}),
                        Some(&nonce),
                    ));
                }
                let body = self.token_body.clone().unwrap_or_else(|| {
                    json!({
                        "access_token": "at-1",
                        "token_type": "DPoP",
                        "expires_in": 3600,
                        "refresh_token": "rt-1",
                        "scope": "atproto",
                        "sub": ALICE,
                    })
                });
                let nonce = self.send_nonce.then_some(nonce);
                Ok(json_answer(200, &body, nonce.as_deref()))
            }
            ("entryway.example.com", "/oauth/revoke") => Ok(text(200, "")),
            _ => Ok(text(404, "not found")),
        }
    }
}

fn text(status: u16, body: &str) -> Response {
    let mut response = http::Response::new(body.as_bytes().to_vec());
    *response.status_mut() = StatusCode::from_u16(status).expect("status");
    response
}

fn json_answer(status: u16, body: &Value, nonce: Option<&str>) -> Response {
    let mut response = text(status, &body.to_string());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(nonce) = nonce {
        response
            .headers_mut()
            .insert("dpop-nonce", HeaderValue::from_str(nonce).expect("nonce"));
    }
    response
}

fn server_metadata(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "pushed_authorization_request_endpoint": format!("{issuer}/oauth/par"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "require_pushed_authorization_requests": true,
        "scopes_supported": ["atproto", "transition:generic"],
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "dpop_signing_alg_values_supported": ["ES256"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
    })
}

/// Drives a machine against the world until it finishes.
fn run<M: Machine>(machine: &mut M, world: &mut World) -> M::Output {
    for _ in 0..100 {
        let mut progressed = false;
        while let Some(action) = machine.poll() {
            progressed = true;
            match action {
                Action::Done(out) => return out,
                Action::Fetch(fetch) => {
                    let answer = world.respond(&fetch);
                    machine.handle_response(fetch.id, answer);
                }
                Action::LookupTxt(lookup) => {
                    let answer = world.txt(&lookup);
                    machine.handle_txt(lookup.id, answer);
                }
            }
        }
        assert!(progressed, "the machine waits for nothing");
    }
    panic!("the machine did not finish");
}

fn start(
    config: &Arc<ClientConfig>,
    typed: &str,
    world: &mut World,
) -> Result<LoginStarted, ClientError> {
    let request = LoginRequest::parse(typed, Mode::Production).expect("valid input");
    let mut machine = StartLogin::new(request, config.clone(), NOW, &mut rng(9)).expect("starts");
    run(&mut machine, world)
}

fn callback_for(pending: &PendingLogin) -> CallbackParams {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", "code-1")
        .append_pair("state", pending.state.secret())
        .append_pair("iss", ISSUER)
        .finish();
    CallbackParams::parse(&query).expect("valid query")
}

fn complete(
    config: &Arc<ClientConfig>,
    pending: PendingLogin,
    world: &mut World,
) -> Result<VerifiedLogin, ClientError> {
    let callback = callback_for(&pending);
    let mut machine = CompleteLogin::new(pending, &callback, config.clone(), NOW, &mut rng(10))?;
    run(&mut machine, world)
}

/// Checks a client assertion as the authorization server would, returning its claims.
fn check_assertion(config: &ClientConfig, assertion: &str) -> serde_json::Map<String, Value> {
    let jwks = config.jwks().expect("confidential");
    let verified = Verifier::new(DefaultProvider::get())
        .verify(assertion, &jwks)
        .expect("assertion verifies");
    assert_eq!(
        verified.header().kid.as_deref(),
        Some("2026-new"),
        "new sessions use the newest key"
    );
    let validation = ClaimsValidation::new(NOW, Duration::ZERO)
        .with_issuer(CLIENT_ID)
        .with_audience(ISSUER)
        .with_required_iat();
    let registered = verified.validate(&validation).expect("claims valid");
    assert_eq!(registered.sub.as_deref(), Some(CLIENT_ID));
    assert_eq!(registered.iat, Some(NOW));
    assert_eq!(
        registered.exp,
        Some(NOW.saturating_add(Duration::from_secs(60)))
    );
    verified.claims().clone()
}

/// Checks a DPoP proof as the server would, returning its key thumbprint.
fn check_proof(seen: &Seen, nonce: Option<&str>) -> JwkThumbprint {
    let proof = seen.headers["dpop"].to_str().expect("ascii");
    let target = url(&seen.url);
    let mut check = DpopProofCheck::new(&seen.method, &target, NOW, Duration::from_secs(60));
    if let Some(nonce) = nonce {
        check = check.with_nonce(nonce);
    }
    let claims = crate::jose::UnverifiedJws::parse(proof, 8192).expect("parses");
    let verified = verify_proof(proof, &check, DefaultProvider::get()).unwrap_or_else(|e| {
        let payload = proof.split('.').nth(1).expect("payload");
        let claims =
            String::from_utf8(crate::base64url::decode(payload).expect("b64")).expect("utf8");
        panic!(
            "proof for {} {} does not verify: {e:?}; {claims}",
            seen.method, seen.url
        )
    });
    let jwk = claims.header().jwk().expect("jwk").expect("has jwk");
    let body = claims
        .verify(DefaultProvider::get(), &jwk)
        .expect("verifies");
    assert_eq!(
        body.claims().get("nonce").and_then(Value::as_str),
        nonce,
        "proof nonce"
    );
    verified.jkt
}

#[test]
fn a_whole_login_from_a_handle() {
    let config = Arc::new(confidential());
    let mut world = World::new();
    world.par_challenges = 1;
    world.token_challenges = 1;

    let started = start(&config, "  Alice.Example.com ", &mut world).expect("login starts");
    let paths: Vec<String> = world
        .seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.url))
        .collect();
    assert_eq!(
        paths,
        [
            // DNS answered first, so the well-known fetch, not yet sent, was dropped.
            "TXT _atproto.alice.example.com",
            format!("GET https://plc.directory/{ALICE}").as_str(),
            "GET https://pds.example.com/.well-known/oauth-protected-resource",
            "GET https://entryway.example.com/.well-known/oauth-authorization-server",
            "POST https://entryway.example.com/oauth/par",
            "POST https://entryway.example.com/oauth/par",
        ]
    );

    // The browser gets client_id and request_uri only.
    let redirect = &started.redirect_url;
    assert_eq!(
        redirect.as_str().split('?').next(),
        Some("https://entryway.example.com/oauth/authorize")
    );
    let query: Vec<(String, String)> = redirect.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        [
            ("client_id".to_owned(), CLIENT_ID.to_owned()),
            (
                "request_uri".to_owned(),
                "urn:ietf:params:oauth:request_uri:req-1".to_owned()
            ),
        ]
    );

    // The pushed request, as the server received it the second time.
    let pending = started.pending.clone();
    let first = world.seen[4].clone();
    let par = world.seen[5].clone();
    assert_eq!(
        par.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(par.field("response_type"), Some("code"));
    assert_eq!(par.field("code_challenge_method"), Some("S256"));
    let challenge = PkceChallenge::parse(par.field("code_challenge").expect("challenge"))
        .expect("S256 challenge");
    assert_eq!(challenge.verify(&pending.pkce_verifier), Ok(()));
    assert_eq!(par.field("state"), Some(pending.state.secret()));
    assert_eq!(par.field("redirect_uri"), Some(REDIRECT));
    assert_eq!(par.field("scope"), Some("atproto"));
    assert_eq!(par.field("login_hint"), Some("Alice.Example.com"));
    assert_eq!(par.field("client_id"), Some(CLIENT_ID));
    assert_eq!(
        par.field("client_assertion_type"),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert_eq!(par.field("client_secret"), None);
    let mut fields: Vec<&str> = par.form.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "client_assertion",
            "client_assertion_type",
            "client_id",
            "code_challenge",
            "code_challenge_method",
            "login_hint",
            "redirect_uri",
            "response_type",
            "scope",
            "state",
        ]
    );
    let a1 = check_assertion(&config, first.field("client_assertion").expect("assertion"));
    let a2 = check_assertion(&config, par.field("client_assertion").expect("assertion"));
    assert_ne!(a1["jti"], a2["jti"], "every assertion has its own jti");
    // DPoP: no nonce at first, the server's nonce on the retry, one key per login.
    let jkt = check_proof(&first, None);
    assert_eq!(check_proof(&par, Some("nonce-1")), jkt);
    assert_ne!(
        jkt,
        config.current_key().expect("key").public_jwk().thumbprint(),
        "the DPoP key is not the client key"
    );
    assert_eq!(pending.expected_did.as_ref().map(Did::as_str), Some(ALICE));
    assert_eq!(
        pending.expires_at,
        NOW.saturating_add(DEFAULT_LOGIN_LIFETIME)
    );

    // The callback.
    world.seen.clear();
    let verified = complete(&config, pending.clone(), &mut world).expect("login completes");
    assert_eq!(verified.did.as_str(), ALICE);
    assert_eq!(
        verified.handle.as_ref().map(ToString::to_string).as_deref(),
        Some("alice.example.com")
    );
    assert_eq!(verified.pds, url(PDS));
    assert_eq!(verified.issuer, ISSUER);
    assert_eq!(verified.scope.to_string(), "atproto");
    assert_eq!(verified.tokens.access_token.secret(), "at-1");
    assert_eq!(
        verified.tokens.expires_at,
        Some(NOW.saturating_add(Duration::from_secs(3600)))
    );

    let paths: Vec<String> = world
        .seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.url))
        .collect();
    assert_eq!(
        paths,
        [
            "POST https://entryway.example.com/oauth/token",
            "POST https://entryway.example.com/oauth/token",
            format!("GET https://plc.directory/{ALICE}").as_str(),
            "TXT _atproto.alice.example.com",
            "GET https://pds.example.com/.well-known/oauth-protected-resource",
            "GET https://entryway.example.com/.well-known/oauth-authorization-server",
        ]
    );
    let token = &world.seen[1];
    assert_eq!(token.field("grant_type"), Some("authorization_code"));
    assert_eq!(token.field("code"), Some("code-1"));
    assert_eq!(token.field("redirect_uri"), Some(REDIRECT));
    assert_eq!(
        token.field("code_verifier"),
        Some(pending.pkce_verifier.secret())
    );
    assert_eq!(token.field("client_id"), Some(CLIENT_ID));
    check_assertion(&config, token.field("client_assertion").expect("assertion"));
    // The nonce learned at PAR goes with the first token request; the new one with the retry.
    assert_eq!(check_proof(&world.seen[0], Some("nonce-2")), jkt);
    assert_eq!(check_proof(token, Some("nonce-3")), jkt);
}

#[test]
fn the_loopback_client() {
    let config = Arc::new(loopback());
    assert!(config.is_loopback());
    assert_eq!(
        config.client_id(),
        "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%3A9411%2Fatproto%2Fcallback&scope=atproto"
    );
    assert!(config.metadata_document().is_none());
    assert!(config.jwks().is_none());
    let mut world = World::new();
    let started = start(&config, ALICE, &mut world).expect("login starts");
    let par = world.seen.last().expect("par").clone();
    assert_eq!(par.field("client_id"), Some(config.client_id()));
    assert_eq!(par.field("client_assertion"), None);
    assert_eq!(par.field("client_assertion_type"), None);
    assert_eq!(
        par.field("redirect_uri"),
        Some("http://127.0.0.1:9411/atproto/callback")
    );
    assert_eq!(par.field("login_hint"), Some(ALICE));
    let client_id = started
        .redirect_url
        .query_pairs()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.into_owned());
    assert_eq!(client_id.as_deref(), Some(config.client_id()));
    let verified = complete(&config, started.pending, &mut world).expect("login completes");
    assert_eq!(verified.did.as_str(), ALICE);
    assert!(
        world
            .seen
            .iter()
            .all(|s| s.field("client_assertion").is_none())
    );
}

#[test]
fn a_fresh_sign_in_is_asked_of_the_server_with_prompt_login() {
    let config = Arc::new(confidential());
    let mut world = World::new();
    let request = LoginRequest::parse(ALICE, Mode::Production)
        .expect("valid input")
        .with_fresh_sign_in();
    let mut machine = StartLogin::new(request, config.clone(), NOW, &mut rng(9)).expect("starts");
    run(&mut machine, &mut world).expect("login starts");
    assert_eq!(
        world.seen.last().expect("par").field("prompt"),
        Some("login")
    );
    start(&config, ALICE, &mut world).expect("login starts");
    assert_eq!(
        world.seen.last().expect("par").field("prompt"),
        None,
        "not by default"
    );
}

#[test]
fn a_login_from_a_typed_server_url_still_proves_the_issuer() {
    let config = Arc::new(confidential());
    let mut world = World::new();
    let started = start(&config, "https://pds.example.com", &mut world).expect("starts");
    assert_eq!(started.pending.expected_did, None);
    assert_eq!(started.pending.login_hint, None);
    assert_eq!(world.seen.last().expect("par").field("login_hint"), None);
    world.seen.clear();
    let verified = complete(&config, started.pending, &mut world).expect("completes");
    assert_eq!(verified.did.as_str(), ALICE);
    assert!(
        world
            .seen
            .iter()
            .any(|s| s.url == format!("https://plc.directory/{ALICE}")),
        "sub is re-resolved"
    );

    // The same login where the account's PDS names another issuer fails the proof.
    let mut world = World::new();
    let started = start(&config, "https://pds.example.com", &mut world).expect("starts");
    world.pds_issuer = "https://other.example.com".to_owned();
    let err = complete(&config, started.pending, &mut world).expect_err("proof fails");
    assert_eq!(
        err.to_string(),
        format!(
            "{ALICE} is served by the authorization server https://other.example.com, not by {ISSUER}, which issued the tokens"
        )
    );
}

#[test]
fn callback_rules() {
    let config = Arc::new(confidential());
    let mut world = World::new();
    let pending = start(&config, "alice.example.com", &mut world)
        .expect("starts")
        .pending;
    let state = pending.state.secret().to_owned();
    let attempt = |query: String, now: UnixTime| {
        let callback = CallbackParams::parse(&query)?;
        CompleteLogin::new(pending.clone(), &callback, config.clone(), now, &mut rng(3)).map(|_| ())
    };
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let iss = enc(ISSUER);
    assert_eq!(
        attempt(format!("code=c&state={state}&iss={iss}"), NOW),
        Ok(())
    );
    assert_eq!(
        attempt(format!("code=c&state=other&iss={iss}"), NOW),
        Err(ClientError::StateMismatch)
    );
    assert_eq!(
        attempt(format!("code=c&iss={iss}"), NOW),
        Err(ClientError::InvalidCallback("state is missing"))
    );
    assert_eq!(
        attempt(format!("code=c&state={state}"), NOW),
        Err(ClientError::IssuerMismatch {
            expected: ISSUER.into(),
            found: "no issuer".into()
        })
    );
    assert_eq!(
        attempt(
            format!(
                "code=c&state={state}&iss={}",
                enc("https://evil.example.com")
            ),
            NOW
        ),
        Err(ClientError::IssuerMismatch {
            expected: ISSUER.into(),
            found: "https://evil.example.com".into()
        })
    );
    assert_eq!(
        attempt(
            format!("error=access_denied&error_description=User+declined&state={state}&iss={iss}"),
            NOW
        ),
        Err(ClientError::AuthorizationDenied {
            error: "access_denied".into(),
            description: Some("User declined".into())
        })
    );
    // An error from a server that is not the login's is not believed.
    assert!(matches!(
        attempt(
            format!(
                "error=access_denied&state={state}&iss={}",
                enc("https://evil.example.com")
            ),
            NOW
        ),
        Err(ClientError::IssuerMismatch { .. })
    ));
    assert_eq!(
        attempt(format!("state={state}&iss={iss}"), NOW),
        Err(ClientError::InvalidCallback("code is missing"))
    );
    assert_eq!(
        attempt(format!("code=c&code=d&state={state}&iss={iss}"), NOW),
        Err(ClientError::InvalidCallback("code appears twice"))
    );
    assert_eq!(
        attempt(format!("code=c&state={state}&state={state}&iss={iss}"), NOW),
        Err(ClientError::InvalidCallback("a parameter appears twice"))
    );
    let expired = pending.expires_at;
    assert_eq!(
        attempt(format!("code=c&state={state}&iss={iss}"), expired),
        Err(ClientError::Expired)
    );
    let long = format!(
        "code={}&state={state}&iss={iss}",
        "x".repeat(MAX_CALLBACK_QUERY_LEN)
    );
    assert_eq!(
        attempt(long, NOW),
        Err(ClientError::InvalidCallback("the query is too long"))
    );
}

/// Runs a login to the point of the token response, with a replaced token body.
fn complete_with(
    token_body: Option<Value>,
    adjust: impl FnOnce(&mut World),
) -> Result<VerifiedLogin, ClientError> {
    let config = Arc::new(confidential());
    let mut world = World::new();
    let pending = start(&config, "alice.example.com", &mut world)
        .expect("starts")
        .pending;
    world.token_body = token_body;
    adjust(&mut world);
    complete(&config, pending, &mut world)
}

fn token(overrides: &Value) -> Value {
    let mut body =
        json!({"access_token": "at", "token_type": "DPoP", "scope": "atproto", "sub": ALICE});
    for (name, value) in overrides.as_object().expect("object") {
        if value.is_null() {
            body.as_object_mut().expect("object").remove(name);
        } else {
            body[name] = value.clone();
        }
    }
    body
}

#[test]
fn token_response_rules() {
    let invalid = |problem: &str| {
        Err::<(), _>(ClientError::InvalidResponse {
            endpoint: "token",
            problem: problem.into(),
        })
    };
    let check = |overrides: Value| complete_with(Some(token(&overrides)), |_| {}).map(|_| ());
    assert_eq!(check(json!({})), Ok(()));
    assert_eq!(check(json!({"token_type": "dpop"})), Ok(()));
    assert_eq!(
        check(json!({"token_type": "Bearer"})),
        invalid("token_type is Bearer, not DPoP")
    );
    assert_eq!(
        check(json!({"scope": "transition:generic"})),
        invalid("the granted scope transition:generic lacks atproto")
    );
    assert_eq!(
        check(json!({"scope": null})),
        invalid("scope is missing or not a string")
    );
    assert_eq!(
        check(json!({"sub": "alice.example.com"})),
        invalid("sub is not a usable DID (not a valid DID: does not start with did:)")
    );
    assert_eq!(
        check(json!({"sub": null})),
        invalid("sub is missing or not a string")
    );
    assert_eq!(
        check(json!({"access_token": 7})),
        invalid("access_token is missing or not a string")
    );
    assert_eq!(
        check(json!({"expires_in": -5})),
        invalid("expires_in is not a positive integer")
    );
    assert_eq!(
        check(json!({"sub": BOB})),
        Err(ClientError::SubjectMismatch {
            expected: ALICE.into(),
            found: BOB.into()
        })
    );
}

#[test]
fn token_endpoint_failures() {
    assert_eq!(
        complete_with(None, |w| w.send_nonce = false).map(|_| ()),
        Err(ClientError::MissingDpopNonce { endpoint: "token" })
    );
    let config = Arc::new(confidential());
    let mut world = World::new();
    let pending = start(&config, "alice.example.com", &mut world)
        .expect("starts")
        .pending;
    world.seen.clear();
    world.token_challenges = 2;
    let refused = complete(&config, pending.clone(), &mut world).map(|_| ());
    assert!(
        matches!(refused, Err(ClientError::ServerRefused { endpoint: "token", ref error, .. }) if error == "use_dpop_nonce")
    );
    assert_eq!(world.seen.len(), 2, "one retry only");

    let mut world = World::new();
    world.token_body =
        Some(json!({"error": "invalid_grant", "error_description": "code already used"}));
    // A token error is a 400 with an OAuth error body.
    let err = {
        let answer = json_answer(
            400,
            &json!({"error": "invalid_grant", "error_description": "code already used"}),
            Some("n"),
        );
        let callback = callback_for(&pending);
        let mut machine =
            CompleteLogin::new(pending.clone(), &callback, config.clone(), NOW, &mut rng(8))
                .expect("starts");
        let Some(Action::Fetch(fetch)) = machine.poll() else {
            panic!("expected the token request")
        };
        machine.handle_response(fetch.id, Ok(answer));
        match machine.poll() {
            Some(Action::Done(result)) => result.map(|_| ()),
            other => panic!("expected the result, got {other:?}"),
        }
    };
    assert_eq!(
        err.expect_err("refused").to_string(),
        "the authorization server refused the token request: invalid_grant (code already used)"
    );

    for (answer, expected) in [
        (
            Err(TransportError::BodyTooLarge(65536)),
            "could not reach https://entryway.example.com/oauth/token: the response was larger than 65536 bytes",
        ),
        (
            Ok(json_answer(200, &json!([1]), Some("n"))),
            "the authorization server's token answer is unusable: it is not a JSON object",
        ),
        (
            Ok(text(200, "{}")),
            "the authorization server's token answer has no DPoP-Nonce header",
        ),
        (
            Ok(text(502, "<html>")),
            "https://entryway.example.com/oauth/token answered HTTP 502",
        ),
    ] {
        let callback = callback_for(&pending);
        let mut machine =
            CompleteLogin::new(pending.clone(), &callback, config.clone(), NOW, &mut rng(8))
                .expect("starts");
        let Some(Action::Fetch(fetch)) = machine.poll() else {
            panic!("expected the token request")
        };
        machine.handle_response(fetch.id, answer);
        let Some(Action::Done(result)) = machine.poll() else {
            panic!("expected the result")
        };
        assert_eq!(result.map(|_| ()).expect_err("fails").to_string(), expected);
    }
    drop(world);
}

#[test]
fn par_failures() {
    let config = Arc::new(confidential());
    let mut world = World::new();
    world.send_nonce = false;
    assert_eq!(
        start(&config, "alice.example.com", &mut world).map(|_| ()),
        Err(ClientError::MissingDpopNonce {
            endpoint: "pushed authorization request"
        })
    );
    let mut world = World::new();
    world.par_challenges = 2;
    assert!(matches!(
        start(&config, "alice.example.com", &mut world),
        Err(ClientError::ServerRefused {
            endpoint: "pushed authorization request",
            ..
        })
    ));
    let mut world = World::new();
    world.handles.clear();
    assert!(matches!(
        start(&config, "alice.example.com", &mut world),
        Err(ClientError::Identity(_))
    ));
}

#[test]
fn scopes_beyond_the_configuration_are_refused() {
    let config = Arc::new(confidential());
    let email = Scope::parse("atproto account:email").expect("scope");
    let request = LoginRequest::parse("alice.example.com", Mode::Production)
        .expect("valid")
        .with_scope(email)
        .expect("has atproto");
    let mut world = World::new();
    let mut machine = StartLogin::new(request, config.clone(), NOW, &mut rng(4)).expect("allowed");
    run(&mut machine, &mut world).expect("starts");
    assert_eq!(
        world.seen.last().expect("par").field("scope"),
        Some("atproto account:email")
    );

    let generic = Scope::parse("atproto transition:generic").expect("scope");
    let request = LoginRequest::parse("alice.example.com", Mode::Production)
        .expect("valid")
        .with_scope(generic)
        .expect("has atproto");
    assert_eq!(
        StartLogin::new(request, config, NOW, &mut rng(4)).map(|_| ()),
        Err(ClientError::ScopeNotAllowed(
            "atproto transition:generic".into()
        ))
    );
    let no_atproto = Scope::parse("account:email").expect("scope");
    assert!(
        LoginRequest::parse("alice.example.com", Mode::Production)
            .expect("valid")
            .with_scope(no_atproto)
            .is_err()
    );
}

#[test]
fn pending_logins_survive_storage() {
    let config = Arc::new(confidential());
    let mut world = World::new();
    let pending = start(&config, "alice.example.com", &mut world)
        .expect("starts")
        .pending;
    let stored = serde_json::to_string(&pending).expect("serializes");
    let restored: PendingLogin = serde_json::from_str(&stored).expect("deserializes");
    assert_eq!(restored, pending);
    // Debug output shows no secret.
    let debug = format!("{pending:?}");
    assert!(!debug.contains(pending.state.secret()));
    assert!(!debug.contains(pending.pkce_verifier.secret()));
    assert!(!debug.contains(&crate::base64url::encode(
        &pending.session.dpop_key.scalar()
    )));
}

#[test]
fn login_input_parsing() {
    assert!(matches!(
        LoginRequest::parse(" HTTPS://bsky.social ", Mode::Production).map(|r| r.input().clone()),
        Ok(LoginInput::Service(_))
    ));
    assert!(matches!(
        LoginRequest::parse("@alice.bsky.social", Mode::Production).map(|r| r.input().clone()),
        Ok(LoginInput::Identifier(_))
    ));
    assert_eq!(
        LoginRequest::parse("https://", Mode::Production).map(|_| ()),
        Err(LoginInputError::Url)
    );
    assert!(LoginRequest::parse("alice", Mode::Production).is_err());
}

#[test]
fn refresh_uses_the_same_keys_and_checks_the_subject() {
    let config = Arc::new(confidential());
    let mut world = World::new();
    let pending = start(&config, "alice.example.com", &mut world)
        .expect("starts")
        .pending;
    let verified = complete(&config, pending, &mut world).expect("completes");
    let jkt = check_proof(
        world
            .seen
            .iter()
            .rev()
            .find(|s| s.url.ends_with("/oauth/token"))
            .expect("token"),
        Some("nonce-1"),
    );
    world.seen.clear();
    world.token_body = Some(token(
        &json!({"access_token": "at-2", "refresh_token": "rt-2"}),
    ));
    let mut refresh = Refresh::new(
        verified.session.clone(),
        verified.tokens.clone(),
        config.clone(),
        NOW,
        &mut rng(5),
    )
    .expect("starts");
    let refreshed = run(&mut refresh, &mut world).expect("refreshes");
    assert_eq!(refreshed.tokens.access_token.secret(), "at-2");
    let seen = &world.seen[0];
    assert_eq!(seen.field("grant_type"), Some("refresh_token"));
    assert_eq!(seen.field("refresh_token"), Some("rt-1"));
    let claims = check_assertion(&config, seen.field("client_assertion").expect("assertion"));
    assert_eq!(claims["aud"], ISSUER);
    assert_eq!(
        check_proof(seen, Some("nonce-2")),
        jkt,
        "the same DPoP key, with the token answer's nonce"
    );

    world.token_body = Some(token(&json!({"sub": BOB})));
    let mut refresh = Refresh::new(
        verified.session.clone(),
        verified.tokens.clone(),
        config.clone(),
        NOW,
        &mut rng(5),
    )
    .expect("starts");
    assert!(matches!(
        run(&mut refresh, &mut world),
        Err(ClientError::SubjectMismatch { .. })
    ));

    let mut no_refresh = verified.tokens.clone();
    no_refresh.refresh_token = None;
    assert!(
        Refresh::new(
            verified.session.clone(),
            no_refresh,
            config.clone(),
            NOW,
            &mut rng(5)
        )
        .is_err()
    );

    // A session whose client key was dropped from the configuration cannot refresh.
    let rotated = Arc::new(
        ClientConfig::confidential(
            url(CLIENT_ID),
            vec![url(REDIRECT)],
            vec![client_key("2027", 3)],
        )
        .expect("valid"),
    );
    assert_eq!(
        Refresh::new(verified.session, verified.tokens, rotated, NOW, &mut rng(5)).map(|_| ()),
        Err(ClientError::KeyRetired("2026-new".into()))
    );
}

#[test]
fn revocation() {
    let config = Arc::new(confidential());
    let mut world = World::new();
    let pending = start(&config, "alice.example.com", &mut world)
        .expect("starts")
        .pending;
    let verified = complete(&config, pending, &mut world).expect("completes");
    world.seen.clear();
    let refresh = verified
        .tokens
        .refresh_token
        .clone()
        .expect("refresh token");
    let mut revoke = Revoke::new(
        verified.session.clone(),
        RevokeToken::Refresh(refresh),
        config.clone(),
        NOW,
        &mut rng(6),
    )
    .expect("starts");
    assert_eq!(run(&mut revoke, &mut world), Ok(()));
    let seen = &world.seen[0];
    assert_eq!(seen.url, "https://entryway.example.com/oauth/revoke");
    assert_eq!(seen.field("token"), Some("rt-1"));
    assert_eq!(seen.field("token_type_hint"), Some("refresh_token"));
    check_assertion(&config, seen.field("client_assertion").expect("assertion"));

    let mut session = verified.session;
    session.revocation_endpoint = None;
    let access = RevokeToken::Access(verified.tokens.access_token);
    assert!(Revoke::new(session, access, config, NOW, &mut rng(6)).is_err());
}

#[test]
fn metadata_document_meets_the_client_rules() {
    let config = confidential()
        .with_client_uri(url("https://atlogin.example.com/"))
        .expect("same host")
        .with_policy_uris(
            Some(url("https://atlogin.example.com/logo.png")),
            None,
            Some(url("https://atlogin.example.com/privacy")),
        )
        .expect("https");
    let doc = config.metadata_document().expect("confidential");
    assert_eq!(doc["client_id"], CLIENT_ID);
    assert_eq!(doc["application_type"], "web");
    assert_eq!(
        doc["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(doc["response_types"], json!(["code"]));
    assert_eq!(doc["redirect_uris"], json!([REDIRECT]));
    assert_eq!(doc["scope"], "atproto account:email");
    assert_eq!(doc["dpop_bound_access_tokens"], true);
    assert_eq!(doc["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(doc["token_endpoint_auth_signing_alg"], "ES256");
    assert_eq!(doc["client_name"], "atlogin");
    assert_eq!(doc["client_uri"], "https://atlogin.example.com/");
    assert_eq!(doc["logo_uri"], "https://atlogin.example.com/logo.png");
    assert_eq!(doc["policy_uri"], "https://atlogin.example.com/privacy");
    assert!(doc.get("tos_uri").is_none());
    assert!(doc.get("jwks_uri").is_none());
    let keys = doc["jwks"]["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    for key in keys {
        assert!(key.get("d").is_none(), "only public keys are published");
        assert_eq!(key["alg"], "ES256");
        assert!(key["kid"].is_string());
    }
    let parsed = crate::jose::JwkSet::from_json(doc["jwks"].to_string().as_bytes())
        .expect("a valid JWK Set");
    assert_eq!(Some(parsed), config.jwks());

    let with_uri = confidential()
        .with_jwks_uri(url("https://atlogin.example.com/jwks.json"))
        .expect("https");
    let doc = with_uri.metadata_document().expect("confidential");
    assert_eq!(doc["jwks_uri"], "https://atlogin.example.com/jwks.json");
    assert!(
        doc.get("jwks").is_none(),
        "exactly one of jwks and jwks_uri"
    );
}

#[test]
fn configuration_rules() {
    let keys = || vec![client_key("k", 1)];
    let confidential = |client_id: &str, redirect: &str, keys: Vec<JwsSigningKey>| {
        ClientConfig::confidential(url(client_id), vec![url(redirect)], keys).map(|_| ())
    };
    assert_eq!(confidential(CLIENT_ID, REDIRECT, keys()), Ok(()));
    for (client_id, reason) in [
        (
            "http://atlogin.example.com/client.json",
            "it must be an https URL",
        ),
        (
            "https://atlogin.example.com:8443/client.json",
            "it must not carry a port number",
        ),
        (
            "https://127.0.0.1/client.json",
            "its host must be a DNS name, not an IP address",
        ),
        (
            "https://atlogin.example.com/client.json#x",
            "it must not carry user info or a fragment",
        ),
    ] {
        assert_eq!(
            confidential(client_id, REDIRECT, keys()),
            Err(ClientConfigError::ClientId {
                url: url(client_id).to_string(),
                reason
            }),
        );
    }
    assert!(matches!(
        confidential(CLIENT_ID, "http://atlogin.example.com/cb", keys()),
        Err(ClientConfigError::RedirectUri { .. })
    ));
    assert_eq!(
        confidential(CLIENT_ID, REDIRECT, vec![]),
        Err(ClientConfigError::Keys(
            "a confidential client needs at least one key"
        ))
    );
    let no_kid = JwsSigningKey::new(
        DefaultProvider::get()
            .load_es256(&EcPrivateKey::generate(&mut rng(1)))
            .expect("loads"),
    );
    assert_eq!(
        confidential(CLIENT_ID, REDIRECT, vec![no_kid]),
        Err(ClientConfigError::Keys("every client key needs a kid"))
    );
    assert_eq!(
        confidential(
            CLIENT_ID,
            REDIRECT,
            vec![client_key("k", 1), client_key("k", 2)]
        ),
        Err(ClientConfigError::Keys("two client keys share a kid"))
    );
    assert!(ClientConfig::confidential(url(CLIENT_ID), vec![], keys()).is_err());

    let config =
        ClientConfig::confidential(url(CLIENT_ID), vec![url(REDIRECT)], keys()).expect("valid");
    assert!(
        config
            .clone()
            .with_client_uri(url("https://other.example.com/"))
            .is_err()
    );
    assert!(
        config
            .clone()
            .with_policy_uris(None, Some(url("http://atlogin.example.com/tos")), None)
            .is_err()
    );
    assert!(
        config
            .clone()
            .with_jwks_uri(url("http://atlogin.example.com/jwks"))
            .is_err()
    );
    assert_eq!(
        config
            .clone()
            .with_scope(Scope::parse("transition:generic").expect("scope"))
            .map(|_| ()),
        Err(ClientConfigError::Scope(
            "the client scope must include atproto"
        ))
    );

    for redirect in [
        "http://localhost:9411/cb",
        "https://127.0.0.1:9411/cb",
        "http://10.0.0.1/cb",
    ] {
        assert!(ClientConfig::loopback(url(redirect)).is_err(), "{redirect}");
    }
    let v6 = ClientConfig::loopback(url("http://[::1]:9411/cb")).expect("valid");
    assert_eq!(
        v6.clone()
            .with_jwks_uri(url("https://x.example.com/jwks"))
            .map(|_| ()),
        Err(ClientConfigError::Loopback("keys"))
    );
    assert_eq!(
        v6.clone()
            .with_client_uri(url("https://x.example.com/"))
            .map(|_| ()),
        Err(ClientConfigError::Loopback("client_uri"))
    );
    assert!(
        v6.clone()
            .with_policy_uris(None, None, Some(url("https://x.example.com/p")))
            .is_err()
    );
    assert_eq!(
        v6.client_id(),
        "http://localhost?redirect_uri=http%3A%2F%2F%5B%3A%3A1%5D%3A9411%2Fcb&scope=atproto"
    );

    assert!(Scope::parse("atproto  x").is_err());
    assert!(Scope::parse("atproto \"x\"").is_err());
    assert_eq!(
        Scope::parse("atproto atproto").expect("scope").to_string(),
        "atproto"
    );
}

#[test]
fn key_rotation_picks_the_newest_and_keeps_the_old() {
    let config = confidential();
    assert_eq!(
        config.current_key().and_then(JwsSigningKey::kid),
        Some("2026-new")
    );
    assert!(config.key("2025-old").is_some());
    assert!(config.key("gone").is_none());
    assert_eq!(config.jwks().expect("confidential").keys().len(), 2);
}

#[test]
fn profile_and_email() {
    let did = Did::parse(ALICE, Mode::Production).expect("valid");
    let mut profile = FetchProfile::new(&did, &url(PDS));
    let Some(Action::Fetch(fetch)) = profile.poll() else {
        panic!("expected a fetch")
    };
    assert_eq!(
        fetch.request.uri().to_string(),
        format!(
            "https://pds.example.com/xrpc/com.atproto.repo.getRecord?repo={}&collection=app.bsky.actor.profile&rkey=self",
            ALICE.replace(':', "%3A")
        )
    );
    assert!(fetch.request.headers().get("authorization").is_none());
    let record = json!({"uri": "at://x", "cid": "bafyrei", "value": {
        "$type": "app.bsky.actor.profile",
        "displayName": "  Alice  ",
        "avatar": {"$type": "blob", "ref": {"$link": "bafkreiabc234"}, "mimeType": "image/jpeg", "size": 1000},
    }});
    profile.handle_response(fetch.id, Ok(json_answer(200, &record, None)));
    let Some(Action::Done(Ok(found))) = profile.poll() else {
        panic!("expected the profile")
    };
    assert_eq!(found.display_name.as_deref(), Some("Alice"));
    assert_eq!(
        found.avatar.map(String::from).as_deref(),
        Some(
            format!(
                "https://pds.example.com/xrpc/com.atproto.sync.getBlob?did={}&cid=bafkreiabc234",
                ALICE.replace(':', "%3A")
            )
            .as_str()
        )
    );

    let mut missing = FetchProfile::new(&did, &url(PDS));
    let Some(Action::Fetch(fetch)) = missing.poll() else {
        panic!("expected a fetch")
    };
    missing.handle_response(
        fetch.id,
        Ok(json_answer(400, &json!({"error": "RecordNotFound"}), None)),
    );
    assert!(matches!(missing.poll(), Some(Action::Done(Ok(p))) if p == Profile::default()));

    // getSession with the DPoP-bound token.
    let config = Arc::new(confidential());
    let mut world = World::new();
    let pending = start(&config, "alice.example.com", &mut world)
        .expect("starts")
        .pending;
    let verified = complete(&config, pending, &mut world).expect("completes");
    let mut email = FetchEmail::new(
        verified.session.clone(),
        verified.tokens.access_token.clone(),
        &did,
        &url(PDS),
        config.clone(),
        NOW,
        &mut rng(7),
    )
    .expect("starts");
    let Some(Action::Fetch(first)) = email.poll() else {
        panic!("expected a fetch")
    };
    assert_eq!(
        first.request.uri().to_string(),
        "https://pds.example.com/xrpc/com.atproto.server.getSession"
    );
    assert_eq!(first.request.headers()["authorization"], "DPoP at-1");
    let challenge = {
        let mut r = text(401, "");
        r.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static(r#"DPoP error="use_dpop_nonce""#),
        );
        r.headers_mut()
            .insert("dpop-nonce", HeaderValue::from_static("pds-nonce"));
        r
    };
    email.handle_response(first.id, Ok(challenge));
    let Some(Action::Fetch(second)) = email.poll() else {
        panic!("expected the retry")
    };
    let proof = second.request.headers()["dpop"].to_str().expect("ascii");
    let target = url("https://pds.example.com/xrpc/com.atproto.server.getSession");
    let token = verified.tokens.access_token.clone();
    let check = DpopProofCheck::new(&Method::GET, &target, NOW, Duration::from_secs(60))
        .with_nonce("pds-nonce")
        .with_access_token(&token);
    assert!(
        verify_proof(proof, &check, DefaultProvider::get()).is_ok(),
        "the retry carries the PDS nonce and ath"
    );
    email.handle_response(second.id, Ok(json_answer(200, &json!({"did": ALICE, "handle": "alice.example.com", "email": "alice@example.com", "emailConfirmed": true}), None)));
    let Some(Action::Done(Ok(found))) = email.poll() else {
        panic!("expected the email")
    };
    assert_eq!(found.email.as_deref(), Some("alice@example.com"));
    assert!(found.confirmed);
    assert_eq!(
        found.session.dpop_nonces.nonce_for(&url(PDS)),
        Some("pds-nonce"),
        "the PDS nonce is kept for the next request"
    );
}

#[test]
fn a_key_replaced_under_the_same_kid_is_not_the_sessions_key() {
    let config = Arc::new(confidential());
    let mut world = World::new();
    let pending = start(&config, "alice.example.com", &mut world)
        .expect("starts")
        .pending;
    let verified = complete(&config, pending, &mut world).expect("completes");
    // The operator swapped the material of "2026-new" but kept its kid.
    let swapped = Arc::new(
        ClientConfig::confidential(
            url(CLIENT_ID),
            vec![url(REDIRECT)],
            vec![client_key("2026-new", 77)],
        )
        .expect("valid"),
    );
    assert_eq!(
        Refresh::new(verified.session, verified.tokens, swapped, NOW, &mut rng(5)).map(|_| ()),
        Err(ClientError::KeyRetired("2026-new".into()))
    );
}

#[test]
fn every_login_draws_fresh_secrets() {
    let config = Arc::new(confidential());
    let mut logins = Vec::new();
    for seed in [21, 22] {
        let request = LoginRequest::parse("alice.example.com", Mode::Production).expect("valid");
        let mut machine =
            StartLogin::new(request, config.clone(), NOW, &mut rng(seed)).expect("starts");
        logins.push(
            run(&mut machine, &mut World::new())
                .expect("starts")
                .pending,
        );
    }
    assert_ne!(logins[0].state, logins[1].state);
    assert_ne!(logins[0].pkce_verifier, logins[1].pkce_verifier);
    assert_ne!(logins[0].session.dpop_key, logins[1].session.dpop_key);
    // One RNG, two logins: still different.
    let mut shared = rng(23);
    let first = StartLogin::new(
        LoginRequest::parse(ALICE, Mode::Production).expect("valid"),
        config.clone(),
        NOW,
        &mut shared,
    )
    .expect("starts");
    let second = StartLogin::new(
        LoginRequest::parse(ALICE, Mode::Production).expect("valid"),
        config,
        NOW,
        &mut shared,
    )
    .expect("starts");
    let (mut first, mut second) = (first, second);
    let a = run(&mut first, &mut World::new()).expect("starts").pending;
    let b = run(&mut second, &mut World::new()).expect("starts").pending;
    assert_ne!(a.state, b.state);
    assert_ne!(a.pkce_verifier, b.pkce_verifier);
}

#[test]
fn an_id_token_from_the_server_is_ignored() {
    let body = token(
        &json!({"id_token": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJkaWQ6cGxjOmFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYSJ9."}),
    );
    let verified = complete_with(Some(body), |_| {}).expect("completes");
    assert_eq!(
        verified.did.as_str(),
        ALICE,
        "the identity comes from sub and the issuer proof only"
    );
}

#[test]
fn par_answers_are_checked() {
    for (body, problem) in [
        (
            json!({"expires_in": 299}),
            "request_uri is missing or not a string",
        ),
        (
            json!({"request_uri": "", "expires_in": 299}),
            "request_uri is missing or not a string",
        ),
        (
            json!({"request_uri": "urn:x"}),
            "expires_in is missing or not a positive integer",
        ),
        (
            json!({"request_uri": "urn:x", "expires_in": 0}),
            "expires_in is missing or not a positive integer",
        ),
        (
            json!({"request_uri": "x".repeat(3000), "expires_in": 1}),
            "request_uri is too long",
        ),
    ] {
        assert_eq!(
            parse_par_response(body.to_string().as_bytes()),
            Err(ClientError::InvalidResponse {
                endpoint: "pushed authorization request",
                problem: problem.into()
            })
        );
    }
    assert!(matches!(
        parse_par_response(b"[]"),
        Err(ClientError::InvalidResponse { .. })
    ));
    let big = vec![b' '; 70 * 1024];
    assert_eq!(
        parse_par_response(&big),
        Err(ClientError::InvalidResponse {
            endpoint: "pushed authorization request",
            problem: "it is too large".into()
        })
    );
    let ok = parse_par_response(
        br#"{"request_uri":"urn:ietf:params:oauth:request_uri:req-1","expires_in":60}"#,
    )
    .expect("valid");
    assert_eq!(ok.expires_in, 60);
}

#[test]
fn signed_requests_take_the_time_they_are_given() {
    let config = Arc::new(confidential());
    let request = LoginRequest::parse("alice.example.com", Mode::Production).expect("valid");
    let mut machine = StartLogin::new(request, config.clone(), NOW, &mut rng(9)).expect("starts");
    let mut world = World::new();
    let later = NOW.saturating_add(Duration::from_secs(42));
    loop {
        let Some(action) = machine.poll() else {
            panic!("stalled")
        };
        match action {
            Action::Done(result) => {
                result.expect("starts");
                break;
            }
            Action::Fetch(fetch) => {
                let answer = world.respond(&fetch);
                machine.handle_time(later);
                machine.handle_response(fetch.id, answer);
            }
            Action::LookupTxt(lookup) => {
                let answer = world.txt(&lookup);
                machine.handle_time(later);
                machine.handle_txt(lookup.id, answer);
            }
        }
    }
    let par = world.seen.last().expect("par");
    let assertion = par.field("client_assertion").expect("assertion");
    let claims = crate::jose::UnverifiedJws::parse(assertion, 16 * 1024)
        .expect("parses")
        .verify(
            DefaultProvider::get(),
            &config.current_key().expect("key").public_jwk(),
        )
        .expect("verifies");
    assert_eq!(claims.claims()["iat"], later.as_secs());
}

#[test]
fn callback_debug_hides_code_and_state() {
    let params =
        CallbackParams::parse("code=the-code&state=the-state&iss=https%3A%2F%2Fx").expect("valid");
    let debug = format!("{params:?}");
    assert!(
        !debug.contains("the-code") && !debug.contains("the-state"),
        "{debug}"
    );
}

#[test]
fn login_hint_is_what_was_typed_without_the_at_sign() {
    let config = Arc::new(confidential());
    let mut world = World::new();
    let started = start(&config, " @Alice.Example.com ", &mut world).expect("starts");
    assert_eq!(
        started.pending.login_hint.as_deref(),
        Some("Alice.Example.com")
    );
}
