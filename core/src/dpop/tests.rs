use http::HeaderValue;

use super::*;
use crate::jose::{DefaultProvider, EcPrivateKey, JwsSigningKey};
use crate::test_rng;

// RFC 9449 §4.1, Figure 2 (line folding undone): a proof for the token endpoint.
const FIGURE_2: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
// RFC 9449 §7.1, Figure 13: a proof for a protected resource, with `ath`.
const FIGURE_13: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
// RFC 9449 §7.1, Figure 12: the access token Figure 13 is bound to, and §6.1's jkt.
const FIGURE_12_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
const FIGURE_13_ATH: &str = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo";
const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
// RFC 9449 §8, Figure 20: the nonce an authorization server hands out.
const RFC_NONCE: &str = "eyJ7S_zG.eyJH0-Z.HX4w-7v";

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
const MAX_AGE: Duration = Duration::from_secs(60);

fn provider() -> &'static dyn CryptoProvider {
    DefaultProvider::get()
}

fn key() -> JwsSigningKey {
    JwsSigningKey::new(
        provider()
            .load_es256(&EcPrivateKey::generate(&mut test_rng()))
            .expect("loads"),
    )
}

fn url(text: &str) -> Url {
    Url::parse(text).expect("valid url")
}

fn token_url() -> Url {
    url("https://as.example.com/oauth/token")
}

fn sign(builder: DpopProofBuilder<'_>, at: UnixTime) -> String {
    builder
        .sign(&key(), at, &mut test_rng())
        .expect("signs")
        .secret()
        .to_owned()
}

/// Signs a proof with hand-written claims, to test what a well-behaved client never sends.
fn sign_claims(claims: &serde_json::Value) -> String {
    key()
        .sign_with_embedded_jwk(Some(DPOP_JWT_TYPE), claims)
        .expect("signs")
}

fn check<'a>(method: &'a Method, url: &'a Url) -> DpopProofCheck<'a> {
    DpopProofCheck::new(method, url, NOW, MAX_AGE)
}

#[test]
fn rfc9449_figure_2_verifies() {
    let url = url("https://server.example.com/token");
    let at = UnixTime::from_secs(1_562_262_616);
    let verified = verify_proof(
        FIGURE_2,
        &DpopProofCheck::new(&Method::POST, &url, at, MAX_AGE),
        provider(),
    )
    .expect("the RFC's proof verifies");
    assert_eq!(verified.jkt.as_str(), RFC_JKT);
    assert_eq!(verified.jti, "-BwC3ESc6acc2lTc");
    assert_eq!(verified.iat, at);
}

#[test]
fn rfc9449_figure_13_verifies_with_its_access_token() {
    let url = url("https://resource.example.org/protectedresource");
    let at = UnixTime::from_secs(1_562_262_618);
    let token = AccessToken::new(FIGURE_12_TOKEN);
    let jkt: JwkThumbprint = serde_json::from_value(RFC_JKT.into()).expect("thumbprint");
    let check = DpopProofCheck::new(&Method::GET, &url, at, MAX_AGE)
        .with_access_token(&token)
        .with_jkt(&jkt);
    let verified = verify_proof(FIGURE_13, &check, provider()).expect("the RFC's proof verifies");
    assert_eq!(verified.jti, "e1j3V_bKic8-LAEB");
    assert_eq!(access_token_hash(FIGURE_12_TOKEN), FIGURE_13_ATH);

    let other = AccessToken::new("another token");
    let check = DpopProofCheck::new(&Method::GET, &url, at, MAX_AGE).with_access_token(&other);
    assert_eq!(
        verify_proof(FIGURE_13, &check, provider()),
        Err(DpopProofError::AccessTokenHash)
    );
}

