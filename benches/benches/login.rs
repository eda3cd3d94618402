//! atlogin's own CPU cost of one whole login, in process, against scripted
//! peers: the atproto client from a typed handle (DNS TXT, the PLC document,
//! the PDS's protected-resource and authorization-server metadata, PAR with
//! one `use_dpop_nonce` retry), the callback (token request with one nonce
//! retry, then the issuer proof: the DID resolved again), and the provider
//! (the relying party's authorization request, the code, the token request
//! with client authentication, the ID token). Once per signature backend.
//!
//! The peers' answers are built before the timing starts; what is timed is
//! what atlogin does with them: parsing, checking, signing.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use atlogin_core::client::{
    CallbackParams, ClientConfig, CompleteLogin, LoginRequest, StartLogin, VerifiedLogin,
};
use atlogin_core::identity::Mode;
use atlogin_core::jose::{
    CryptoProvider, DefaultProvider, EcPrivateKey, JwsSigningKey, RsaPrivateKeyDer,
};
use atlogin_core::provider::{
    AuthenticatedUser, ClientAuth, ClientSecret, ProviderConfig, RegisteredClient, Stored,
    StoredSecret, TokenOutcome, authenticate_client, authorize, issue_code, parse_token_request,
    token,
};
use atlogin_core::secret::SecretBytes;
use atlogin_core::time::UnixTime;
use atlogin_core::transport::{Action, Fetch, Machine, Response, TxtAnswer};
use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderValue;
use rand_core::SeedableRng;
use serde_json::json;
use url::Url;

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
const ALICE: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const PDS: &str = "https://pds.example.com";
const ENTRYWAY: &str = "https://entryway.example.com";
const ATLOGIN: &str = "https://atlogin.example.org";
const MAS_REDIRECT: &str = "https://mas.example.com/upstream/callback/01HRPHARNESS00000000000001";
const MAS_SECRET: &str = "mas-secret-0123456789";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const RSA_PKCS8: &[u8] = include_bytes!("../../core/testdata/rfc7515-a2-rsa.pkcs8.der");

fn json_response(status: u16, body: &serde_json::Value, nonce: Option<&str>) -> Response {
    let mut response = http::Response::new(body.to_string().into_bytes());
    *response.status_mut() = http::StatusCode::from_u16(status).expect("status");
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

/// The peers' answers, made once.
struct Peers {
    did_document: Response,
    protected_resource: Response,
    server_metadata: Response,
    use_nonce: Response,
    par: Response,
    tokens: Response,
    not_found: Response,
}

impl Peers {
    fn new() -> Self {
        Self {
            did_document: json_response(
                200,
                &json!({
                    "id": ALICE,
                    "alsoKnownAs": ["at://alice.example.com"],
                    "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": PDS}],
                }),
                None,
            ),
            protected_resource: json_response(
                200,
                &json!({"resource": PDS, "authorization_servers": [ENTRYWAY]}),
                None,
            ),
            server_metadata: json_response(
                200,
                &json!({
                    "issuer": ENTRYWAY,
                    "authorization_endpoint": format!("{ENTRYWAY}/oauth/authorize"),
                    "token_endpoint": format!("{ENTRYWAY}/oauth/token"),
                    "pushed_authorization_request_endpoint": format!("{ENTRYWAY}/oauth/par"),
                    "revocation_endpoint": format!("{ENTRYWAY}/oauth/revoke"),
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
                }),
                None,
            ),
            use_nonce: json_response(400, &json!({"error": "use_dpop_nonce"}), Some("nonce-1")),
            par: json_response(
                201,
                &json!({"request_uri": "urn:ietf:params:oauth:request_uri:req-1", "expires_in": 299}),
                Some("nonce-2"),
            ),
            tokens: json_response(
                200,
                &json!({
                    "access_token": "at-1", "token_type": "DPoP", "expires_in": 3600,
                    "refresh_token": "rt-1", "scope": "atproto", "sub": ALICE,
                }),
                Some("nonce-3"),
            ),
            not_found: http::Response::builder()
                .status(404)
                .body(Vec::new())
                .expect("response"),
        }
    }

    /// Answers `fetch`; the PAR and token endpoints ask for a nonce first.
    fn answer(&self, fetch: &Fetch) -> Response {
        let uri = fetch.request.uri();
        let response = match (uri.host().unwrap_or_default(), uri.path()) {
            ("plc.directory", _) => &self.did_document,
            (_, "/.well-known/oauth-protected-resource") => &self.protected_resource,
            (_, "/.well-known/oauth-authorization-server") => &self.server_metadata,
            (_, "/oauth/par") if proof_has_nonce(fetch) => &self.par,
            (_, "/oauth/token") if proof_has_nonce(fetch) => &self.tokens,
            (_, "/oauth/par" | "/oauth/token") => &self.use_nonce,
            _ => &self.not_found,
        };
        response.clone()
    }
}

/// Whether the request's DPoP proof carries a nonce (its payload names one).
fn proof_has_nonce(fetch: &Fetch) -> bool {
    let Some(proof) = fetch.request.headers().get("dpop") else {
        return false;
    };
    let Some(payload) = proof.to_str().ok().and_then(|p| p.split('.').nth(1)) else {
        return false;
    };
    atlogin_core::base64url::decode(payload)
        .ok()
        .is_some_and(|json| json.windows(7).any(|w| w == b"\"nonce\""))
}

