//! atlogin as the upstream provider of Matrix Authentication Service, checked
//! with MAS's own published client library (`mas-oidc-client` 0.11): the
//! discovery document passes `ProviderMetadata::validate`, the one MAS applies
//! in its default `oidc` discovery mode, and the ID tokens pass
//! `verify_id_token` plus the `at_hash` and `nonce` checks MAS makes at its
//! upstream callback, for RS256 and for ES256.

use std::time::Duration;

use atlogin_core::identity::{Did, Handle, Mode};
use atlogin_core::jose::{
    Algorithm, DefaultProvider, EcPrivateKey, JwsSigningKey, RsaPrivateKeyDer,
};
use atlogin_core::provider::{
    AuthenticatedUser, ClientAuth, ClientSecret, ProviderConfig, RegisteredClient, Stored,
    StoredSecret, authenticate_client, authorize, discovery_document, issue_code,
    parse_token_request, token,
};
use atlogin_core::secret::SecretBytes;
use atlogin_core::time::UnixTime;
use base64ct::Encoding;
use mas_iana::jose::JsonWebSignatureAlg;
use mas_jose::claims;
use mas_jose::jwk::PublicJsonWebKeySet;
use mas_oidc_client::requests::jose::{JwtVerificationData, verify_id_token};
use oauth2_types::oidc::ProviderMetadata;
use oauth2_types::requests::AccessTokenResponse;
use rand_core::SeedableRng;

const ISSUER: &str = "https://atlogin.example.org/";
const REDIRECT: &str = "https://mas.example.com/upstream/callback/01HRPHARNESS00000000000001";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const NOW: u64 = 1_700_000_000;

fn provider() -> ProviderConfig {
    let crypto = DefaultProvider::get();
    let der = RsaPrivateKeyDer::Pkcs8(SecretBytes::new(
        include_bytes!("../../core/testdata/rfc7515-a2-rsa.pkcs8.der").to_vec(),
    ));
    let rs = JwsSigningKey::new(crypto.load_rs256(&der).expect("loads")).with_kid("rs-1");
    let ec = EcPrivateKey::generate(&mut chacha20::ChaCha20Rng::from_seed([1; 32]));
    let es = JwsSigningKey::new(crypto.load_es256(&ec).expect("loads")).with_kid("es-1");
    let secret = || {
        ClientAuth::ClientSecretBasic(StoredSecret::Plain(ClientSecret::new(
            "mas-secret-0123456789",
        )))
    };
    let rs_client = RegisteredClient::new("mas-rs", vec![REDIRECT.into()], secret());
    let es_client = RegisteredClient::new("mas-es", vec![REDIRECT.into()], secret())
        .with_id_token_alg(Algorithm::Es256);
    ProviderConfig::new(ISSUER, vec![rs, es], vec![rs_client, es_client]).expect("valid config")
}

#[test]
fn mas_accepts_the_discovery_document() {
    let document = discovery_document(&provider());
    let metadata: ProviderMetadata =
        serde_json::from_value(document).expect("MAS parses the document");
    let verified = metadata
        .validate(ISSUER)
        .expect("MAS's strict discovery accepts it");
    assert_eq!(verified.issuer(), ISSUER);
    // A different issuer string must not pass: the comparison is byte for byte.
    let metadata: ProviderMetadata =
        serde_json::from_value(discovery_document(&provider())).expect("parses");
    assert!(metadata.validate("https://atlogin.example.org").is_err());
}