#[test]
fn minted_proofs_carry_every_required_member() {
    let url = url("https://pds.example.com/xrpc/x?cursor=1#frag");
    let token = AccessToken::new("at");
    let proof = sign(
        DpopProofBuilder::new(&Method::POST, &url)
            .with_nonce(Some(RFC_NONCE))
            .with_access_token(&token),
        NOW,
    );
    let jws = crate::jose::UnverifiedJws::parse(&proof, MAX_PROOF_LEN).expect("parses");
    assert_eq!(jws.header().typ.as_deref(), Some("dpop+jwt"));
    assert_eq!(jws.header().alg, Algorithm::Es256);
    assert_eq!(jws.header().kid, None);
    let jwk = jws
        .header()
        .jwk()
        .expect("valid jwk")
        .expect("jwk in header");
    let verified = jws.verify(provider(), &jwk).expect("verifies");
    let claims = verified.claims();
    assert_eq!(claims["htm"], "POST");
    assert_eq!(claims["htu"], "https://pds.example.com/xrpc/x");
    assert_eq!(claims["iat"], NOW.as_secs());
    assert_eq!(claims["nonce"], RFC_NONCE);
    assert_eq!(claims["ath"], access_token_hash("at"));
    let jti = claims["jti"].as_str().expect("jti");
    assert_eq!(base64url::decode(jti).expect("base64url").len(), 16);
    let members: Vec<_> = claims.keys().map(String::as_str).collect();
    assert_eq!(members.len(), 6, "{members:?}");
}

#[test]
fn minted_proofs_omit_nonce_and_ath_when_not_given() {
    let url = token_url();
    let proof = sign(DpopProofBuilder::new(&Method::POST, &url), NOW);
    let jws = crate::jose::UnverifiedJws::parse(&proof, MAX_PROOF_LEN).expect("parses");
    let jwk = jws.header().jwk().expect("valid jwk").expect("jwk");
    let claims = jws
        .verify(provider(), &jwk)
        .expect("verifies")
        .claims()
        .clone();
    assert!(claims.get("nonce").is_none());
    assert!(claims.get("ath").is_none());
}

#[test]
fn every_proof_has_a_fresh_jti() {
    let url = token_url();
    let key = key();
    let mut rng = test_rng();
    let a = DpopProofBuilder::new(&Method::POST, &url)
        .sign(&key, NOW, &mut rng)
        .expect("signs");
    let b = DpopProofBuilder::new(&Method::POST, &url)
        .sign(&key, NOW, &mut rng)
        .expect("signs");
    let check = check(&Method::POST, &url);
    let a = verify_proof(a.secret(), &check, provider()).expect("verifies");
    let b = verify_proof(b.secret(), &check, provider()).expect("verifies");
    assert_ne!(a.jti, b.jti);
    assert_eq!(a.jkt, b.jkt);
}

#[test]
fn proofs_are_secrets() {
    let url = token_url();
    let proof = DpopProofBuilder::new(&Method::POST, &url)
        .sign(&key(), NOW, &mut test_rng())
        .expect("signs");
    assert_eq!(format!("{proof:?}"), "DpopProof { .. }");
}

#[test]
fn htu_drops_query_and_fragment_and_refuses_non_http() {
    assert_eq!(
        htu(&url("https://EXAMPLE.com:443/a/b?c=d#e")).as_deref(),
        Some("https://example.com/a/b")
    );
    assert_eq!(
        htu(&url("http://127.0.0.1:8080/x")).as_deref(),
        Some("http://127.0.0.1:8080/x")
    );
    assert_eq!(htu(&url("mailto:a@example.com")), None);
    assert_eq!(htu(&url("file:///etc/passwd")), None);
    let ftp = url("ftp://example.com/x");
    let err = DpopProofBuilder::new(&Method::GET, &ftp).sign(&key(), NOW, &mut test_rng());
    assert_eq!(err.err(), Some(DpopError::InvalidUrl));
}

#[test]
fn verifier_ignores_query_and_fragment_of_the_request() {
    let signed_for = url("https://as.example.com/oauth/token");
    let requested = url("https://as.example.com/oauth/token?x=1#y");
    let proof = sign(DpopProofBuilder::new(&Method::POST, &signed_for), NOW);
    assert!(verify_proof(&proof, &check(&Method::POST, &requested), provider()).is_ok());
}

