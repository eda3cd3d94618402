//! The crypto and token path: ES256 and RS256 sign and verify, bare and as JWS, DPoP
//! proofs, JWK thumbprints and PKCE.
//!
//! Each JWS benchmark signs or verifies the same kind of input as its bare
//! counterpart, so `jws/*` minus `bare/*` is the cost of building or checking the
//! token around the signature. The `es256` and `dpop` groups run once per
//! backend: the default (`p256`) and *ring* (`RingProvider`, the server's).

use std::hint::black_box;
use std::time::Duration;

use atlogin_core::dpop::{DpopProofBuilder, DpopProofCheck, verify_proof};
use atlogin_core::jose::{
    ClaimsValidation, CryptoProvider, DefaultProvider, EcPrivateKey, JwkSet, JwsSigningKey,
    RsaPrivateKeyDer, Verifier,
};
use atlogin_core::pkce::PkceVerifier;
use atlogin_core::secret::SecretBytes;
use atlogin_core::time::UnixTime;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use rand_core::SeedableRng;

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

/// The RSA key of RFC 7515 Appendix A.2; public test material only.
const RSA_PKCS8: &[u8] = include_bytes!("../../core/testdata/rfc7515-a2-rsa.pkcs8.der");

fn rng() -> chacha20::ChaCha20Rng {
    chacha20::ChaCha20Rng::from_seed([7; 32])
}

/// Claims shaped like the ID tokens atlogin will mint for MAS and Synapse.
fn id_token_claims() -> serde_json::Value {
    serde_json::json!({
        "iss": "https://atlogin.example.org/",
        "sub": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
        "aud": "mas",
        "exp": NOW.as_secs() + 300,
        "iat": NOW.as_secs(),
        "auth_time": NOW.as_secs() - 5,
        "nonce": "n-0S6_WzA2Mj",
        "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
        "preferred_username": "alice.bsky.social",
        "name": "Alice",
        "picture": "https://cdn.bsky.app/img/avatar/plain/did:plc:ewvi7nxzyoun6zhxrhs64oiz/bafkreih@jpeg",
    })
}

fn id_token_validation() -> ClaimsValidation<'static> {
    ClaimsValidation::new(NOW, Duration::from_secs(30))
        .with_issuer("https://atlogin.example.org/")
        .with_audience("mas")
        .with_required_iat()
}

/// The signing input of a JWS over the ID token claims, as the bare benches sign it.
fn signing_input(key: &JwsSigningKey) -> Vec<u8> {
    let token = key.sign(Some("JWT"), &id_token_claims()).expect("signs");
    let (input, _) = token.rsplit_once('.').expect("three parts");
    input.as_bytes().to_vec()
}

/// Mints and verifies (with claim checks) an ID-token-shaped JWS with `key`.
fn bench_id_token(
    group: &mut BenchmarkGroup<'_, WallTime>,
    key: &JwsSigningKey,
    provider: &'static dyn CryptoProvider,
) {
    let keys = JwkSet::new(vec![key.public_jwk()]);
    let claims = id_token_claims();
    let token = key.sign(Some("JWT"), &claims).expect("signs");
    let validation = id_token_validation();
    group.bench_function("jws/id_token_mint", |b| {
        b.iter(|| key.sign(Some("JWT"), black_box(&claims)).expect("signs"));
    });
    group.bench_function("jws/id_token_verify", |b| {
        b.iter(|| {
            let verified = Verifier::new(provider)
                .verify(black_box(&token), &keys)
                .expect("verifies");
            verified.validate(&validation).expect("valid claims")
        });
    });
}

fn es256(c: &mut Criterion) {
    let provider = DefaultProvider::get();
    let private = EcPrivateKey::generate(&mut rng());
    let key = JwsSigningKey::new(provider.load_es256(&private).expect("loads")).with_kid("ec-1");
    let message = signing_input(&key);
    let bare_key = p256::ecdsa::SigningKey::from_slice(&private.scalar()).expect("valid scalar");
    let bare_public = *bare_key.verifying_key();
    let bare_sig: p256::ecdsa::Signature = bare_key.sign(&message);

    let mut group = c.benchmark_group("es256");
    group.bench_function("bare/p256_sign", |b| {
        b.iter(|| -> p256::ecdsa::Signature { bare_key.sign(black_box(&message)) });
    });
    group.bench_function("bare/p256_verify", |b| {
        b.iter(|| {
            bare_public
                .verify(black_box(&message), black_box(&bare_sig))
                .expect("verifies");
        });
    });
    bench_id_token(&mut group, &key, provider);
    group.finish();
}