/// One login for `client_id`, as MAS drives it; returns the token response body.
fn login(config: &ProviderConfig, client_id: &str) -> serde_json::Value {
    let now = UnixTime::from_secs(NOW);
    let mut rng = chacha20::ChaCha20Rng::from_seed([2; 32]);
    let redirect: String = url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect();
    let query = format!(
        "response_type=code&client_id={client_id}&redirect_uri={redirect}&scope=openid%20profile&state=s&nonce=mas-nonce&code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let pending = authorize(config, &query, now).expect("MAS's request is valid");
    let user = AuthenticatedUser::new(
        Did::parse("did:plc:ewvi7nxzyoun6zhxrhs64oiz", Mode::Production).expect("did"),
        now,
    )
    .with_handle(Some(
        Handle::parse("alice.example.com", Mode::Production).expect("handle"),
    ))
    .with_profile(Some("Alice".into()), None);
    let (_, code, grant) = issue_code(config, &pending, user, now, &mut rng).expect("issues");
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={redirect}&code_verifier={VERIFIER}",
        code.secret()
    );
    let credentials = format!("{client_id}:mas-secret-0123456789");
    let basic = format!(
        "Basic {}",
        base64ct::Base64::encode_string(credentials.as_bytes())
    );
    let request = parse_token_request(form.as_bytes(), Some(&basic)).expect("parses");
    let client = authenticate_client(config, &request.auth, now, DefaultProvider::get())
        .expect("authenticates");
    let outcome = token(
        config,
        &client,
        &request,
        Stored::Code(Some(grant)),
        now,
        &mut rng,
    );
    assert_eq!(outcome.response.status(), 200);
    serde_json::from_slice(outcome.response.body()).expect("json")
}

fn check_with_mas(client_id: &str, alg: &JsonWebSignatureAlg) {
    let config = provider();
    let body = login(&config, client_id);
    let response: AccessTokenResponse =
        serde_json::from_value(body).expect("MAS parses the token response");
    let jwks: PublicJsonWebKeySet =
        serde_json::from_value(config.jwks().to_json_value()).expect("MAS parses the JWKS");
    let client_id = client_id.to_owned();
    let data = JwtVerificationData {
        issuer: ISSUER,
        jwks: &jwks,
        client_id: &client_id,
        signing_algorithm: alg,
    };
    let now =
        chrono::DateTime::from_timestamp(i64::try_from(NOW).expect("fits") + 10, 0).expect("time");
    let id_token = response.id_token.as_deref().expect("an ID token");
    let verified = verify_id_token(id_token, data, None, now).expect("MAS verifies the ID token");
    let mut claims = verified.payload().clone();
    claims::AT_HASH
        .extract_optional_with_options(
            &mut claims,
            claims::TokenHash::new(alg, &response.access_token),
        )
        .expect("at_hash matches the access token");
    claims::NONCE
        .extract_required_with_options(&mut claims, "mas-nonce")
        .expect("nonce matches");
    assert_eq!(
        claims
            .get("preferred_username")
            .and_then(serde_json::Value::as_str),
        Some("alice.example.com")
    );

    // MAS insists on the configured algorithm: the other one fails.
    let other = if *alg == JsonWebSignatureAlg::Rs256 {
        JsonWebSignatureAlg::Es256
    } else {
        JsonWebSignatureAlg::Rs256
    };
    let data = JwtVerificationData {
        issuer: ISSUER,
        jwks: &jwks,
        client_id: &client_id,
        signing_algorithm: &other,
    };
    assert!(
        verify_id_token(id_token, data, None, now).is_err(),
        "MAS refuses a token signed with another algorithm"
    );
    // And it refuses the token once expired.
    let later = now + chrono::Duration::from_std(Duration::from_secs(3600)).expect("duration");
    let data = JwtVerificationData {
        issuer: ISSUER,
        jwks: &jwks,
        client_id: &client_id,
        signing_algorithm: alg,
    };
    assert!(verify_id_token(id_token, data, None, later).is_err());
}

#[test]
fn mas_verifies_rs256_id_tokens() {
    check_with_mas("mas-rs", &JsonWebSignatureAlg::Rs256);
}

#[test]
fn mas_verifies_es256_id_tokens() {
    check_with_mas("mas-es", &JsonWebSignatureAlg::Es256);
}