#[test]
fn rejects_other_method_or_url() {
    let url = token_url();
    let proof = sign(DpopProofBuilder::new(&Method::POST, &url), NOW);
    assert_eq!(
        verify_proof(&proof, &check(&Method::GET, &url), provider()),
        Err(DpopProofError::MethodMismatch)
    );
    for other in [
        "https://as.example.com/oauth/token/",
        "https://as.example.com/oauth/par",
        "http://as.example.com/oauth/token",
        "https://as.example.com:8443/oauth/token",
        "https://evil.example.com/oauth/token",
    ] {
        let other = self::url(other);
        assert_eq!(
            verify_proof(&proof, &check(&Method::POST, &other), provider()),
            Err(DpopProofError::UrlMismatch),
            "{other}"
        );
    }
}

#[test]
fn rejects_proofs_too_old_or_from_the_future() {
    let url = token_url();
    let check = check(&Method::POST, &url);
    // 60 s of age plus 5 s of leeway are fine; one second more is not.
    let old_ok = sign(
        DpopProofBuilder::new(&Method::POST, &url),
        NOW.saturating_sub(Duration::from_secs(65)),
    );
    assert!(verify_proof(&old_ok, &check, provider()).is_ok());
    let too_old = sign(
        DpopProofBuilder::new(&Method::POST, &url),
        NOW.saturating_sub(Duration::from_secs(66)),
    );
    assert_eq!(
        verify_proof(&too_old, &check, provider()),
        Err(DpopProofError::TooOld)
    );
    let future_ok = sign(
        DpopProofBuilder::new(&Method::POST, &url),
        NOW.saturating_add(Duration::from_secs(5)),
    );
    assert!(verify_proof(&future_ok, &check, provider()).is_ok());
    let future = sign(
        DpopProofBuilder::new(&Method::POST, &url),
        NOW.saturating_add(Duration::from_secs(6)),
    );
    assert_eq!(
        verify_proof(&future, &check, provider()),
        Err(DpopProofError::IssuedInFuture)
    );
    let strict = check.with_leeway(Duration::ZERO);
    let one_ahead = sign(
        DpopProofBuilder::new(&Method::POST, &url),
        NOW.saturating_add(Duration::from_secs(1)),
    );
    assert_eq!(
        verify_proof(&one_ahead, &strict, provider()),
        Err(DpopProofError::IssuedInFuture)
    );
}

#[test]
fn nonce_rules_and_their_error_codes() {
    let url = token_url();
    let required = check(&Method::POST, &url).with_nonce(RFC_NONCE);
    let without = sign(DpopProofBuilder::new(&Method::POST, &url), NOW);
    let err = verify_proof(&without, &required, provider()).expect_err("nonce required");
    assert_eq!(err, DpopProofError::NonceRequired);
    assert_eq!(err.error_code(), "use_dpop_nonce");
    let stale = sign(
        DpopProofBuilder::new(&Method::POST, &url).with_nonce(Some("old")),
        NOW,
    );
    let err = verify_proof(&stale, &required, provider()).expect_err("stale nonce");
    assert_eq!(err, DpopProofError::NonceMismatch);
    assert_eq!(err.error_code(), "use_dpop_nonce");
    let fresh = sign(
        DpopProofBuilder::new(&Method::POST, &url).with_nonce(Some(RFC_NONCE)),
        NOW,
    );
    assert!(verify_proof(&fresh, &required, provider()).is_ok());
    assert_eq!(
        DpopProofError::UrlMismatch.error_code(),
        "invalid_dpop_proof"
    );
}

#[test]
fn rejects_a_key_other_than_the_bound_one() {
    let url = token_url();
    let proof = sign(DpopProofBuilder::new(&Method::POST, &url), NOW);
    let other = JwsSigningKey::new(
        provider()
            .load_es256(&EcPrivateKey::generate(&mut crate::test_rng_2()))
            .expect("loads"),
    );
    let other_jkt = other.public_jwk().thumbprint();
    let bound = check(&Method::POST, &url).with_jkt(&other_jkt);
    assert_eq!(
        verify_proof(&proof, &bound, provider()),
        Err(DpopProofError::KeyMismatch)
    );
    let own = key().public_jwk().thumbprint();
    assert!(
        verify_proof(
            &proof,
            &check(&Method::POST, &url).with_jkt(&own),
            provider()
        )
        .is_ok()
    );
}