fn es256_ring(c: &mut Criterion) {
    use ring::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
    let provider = atlogin_server::crypto::provider();
    let private = EcPrivateKey::generate(&mut rng());
    let key = JwsSigningKey::new(provider.load_es256(&private).expect("loads")).with_kid("ec-1");
    let message = signing_input(&key);
    #[expect(clippy::disallowed_methods, reason = "a benchmark is a caller")]
    let system = ring::rand::SystemRandom::new();
    let bare_key = EcdsaKeyPair::from_private_key_and_public_key(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &private.scalar(),
        &private.public_key().to_sec1_uncompressed(),
        &system,
    )
    .expect("valid key");
    let bare_public = UnparsedPublicKey::new(
        &signature::ECDSA_P256_SHA256_FIXED,
        bare_key.public_key().as_ref().to_vec(),
    );
    let bare_sig = bare_key.sign(&system, &message).expect("signs");

    let mut group = c.benchmark_group("es256-ring");
    group.bench_function("bare/ring_sign", |b| {
        b.iter(|| bare_key.sign(&system, black_box(&message)).expect("signs"));
    });
    group.bench_function("bare/ring_verify", |b| {
        b.iter(|| {
            bare_public
                .verify(black_box(&message), black_box(bare_sig.as_ref()))
                .expect("verifies");
        });
    });
    bench_id_token(&mut group, &key, provider);
    group.finish();
}

fn rs256(c: &mut Criterion) {
    let provider = DefaultProvider::get();
    let der = RsaPrivateKeyDer::Pkcs8(SecretBytes::new(RSA_PKCS8.to_vec()));
    let key = JwsSigningKey::new(provider.load_rs256(&der).expect("loads")).with_kid("rsa-1");
    let message = signing_input(&key);
    let bare_key = ring::rsa::KeyPair::from_pkcs8(RSA_PKCS8).expect("valid key");
    let mut bare_sig = vec![0; bare_key.public().modulus_len()];
    // ring's RSA API takes an RNG handle; PKCS#1 v1.5 signing never draws from it.
    #[expect(
        clippy::disallowed_methods,
        reason = "ring requires the handle; it is not used"
    )]
    let ring_rng = ring::rand::SystemRandom::new();
    bare_key
        .sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring_rng,
            &message,
            &mut bare_sig,
        )
        .expect("signs");
    let bare_public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        bare_key.public().as_ref().to_vec(),
    );

    let mut group = c.benchmark_group("rs256");
    group.bench_function("bare/ring_sign", |b| {
        let mut sig = vec![0; bare_key.public().modulus_len()];
        b.iter(|| {
            bare_key
                .sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &ring_rng,
                    black_box(&message),
                    &mut sig,
                )
                .expect("signs");
        });
    });
    group.bench_function("bare/ring_verify", |b| {
        b.iter(|| {
            bare_public
                .verify(black_box(&message), black_box(&bare_sig))
                .expect("verifies");
        });
    });
    bench_id_token(&mut group, &key, provider);
    group.finish();
}

fn dpop(c: &mut Criterion) {
    dpop_with(c, "dpop", DefaultProvider::get());
    dpop_with(c, "dpop-ring", atlogin_server::crypto::provider());
}

fn dpop_with(c: &mut Criterion, name: &str, provider: &'static dyn CryptoProvider) {
    let key = JwsSigningKey::new(
        provider
            .load_es256(&EcPrivateKey::generate(&mut rng()))
            .expect("loads"),
    );
    let url = url::Url::parse("https://bsky.social/oauth/token").expect("valid url");
    let method = http::Method::POST;
    let mut rng = rng();
    let proof = DpopProofBuilder::new(&method, &url)
        .with_nonce(Some("server-nonce-1"))
        .sign(&key, NOW, &mut rng)
        .expect("signs");
    let check = DpopProofCheck::new(&method, &url, NOW, Duration::from_secs(60))
        .with_nonce("server-nonce-1");

    let mut group = c.benchmark_group(name);
    group.bench_function("proof_create", |b| {
        b.iter(|| {
            DpopProofBuilder::new(&method, black_box(&url))
                .with_nonce(Some("server-nonce-1"))
                .sign(&key, NOW, &mut rng)
                .expect("signs")
        });
    });
    group.bench_function("proof_verify", |b| {
        b.iter(|| verify_proof(black_box(proof.secret()), &check, provider).expect("verifies"));
    });
    group.finish();
}