fn run<M: Machine>(machine: &mut M, peers: &Peers) -> M::Output {
    loop {
        while let Some(action) = machine.poll() {
            match action {
                Action::Done(out) => return out,
                Action::Fetch(fetch) => {
                    let answer = peers.answer(&fetch);
                    machine.handle_response(fetch.id, Ok(answer));
                }
                Action::LookupTxt(lookup) => {
                    let answer = TxtAnswer::Records(vec![format!("did={ALICE}")]);
                    machine.handle_txt(lookup.id, answer);
                }
            }
        }
    }
}

struct Login {
    client: Arc<ClientConfig>,
    provider: ProviderConfig,
    crypto: &'static dyn CryptoProvider,
    peers: Peers,
    rng: chacha20::ChaCha20Rng,
}

impl Login {
    fn new(crypto: &'static dyn CryptoProvider) -> Self {
        let mut rng = chacha20::ChaCha20Rng::from_seed([5; 32]);
        let client_key = JwsSigningKey::new(
            crypto
                .load_es256(&EcPrivateKey::generate(&mut rng))
                .expect("loads"),
        )
        .with_kid("client-1");
        let client = ClientConfig::confidential(
            Url::parse(&format!("{ATLOGIN}/oauth-client-metadata.json")).expect("url"),
            vec![Url::parse(&format!("{ATLOGIN}/atproto/callback")).expect("url")],
            vec![client_key],
        )
        .expect("client config")
        .with_provider(crypto);
        let der = RsaPrivateKeyDer::Pkcs8(SecretBytes::new(RSA_PKCS8.to_vec()));
        let id_token_key =
            JwsSigningKey::new(crypto.load_rs256(&der).expect("loads")).with_kid("rs-1");
        let mas = RegisteredClient::new(
            "mas",
            vec![MAS_REDIRECT.into()],
            ClientAuth::ClientSecretBasic(StoredSecret::Plain(ClientSecret::new(MAS_SECRET))),
        );
        let provider =
            ProviderConfig::new(ATLOGIN, vec![id_token_key], vec![mas]).expect("provider config");
        Self {
            client: Arc::new(client),
            provider,
            crypto,
            peers: Peers::new(),
            rng,
        }
    }

    /// One login, start to ID token.
    fn once(&mut self) -> TokenOutcome {
        let query = format!(
            "response_type=code&client_id=mas&redirect_uri={}&scope=openid%20profile&state=st-1&nonce=n-1&code_challenge={CHALLENGE}&code_challenge_method=S256",
            url::form_urlencoded::byte_serialize(MAS_REDIRECT.as_bytes()).collect::<String>()
        );
        let pending_rp = authorize(&self.provider, &query, NOW).expect("authorization request");

        let request = LoginRequest::parse("alice.example.com", Mode::Production).expect("handle");
        let mut start =
            StartLogin::new(request, self.client.clone(), NOW, &mut self.rng).expect("starts");
        let started = run(&mut start, &self.peers).expect("login starts");
        let callback = CallbackParams::parse(
            &url::form_urlencoded::Serializer::new(String::new())
                .append_pair("code", "code-1")
                .append_pair("state", started.pending.state.secret())
                .append_pair("iss", ENTRYWAY)
                .finish(),
        )
        .expect("callback");
        let mut complete = CompleteLogin::new(
            started.pending,
            &callback,
            self.client.clone(),
            NOW,
            &mut self.rng,
        )
        .expect("completes");
        let verified: VerifiedLogin = run(&mut complete, &self.peers).expect("verified");

        let user = AuthenticatedUser::new(verified.did, NOW).with_handle(verified.handle);
        let (_, code, grant) =
            issue_code(&self.provider, &pending_rp, user, NOW, &mut self.rng).expect("code");
        let form = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={VERIFIER}",
            code.secret(),
            url::form_urlencoded::byte_serialize(MAS_REDIRECT.as_bytes()).collect::<String>()
        );
        let basic = {
            use base64ct::{Base64, Encoding};
            format!(
                "Basic {}",
                Base64::encode_string(format!("mas:{MAS_SECRET}").as_bytes())
            )
        };
        let request = parse_token_request(form.as_bytes(), Some(&basic)).expect("token request");
        let client =
            authenticate_client(&self.provider, &request.auth, NOW, self.crypto).expect("client");
        token(
            &self.provider,
            &client,
            &request,
            Stored::Code(Some(grant)),
            NOW,
            &mut self.rng,
        )
    }
}

fn whole_login(c: &mut Criterion) {
    let mut group = c.benchmark_group("login");
    group.measurement_time(Duration::from_secs(8));
    for (name, crypto) in [
        ("whole/p256", DefaultProvider::get()),
        ("whole/ring", atlogin_server::crypto::provider()),
    ] {
        let mut login = Login::new(crypto);
        let outcome = login.once();
        assert_eq!(outcome.response.status(), 200, "the login completes");
        group.bench_function(name, |b| b.iter(|| black_box(login.once())));
    }
    group.finish();
}

criterion_group!(benches, whole_login);
criterion_main!(benches);