#[test]
fn rejects_missing_or_malformed_claims() {
    let url = token_url();
    let base =
        serde_json::json!({"jti": "j", "htm": "POST", "htu": url.as_str(), "iat": NOW.as_secs()});
    assert!(verify_proof(&sign_claims(&base), &check(&Method::POST, &url), provider()).is_ok());
    for (name, replacement) in [
        ("jti", None),
        ("jti", Some(serde_json::json!(""))),
        ("jti", Some(serde_json::json!("x".repeat(MAX_JTI_LEN + 1)))),
        ("jti", Some(serde_json::json!(7))),
        ("htm", None),
        ("htm", Some(serde_json::json!(["POST"]))),
        ("htu", None),
        ("htu", Some(serde_json::json!("not a url"))),
        ("iat", None),
        ("iat", Some(serde_json::json!("1700000000"))),
    ] {
        let mut claims = base.clone();
        match replacement.clone() {
            None => {
                claims.as_object_mut().expect("object").remove(name);
            }
            Some(value) => claims[name] = value,
        }
        let result = verify_proof(
            &sign_claims(&claims),
            &check(&Method::POST, &url),
            provider(),
        );
        assert_eq!(
            result,
            Err(DpopProofError::InvalidClaim(name)),
            "{name}: {replacement:?}"
        );
    }
}

#[test]
fn rejects_proofs_without_jwk_or_with_wrong_typ_or_alg() {
    let url = token_url();
    let claims =
        serde_json::json!({"jti": "j", "htm": "POST", "htu": url.as_str(), "iat": NOW.as_secs()});
    let check = check(&Method::POST, &url);
    let with_kid = key()
        .with_kid("k")
        .sign(Some(DPOP_JWT_TYPE), &claims)
        .expect("signs");
    assert_eq!(
        verify_proof(&with_kid, &check, provider()),
        Err(DpopProofError::MissingJwk)
    );
    let jwt = key()
        .sign_with_embedded_jwk(Some("JWT"), &claims)
        .expect("signs");
    assert_eq!(
        verify_proof(&jwt, &check, provider()),
        Err(DpopProofError::Jws(JwsError::TypeMismatch))
    );
    let untyped = key().sign_with_embedded_jwk(None, &claims).expect("signs");
    assert_eq!(
        verify_proof(&untyped, &check, provider()),
        Err(DpopProofError::Jws(JwsError::TypeMismatch))
    );
    let only_rs = [Algorithm::Rs256];
    let proof = sign_claims(&claims);
    assert_eq!(
        verify_proof(&proof, &check.with_algorithms(&only_rs), provider()),
        Err(DpopProofError::Jws(JwsError::AlgorithmNotAllowed))
    );
    let huge = "x".repeat(MAX_PROOF_LEN + 1);
    assert_eq!(
        verify_proof(&huge, &check, provider()),
        Err(DpopProofError::Jws(JwsError::TooLarge))
    );
}

#[test]
fn rejects_a_proof_signed_by_another_key_than_its_jwk() {
    // Header names one key, signature comes from another.
    let url = token_url();
    let proof = sign(DpopProofBuilder::new(&Method::POST, &url), NOW);
    let (_, signature) = proof.rsplit_once('.').expect("parts");
    let other = JwsSigningKey::new(
        provider()
            .load_es256(&EcPrivateKey::generate(&mut crate::test_rng_2()))
            .expect("loads"),
    );
    let claims =
        serde_json::json!({"jti": "j", "htm": "POST", "htu": url.as_str(), "iat": NOW.as_secs()});
    let theirs = other
        .sign_with_embedded_jwk(Some(DPOP_JWT_TYPE), &claims)
        .expect("signs");
    let (input, _) = theirs.rsplit_once('.').expect("parts");
    let spliced = format!("{input}.{signature}");
    assert_eq!(
        verify_proof(&spliced, &check(&Method::POST, &url), provider()),
        Err(DpopProofError::Jws(JwsError::BadSignature))
    );
}