/// A `private_key_jwt` client assertion (RFC 7523): minted as atlogin's
/// atproto client mints one, and checked as atlogin's provider checks one
/// (parse of the token request form, signature, claims).
fn client_assertion(c: &mut Criterion) {
    use atlogin_core::provider::{
        ClientAuth, ProviderConfig, RegisteredClient, authenticate_client, parse_token_request,
    };
    for (name, provider) in [
        ("assertion", DefaultProvider::get()),
        ("assertion-ring", atlogin_server::crypto::provider()),
    ] {
        let key = JwsSigningKey::new(
            provider
                .load_es256(&EcPrivateKey::generate(&mut rng()))
                .expect("loads"),
        )
        .with_kid("client-1");
        let der = RsaPrivateKeyDer::Pkcs8(SecretBytes::new(RSA_PKCS8.to_vec()));
        let id_token_key =
            JwsSigningKey::new(provider.load_rs256(&der).expect("loads")).with_kid("rs-1");
        let client = RegisteredClient::new(
            "jwt",
            vec!["https://jwt.example.com/cb".into()],
            ClientAuth::PrivateKeyJwt(JwkSet::new(vec![key.public_jwk()])),
        );
        let config = ProviderConfig::new(
            "https://atlogin.example.org",
            vec![id_token_key],
            vec![client],
        )
        .expect("provider config");
        let claims = serde_json::json!({
            "iss": "jwt", "sub": "jwt", "aud": "https://atlogin.example.org",
            "jti": "jti-0123456789abcdef", "iat": NOW.as_secs(), "exp": NOW.as_secs() + 60,
        });
        let jwt = key.sign(None, &claims).expect("signs");
        let form = format!(
            "grant_type=authorization_code&code=c&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={jwt}"
        );

        let mut group = c.benchmark_group(name);
        group.bench_function("mint", |b| {
            b.iter(|| key.sign(None, black_box(&claims)).expect("signs"));
        });
        group.bench_function("verify", |b| {
            b.iter(|| {
                let request =
                    parse_token_request(black_box(form.as_bytes()), None).expect("parses");
                authenticate_client(&config, &request.auth, NOW, provider)
                    .expect("authenticates")
                    .assertion_jti
                    .is_some()
            });
        });
        group.finish();
    }
}

fn thumbprint_and_pkce(c: &mut Criterion) {
    let provider: &dyn CryptoProvider = DefaultProvider::get();
    let ec = JwsSigningKey::new(
        provider
            .load_es256(&EcPrivateKey::generate(&mut rng()))
            .expect("loads"),
    )
    .public_jwk();
    let der = RsaPrivateKeyDer::Pkcs8(SecretBytes::new(RSA_PKCS8.to_vec()));
    let rsa = JwsSigningKey::new(provider.load_rs256(&der).expect("loads")).public_jwk();
    let mut rng = rng();
    let verifier = PkceVerifier::generate(&mut rng);
    let challenge = verifier.challenge();

    let mut group = c.benchmark_group("misc");
    group.bench_function("thumbprint/ec", |b| {
        b.iter(|| black_box(&ec).thumbprint());
    });
    group.bench_function("thumbprint/rsa", |b| {
        b.iter(|| black_box(&rsa).thumbprint());
    });
    group.bench_function("pkce/generate_and_challenge", |b| {
        b.iter(|| PkceVerifier::generate(&mut rng).challenge());
    });
    group.bench_function("pkce/verify", |b| {
        b.iter(|| {
            black_box(&challenge)
                .verify(black_box(&verifier))
                .expect("matches");
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    es256,
    es256_ring,
    rs256,
    dpop,
    client_assertion,
    thumbprint_and_pkce
);
criterion_main!(benches);