#[test]
fn nonce_memory_is_per_origin() {
    let mut nonces = DpopNonces::new();
    let as_url = url("https://as.example.com/oauth/par");
    let as_token = url("https://as.example.com/oauth/token?x=1");
    let pds = url("https://pds.example.com/xrpc/x");
    assert_eq!(nonces.nonce_for(&as_url), None);

    let mut headers = HeaderMap::new();
    headers.insert("DPoP-Nonce", HeaderValue::from_static(RFC_NONCE));
    assert_eq!(nonces.handle_response(&as_url, &headers), Ok(true));
    assert_eq!(nonces.nonce_for(&as_token), Some(RFC_NONCE));
    assert_eq!(nonces.nonce_for(&pds), None);

    let mut pds_headers = HeaderMap::new();
    pds_headers.insert("dpop-nonce", HeaderValue::from_static("pds-nonce"));
    assert_eq!(nonces.handle_response(&pds, &pds_headers), Ok(true));
    assert_eq!(nonces.nonce_for(&pds), Some("pds-nonce"));
    assert_eq!(nonces.nonce_for(&as_url), Some(RFC_NONCE));

    // A newer nonce replaces the old one; a response without one changes nothing.
    headers.insert("DPoP-Nonce", HeaderValue::from_static("next"));
    assert_eq!(nonces.handle_response(&as_token, &headers), Ok(true));
    assert_eq!(nonces.nonce_for(&as_url), Some("next"));
    assert_eq!(
        nonces.handle_response(&as_url, &HeaderMap::new()),
        Ok(false)
    );
    assert_eq!(nonces.nonce_for(&as_url), Some("next"));

    // Another port is another origin.
    assert_eq!(
        nonces.nonce_for(&url("https://as.example.com:8443/oauth/par")),
        None
    );
}

#[test]
fn nonce_memory_refuses_bad_nonces_and_stays_bounded() {
    let mut nonces = DpopNonces::new();
    let as_url = url("https://as.example.com/");
    for bad in [
        "",
        "has space",
        "quote\"",
        "back\\slash",
        &"x".repeat(MAX_NONCE_LEN + 1),
    ] {
        let mut headers = HeaderMap::new();
        headers.insert(
            "dpop-nonce",
            HeaderValue::from_str(bad).expect("header value"),
        );
        assert_eq!(
            nonces.handle_response(&as_url, &headers),
            Err(DpopError::InvalidNonce),
            "{bad:?}"
        );
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        "dpop-nonce",
        HeaderValue::from_bytes(b"caf\xc3\xa9").expect("header value"),
    );
    assert_eq!(
        nonces.handle_response(&as_url, &headers),
        Err(DpopError::InvalidNonce)
    );
    assert_eq!(nonces.nonce_for(&as_url), None);

    let mut headers = HeaderMap::new();
    headers.insert("dpop-nonce", HeaderValue::from_static("n"));
    for i in 0..(MAX_ORIGINS + 4) {
        let origin = url(&format!("https://host{i}.example.com/"));
        assert_eq!(nonces.handle_response(&origin, &headers), Ok(true));
    }
    assert_eq!(nonces.entries.len(), MAX_ORIGINS);
    assert_eq!(nonces.nonce_for(&url("https://host0.example.com/")), None);
    assert_eq!(
        nonces.nonce_for(&url(&format!(
            "https://host{}.example.com/",
            MAX_ORIGINS + 3
        ))),
        Some("n")
    );
}

#[test]
fn recognises_the_authorization_server_nonce_error() {
    // RFC 9449 §8, Figure 20.
    let body = br#"{"error": "use_dpop_nonce", "error_description": "Authorization server requires nonce in DPoP proof"}"#;
    let headers = HeaderMap::new();
    assert!(is_nonce_challenge(StatusCode::BAD_REQUEST, &headers, body));
    assert!(!is_nonce_challenge(
        StatusCode::UNAUTHORIZED,
        &headers,
        body
    ));
    assert!(!is_nonce_challenge(StatusCode::OK, &headers, body));
    assert!(!is_nonce_challenge(
        StatusCode::BAD_REQUEST,
        &headers,
        br#"{"error":"invalid_dpop_proof"}"#
    ));
    assert!(!is_nonce_challenge(
        StatusCode::BAD_REQUEST,
        &headers,
        br#"{"error":["use_dpop_nonce"]}"#
    ));
    assert!(!is_nonce_challenge(
        StatusCode::BAD_REQUEST,
        &headers,
        b"use_dpop_nonce"
    ));
    let mut padded = body.to_vec();
    padded.extend(std::iter::repeat_n(b' ', 20_000));
    assert!(!is_nonce_challenge(
        StatusCode::BAD_REQUEST,
        &headers,
        &padded
    ));
}

#[test]
fn recognises_the_resource_server_nonce_challenge() {
    // RFC 9449 §9, Figure 23 (line folding undone).
    let challenge = r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#;
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    assert!(is_nonce_challenge(StatusCode::UNAUTHORIZED, &headers, b""));
    assert!(!is_nonce_challenge(StatusCode::FORBIDDEN, &headers, b""));

    let mut other = HeaderMap::new();
    other.append(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer error="invalid_token""#),
    );
    assert!(!is_nonce_challenge(StatusCode::UNAUTHORIZED, &other, b""));
    other.append(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"dpop algs="ES256", error=use_dpop_nonce"#),
    );
    assert!(is_nonce_challenge(StatusCode::UNAUTHORIZED, &other, b""));

    let mut wrong_scheme = HeaderMap::new();
    wrong_scheme.insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer error="use_dpop_nonce""#),
    );
    assert!(!is_nonce_challenge(
        StatusCode::UNAUTHORIZED,
        &wrong_scheme,
        b""
    ));
    let mut invalid = HeaderMap::new();
    invalid.insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"DPoP error="invalid_dpop_proof""#),
    );
    assert!(!is_nonce_challenge(StatusCode::UNAUTHORIZED, &invalid, b""));
}

#[test]
fn missing_ath_is_refused_when_a_token_is_presented() {
    let url = token_url();
    let token = AccessToken::new("at");
    let proof = sign(DpopProofBuilder::new(&Method::POST, &url), NOW);
    let check = check(&Method::POST, &url).with_access_token(&token);
    assert_eq!(
        verify_proof(&proof, &check, provider()),
        Err(DpopProofError::AccessTokenHash)
    );
}

#[test]
fn non_string_nonce_is_malformed() {
    let url = token_url();
    let claims = serde_json::json!({"jti": "j", "htm": "POST", "htu": url.as_str(), "iat": NOW.as_secs(), "nonce": 5});
    let check = check(&Method::POST, &url).with_nonce("5");
    assert_eq!(
        verify_proof(&sign_claims(&claims), &check, provider()),
        Err(DpopProofError::InvalidClaim("nonce"))
    );
}

#[test]
fn limits_are_inclusive() {
    let url = token_url();
    let jti = "j".repeat(MAX_JTI_LEN);
    let claims =
        serde_json::json!({"jti": jti, "htm": "POST", "htu": url.as_str(), "iat": NOW.as_secs()});
    assert!(
        verify_proof(
            &sign_claims(&claims),
            &check(&Method::POST, &url),
            provider()
        )
        .is_ok()
    );

    let mut nonces = DpopNonces::new();
    let longest = "n".repeat(MAX_NONCE_LEN);
    let mut headers = HeaderMap::new();
    headers.insert(
        "dpop-nonce",
        HeaderValue::from_str(&longest).expect("header value"),
    );
    assert_eq!(nonces.handle_response(&url, &headers), Ok(true));
    assert_eq!(nonces.nonce_for(&url), Some(longest.as_str()));
}

#[test]
fn htu_drops_user_info() {
    let url = url("https://user:secret@as.example.com/oauth/token");
    assert_eq!(
        htu(&url).as_deref(),
        Some("https://as.example.com/oauth/token")
    );
}

#[test]
fn urls_without_a_server_origin_have_no_nonce() {
    let mut nonces = DpopNonces::new();
    let mut headers = HeaderMap::new();
    headers.insert("dpop-nonce", HeaderValue::from_static("n"));
    let opaque = url("data:text/plain,x");
    assert_eq!(nonces.handle_response(&opaque, &headers), Ok(false));
    assert_eq!(nonces.nonce_for(&url("data:text/plain,y")), None);
}
