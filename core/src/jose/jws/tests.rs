use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::jose::{DefaultProvider, EcPrivateKey, KeyError, RsaPrivateKeyDer};
use crate::secret::SecretBytes;
use crate::test_rng;
use crate::time::UnixTime;

// RFC 7515 Appendix A.3: ES256 key and the complete JWS.
const A3_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
const A3_JWS: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

// RFC 7515 Appendix A.2: RS256 public key and the complete JWS. The private key is in
// core/testdata, written by rfc7515-a2-key.py from the RFC's JWK members.
const A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
const A2_JWS: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
const A2_PKCS1: &[u8] = include_bytes!("../../../testdata/rfc7515-a2-rsa.pkcs1.der");
const A2_PKCS8: &[u8] = include_bytes!("../../../testdata/rfc7515-a2-rsa.pkcs8.der");

/// Just before the RFC examples' `exp` of 1300819380.
const RFC_NOW: UnixTime = UnixTime::from_secs(1_300_819_300);

fn provider() -> &'static dyn CryptoProvider {
    DefaultProvider::get()
}

fn a3_key() -> Jwk {
    Jwk::from_json(A3_JWK.as_bytes()).expect("A.3 key parses")
}

fn a2_key() -> Jwk {
    Jwk::from_json(format!(r#"{{"kty":"RSA","n":"{A2_N}","e":"AQAB"}}"#).as_bytes())
        .expect("A.2 key parses")
}

fn es256_key(kid: &str) -> JwsSigningKey {
    let key = provider()
        .load_es256(&EcPrivateKey::generate(&mut test_rng()))
        .expect("loads");
    JwsSigningKey::new(key).with_kid(kid)
}

fn rs256_key() -> JwsSigningKey {
    let der = RsaPrivateKeyDer::Pkcs8(SecretBytes::new(A2_PKCS8.to_vec()));
    JwsSigningKey::new(provider().load_rs256(&der).expect("loads")).with_kid("rsa-1")
}

/// A compact JWS from raw header and payload JSON, signed by `key` whatever the header says.
fn craft(key: &JwsSigningKey, header: &str, payload: &str) -> String {
    let signing_input = format!(
        "{}.{}",
        base64url::encode(header.as_bytes()),
        base64url::encode(payload.as_bytes())
    );
    let signature = key.key.sign(signing_input.as_bytes()).expect("signs");
    format!("{signing_input}.{}", base64url::encode(&signature))
}

fn verifier() -> Verifier<'static> {
    Verifier::new(provider())
}

#[test]
fn rfc7515_a3_es256_verifies() {
    let verified = verifier()
        .verify_with_key(A3_JWS, &a3_key())
        .expect("A.3 verifies");
    assert_eq!(verified.header().alg, Algorithm::Es256);
    assert_eq!(verified.claims()["iss"], "joe");
    assert_eq!(verified.claims()["http://example.com/is_root"], true);
    let registered = verified
        .validate(&ClaimsValidation::new(RFC_NOW, Duration::ZERO).with_issuer("joe"))
        .expect("claims are valid");
    assert_eq!(registered.exp, Some(UnixTime::from_secs(1_300_819_380)));
    let later = ClaimsValidation::new(UnixTime::from_secs(1_300_819_380), Duration::ZERO);
    assert_eq!(
        verified.validate(&later),
        Err(JwsError::Claims(ClaimsError::Expired))
    );
}

#[test]
fn rfc7515_a2_rs256_verifies() {
    let verified = verifier()
        .verify_with_key(A2_JWS, &a2_key())
        .expect("A.2 verifies");
    assert_eq!(verified.header().alg, Algorithm::Rs256);
    assert_eq!(verified.claims()["exp"], 1_300_819_380);
}

#[test]
fn rfc7515_a2_rs256_signs_the_exact_signature() {
    // PKCS#1 v1.5 is deterministic, so the RFC's signature is the only right answer.
    let (signing_input, expected) = A2_JWS.rsplit_once('.').expect("three parts");
    for der in [
        RsaPrivateKeyDer::Pkcs1(SecretBytes::new(A2_PKCS1.to_vec())),
        RsaPrivateKeyDer::Pkcs8(SecretBytes::new(A2_PKCS8.to_vec())),
    ] {
        let key = provider().load_rs256(&der).expect("A.2 key loads");
        assert_eq!(key.public_key(), a2_key().key());
        let signature = key.sign(signing_input.as_bytes()).expect("signs");
        assert_eq!(base64url::encode(&signature), expected);
    }
}

#[test]
fn rsa_private_keys_that_do_not_parse_are_refused() {
    for der in [
        RsaPrivateKeyDer::Pkcs8(SecretBytes::new(b"not der".to_vec())),
        RsaPrivateKeyDer::Pkcs1(SecretBytes::new(A2_PKCS8.to_vec())),
        RsaPrivateKeyDer::Pkcs8(SecretBytes::new(Vec::new())),
    ] {
        assert_eq!(provider().load_rs256(&der).map(|_| ()), Err(KeyError));
    }
}

#[test]
fn es256_and_rs256_round_trip_with_kid_and_typ() {
    for key in [es256_key("ec-1"), rs256_key()] {
        let claims = serde_json::json!({"iss": "https://op", "aud": ["rp"], "exp": 2_000_000_000});
        let token = key.sign(Some("JWT"), &claims).expect("signs");
        let set = JwkSet::new(vec![key.public_jwk()]);
        let verified = verifier()
            .with_typ("jwt")
            .verify(&token, &set)
            .expect("verifies");
        assert_eq!(verified.header().kid.as_deref(), key.kid());
        assert_eq!(verified.header().typ.as_deref(), Some("JWT"));
        assert_eq!(verified.header().alg, key.algorithm());
        assert_eq!(verified.claims(), claims.as_object().expect("object"));
        let validation = ClaimsValidation::new(UnixTime::from_secs(1_900_000_000), Duration::ZERO)
            .with_issuer("https://op")
            .with_audience("rp");
        assert!(verified.validate(&validation).is_ok());
    }
}

#[test]
fn public_jwk_names_kid_alg_and_use() {
    let jwk = es256_key("k").public_jwk().to_json_value();
    assert_eq!(jwk["kid"], "k");
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["use"], "sig");
    assert!(jwk.get("d").is_none());
}

#[test]
fn embedded_jwk_header_carries_only_the_public_key() {
    let key = es256_key("k");
    let token = key
        .sign_with_embedded_jwk(Some("dpop+jwt"), &serde_json::json!({}))
        .expect("signs");
    let jws = verifier().parse(&token).expect("parses");
    let jwk = jws.header().jwk().expect("valid jwk").expect("has jwk");
    assert_eq!(jws.header().kid, None);
    assert_eq!(jwk.thumbprint(), key.public_jwk().thumbprint());
    assert!(jws.verify(provider(), &jwk).is_ok());
}

#[test]
fn rejects_tokens_over_the_size_cap() {
    let key = es256_key("k");
    let token = key
        .sign(None, &serde_json::json!({"pad": "x".repeat(20_000)}))
        .expect("signs");
    let set = JwkSet::new(vec![key.public_jwk()]);
    assert_eq!(
        verifier().verify(&token, &set).err(),
        Some(JwsError::TooLarge)
    );
    assert!(
        verifier()
            .with_max_len(64 * 1024)
            .verify(&token, &set)
            .is_ok()
    );
    assert_eq!(
        verifier().with_max_len(10).verify(A3_JWS, &set).err(),
        Some(JwsError::TooLarge)
    );
}

#[test]
fn rejects_anything_but_three_parts() {
    let (two, _) = A3_JWS.rsplit_once('.').expect("three parts");
    assert_eq!(verifier().parse(two).err(), Some(JwsError::Malformed));
    assert_eq!(verifier().parse("abc").err(), Some(JwsError::Malformed));
    assert_eq!(
        verifier().parse(&format!("{A3_JWS}.x")).err(),
        Some(JwsError::Malformed)
    );
    assert_eq!(verifier().parse("").err(), Some(JwsError::Malformed));
}

#[test]
fn rejects_loose_base64url_in_every_part() {
    let parts: Vec<&str> = A3_JWS.split('.').collect();
    for i in 0..3 {
        let mut bad = parts.clone();
        let padded = format!("{}=", parts[i]);
        bad[i] = &padded;
        let token = bad.join(".");
        let err = verifier().verify_with_key(&token, &a3_key()).err();
        // A damaged payload is caught by the signature before it is decoded.
        let expected = if i == 1 {
            JwsError::BadSignature
        } else {
            JwsError::Encoding
        };
        assert_eq!(err, Some(expected), "part {i}");
    }
    let spaced = A3_JWS.replacen("eyJhbGci", "eyJh bGci", 1);
    assert_eq!(verifier().parse(&spaced).err(), Some(JwsError::Encoding));
    let newline = A3_JWS.replacen("DtEh", "Dt\nEh", 1);
    assert_eq!(verifier().parse(&newline).err(), Some(JwsError::Encoding));
}

#[test]
fn rejects_alg_none_and_hmac() {
    let key = es256_key("k");
    let set = JwkSet::new(vec![key.public_jwk()]);
    let payload = base64url::encode(br#"{"iss":"x"}"#);
    let none = format!("{}.{payload}.", base64url::encode(br#"{"alg":"none"}"#));
    assert_eq!(
        verifier().verify(&none, &set).err(),
        Some(JwsError::UnsupportedAlgorithm)
    );

    // An HMAC "signature" keyed with the public key's own JSON, the classic confusion.
    let header = base64url::encode(br#"{"alg":"HS256","kid":"k"}"#);
    let signing_input = format!("{header}.{payload}");
    let public_json = serde_json::to_vec(&key.public_jwk()).expect("serializes");
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public_json),
        signing_input.as_bytes(),
    );
    let hs = format!("{signing_input}.{}", base64url::encode(tag.as_ref()));
    assert_eq!(
        verifier().verify(&hs, &set).err(),
        Some(JwsError::UnsupportedAlgorithm)
    );

    for alg in [
        r#""HS512""#,
        r#""None""#,
        r#""ES256K""#,
        r#""PS256""#,
        r#""""#,
    ] {
        let token = craft(&key, &format!(r#"{{"alg":{alg}}}"#), "{}");
        assert_eq!(
            verifier().parse(&token).err(),
            Some(JwsError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
    let missing = craft(&key, r#"{"kid":"k"}"#, "{}");
    assert_eq!(
        verifier().parse(&missing).err(),
        Some(JwsError::InvalidHeader("alg"))
    );
    let wrong_type = craft(&key, r#"{"alg":["ES256"]}"#, "{}");
    assert_eq!(
        verifier().parse(&wrong_type).err(),
        Some(JwsError::InvalidHeader("alg"))
    );
}

#[test]
fn alg_must_fit_the_key() {
    // An ES256 token offered with an RSA key, and an RS256 token with an EC key.
    assert_eq!(
        verifier().verify_with_key(A3_JWS, &a2_key()).err(),
        Some(JwsError::KeyMismatch)
    );
    assert_eq!(
        verifier().verify_with_key(A2_JWS, &a3_key()).err(),
        Some(JwsError::KeyMismatch)
    );
    // A key restricted to encryption cannot verify.
    let enc = Jwk::new(a3_key().key().clone()).with_use(KeyUse::Encryption);
    assert_eq!(
        verifier().verify_with_key(A3_JWS, &enc).err(),
        Some(JwsError::KeyMismatch)
    );
}

#[test]
fn algorithms_can_be_restricted() {
    let only_es = [Algorithm::Es256];
    let v = verifier().with_algorithms(&only_es);
    assert_eq!(
        v.verify_with_key(A2_JWS, &a2_key()).err(),
        Some(JwsError::AlgorithmNotAllowed)
    );
    assert!(v.verify_with_key(A3_JWS, &a3_key()).is_ok());
}

#[test]
fn rejects_crit() {
    let key = es256_key("k");
    let token = craft(&key, r#"{"alg":"ES256","crit":["exp"],"exp":1}"#, "{}");
    assert_eq!(
        verifier().parse(&token).err(),
        Some(JwsError::CriticalHeader)
    );
    let b64 = craft(&key, r#"{"alg":"ES256","b64":false,"crit":["b64"]}"#, "{}");
    assert_eq!(verifier().parse(&b64).err(), Some(JwsError::CriticalHeader));
}

#[test]
fn rejects_duplicate_keys_in_header_and_payload() {
    let key = es256_key("k");
    let set = JwkSet::new(vec![key.public_jwk()]);
    let header = craft(&key, r#"{"alg":"ES256","alg":"ES256"}"#, "{}");
    assert_eq!(
        verifier().parse(&header).err(),
        Some(JwsError::InvalidHeader("header"))
    );
    let payload = craft(&key, r#"{"alg":"ES256"}"#, r#"{"sub":"a","sub":"b"}"#);
    assert_eq!(
        verifier().verify(&payload, &set).err(),
        Some(JwsError::InvalidPayload)
    );
}

#[test]
fn rejects_payloads_that_are_not_objects() {
    let key = es256_key("k");
    let set = JwkSet::new(vec![key.public_jwk()]);
    for payload in ["[]", "\"x\"", "not json", ""] {
        let token = craft(&key, r#"{"alg":"ES256"}"#, payload);
        assert_eq!(
            verifier().verify(&token, &set).err(),
            Some(JwsError::InvalidPayload),
            "{payload}"
        );
    }
}

#[test]
fn checks_typ_when_asked() {
    let key = es256_key("k");
    let set = JwkSet::new(vec![key.public_jwk()]);
    let dpop = craft(&key, r#"{"alg":"ES256","typ":"dpop+jwt"}"#, "{}");
    let long = craft(
        &key,
        r#"{"alg":"ES256","typ":"application/DPoP+JWT"}"#,
        "{}",
    );
    let jwt = craft(&key, r#"{"alg":"ES256","typ":"JWT"}"#, "{}");
    let none = craft(&key, r#"{"alg":"ES256"}"#, "{}");
    let other = craft(&key, r#"{"alg":"ES256","typ":"text/dpop+jwt"}"#, "{}");
    let v = verifier().with_typ("dpop+jwt");
    assert!(v.verify(&dpop, &set).is_ok());
    assert!(v.verify(&long, &set).is_ok());
    assert_eq!(v.verify(&jwt, &set).err(), Some(JwsError::TypeMismatch));
    assert_eq!(v.verify(&none, &set).err(), Some(JwsError::TypeMismatch));
    assert_eq!(v.verify(&other, &set).err(), Some(JwsError::TypeMismatch));
    // Without an expected typ any value passes.
    assert!(verifier().verify(&jwt, &set).is_ok());
    let numeric = craft(&key, r#"{"alg":"ES256","typ":1}"#, "{}");
    assert_eq!(
        verifier().parse(&numeric).err(),
        Some(JwsError::InvalidHeader("typ"))
    );
}

#[test]
fn selects_keys_by_kid() {
    let a = es256_key("a");
    let b = JwsSigningKey::new(
        provider()
            .load_es256(&EcPrivateKey::generate(&mut crate::test_rng_2()))
            .expect("loads"),
    )
    .with_kid("b");
    let set = JwkSet::new(vec![
        a.public_jwk(),
        b.public_jwk(),
        rs256_key().public_jwk(),
    ]);
    let from_b = b.sign(None, &serde_json::json!({})).expect("signs");
    assert!(verifier().verify(&from_b, &set).is_ok());

    let unknown = JwsSigningKey::new(b.key.clone()).with_kid("c");
    let token = unknown.sign(None, &serde_json::json!({})).expect("signs");
    assert_eq!(
        verifier().verify(&token, &set).err(),
        Some(JwsError::NoMatchingKey)
    );

    // No kid and two EC keys: refuse to guess.
    let anonymous = JwsSigningKey::new(b.key.clone());
    let token = anonymous.sign(None, &serde_json::json!({})).expect("signs");
    assert_eq!(
        verifier().verify(&token, &set).err(),
        Some(JwsError::AmbiguousKey)
    );
    // No kid and one EC key: that key.
    let only_b = JwkSet::new(vec![b.public_jwk(), rs256_key().public_jwk()]);
    assert!(verifier().verify(&token, &only_b).is_ok());

    // The right kid on the wrong key type does not match.
    let confused = JwsSigningKey::new(b.key.clone()).with_kid("rsa-1");
    let token = confused.sign(None, &serde_json::json!({})).expect("signs");
    assert_eq!(
        verifier().verify(&token, &set).err(),
        Some(JwsError::NoMatchingKey)
    );
    assert_eq!(
        verifier().verify(&token, &JwkSet::default()).err(),
        Some(JwsError::NoMatchingKey)
    );
}

#[test]
fn rejects_tampered_tokens() {
    let key = a3_key();
    let mut bytes = A3_JWS.as_bytes().to_vec();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).expect("ascii");
    assert_eq!(
        verifier().verify_with_key(&tampered, &key).err(),
        Some(JwsError::BadSignature)
    );

    let other_payload = format!(
        "eyJhbGciOiJFUzI1NiJ9.{}.{}",
        base64url::encode(br#"{"iss":"mallory"}"#),
        A3_JWS.rsplit_once('.').expect("parts").1
    );
    assert_eq!(
        verifier().verify_with_key(&other_payload, &key).err(),
        Some(JwsError::BadSignature)
    );

    // An ES256 signature of the wrong length.
    let short = format!(
        "{}.{}",
        A3_JWS.rsplit_once('.').expect("parts").0,
        base64url::encode(&[1; 63])
    );
    assert_eq!(
        verifier().verify_with_key(&short, &key).err(),
        Some(JwsError::BadSignature)
    );
}

#[test]
fn rejects_private_key_in_embedded_jwk() {
    let key = es256_key("k");
    let private = EcPrivateKey::generate(&mut test_rng()).to_jwk_json(None);
    let header = format!(r#"{{"alg":"ES256","jwk":{}}}"#, private.as_str());
    let token = craft(&key, &header, "{}");
    let jws = verifier().parse(&token).expect("the header is read lazily");
    assert_eq!(
        jws.header().jwk().err(),
        Some(JwsError::EmbeddedKey(JwkError::PrivateKeyMaterial))
    );
    let not_object = craft(&key, r#"{"alg":"ES256","jwk":"x"}"#, "{}");
    let jws = verifier()
        .parse(&not_object)
        .expect("the header is read lazily");
    assert_eq!(
        jws.header().jwk().err(),
        Some(JwsError::InvalidHeader("jwk"))
    );
}

#[test]
fn an_unused_header_jwk_does_not_matter() {
    // A token verified with a key from a set may carry a jwk of a type core does not
    // use; it is never read.
    let key = es256_key("k");
    let set = JwkSet::new(vec![key.public_jwk()]);
    let header = r#"{"alg":"ES256","kid":"k","jwk":{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}"#;
    let token = craft(&key, header, "{}");
    assert!(verifier().verify(&token, &set).is_ok());
}

#[test]
fn typed_claims_deserialize() {
    #[derive(serde::Deserialize)]
    struct Claims {
        iss: String,
        exp: u64,
    }
    #[derive(Debug, serde::Deserialize)]
    struct Wrong {
        #[expect(dead_code, reason = "only the failure to deserialize is tested")]
        iss: u64,
    }
    let verified = verifier()
        .verify_with_key(A3_JWS, &a3_key())
        .expect("verifies");
    let claims: Claims = verified.deserialize_claims().expect("deserializes");
    assert_eq!((claims.iss.as_str(), claims.exp), ("joe", 1_300_819_380));
    assert_eq!(
        verified.deserialize_claims::<Wrong>().err(),
        Some(JwsError::InvalidPayload)
    );
}

#[test]
fn debug_never_shows_the_token_or_claim_values() {
    let jws = verifier().parse(A3_JWS).expect("parses");
    let debug = format!("{jws:?}");
    let payload = A3_JWS.split('.').nth(1).expect("three parts");
    assert!(!debug.contains(payload), "{debug}");
    let verified = verifier()
        .verify_with_key(A3_JWS, &a3_key())
        .expect("verifies");
    let debug = format!("{verified:?}");
    assert!(debug.contains("\"iss\""), "{debug}");
    assert!(!debug.contains("joe"), "{debug}");
    let key = es256_key("k");
    let scalar = EcPrivateKey::generate(&mut test_rng()).scalar();
    let debug = format!("{key:?}");
    assert!(!debug.contains(&base64url::encode(&scalar)), "{debug}");
    assert!(!debug.contains(&format!("{:?}", &scalar[..8])), "{debug}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn es256_sign_verify_round_trip(seed in any::<[u8; 32]>(), sub in ".{0,64}", exp in 0u64..4_000_000_000) {
        use rand_core::SeedableRng;
        let private = EcPrivateKey::generate(&mut chacha20::ChaCha20Rng::from_seed(seed));
        let key = JwsSigningKey::new(provider().load_es256(&private).expect("loads"));
        let claims = serde_json::json!({"sub": sub, "exp": exp});
        let token = key.sign(Some("JWT"), &claims).expect("signs");
        let verified = verifier().verify_with_key(&token, &key.public_jwk()).expect("verifies");
        prop_assert_eq!(verified.claims(), claims.as_object().expect("object"));

        // Any change to any byte of the signature makes verification fail.
        let (input, signature) = token.rsplit_once('.').expect("parts");
        let mut sig = base64url::decode(signature).expect("base64url");
        sig[(exp % 64) as usize] ^= 1;
        let broken = format!("{input}.{}", base64url::encode(&sig));
        prop_assert!(verifier().verify_with_key(&broken, &key.public_jwk()).is_err());
    }
}

#[test]
fn a_kid_never_matches_a_key_without_one() {
    let key = es256_key("k");
    let anonymous = Jwk::new(key.public_jwk().key().clone());
    let token = key.sign(None, &serde_json::json!({})).expect("signs");
    assert_eq!(
        verifier()
            .verify(&token, &JwkSet::new(vec![anonymous]))
            .err(),
        Some(JwsError::NoMatchingKey)
    );
}

/// The *ring* backend against the same vectors, and against the default
/// backend: each verifies what the other signs.
#[cfg(feature = "ring-backend")]
mod ring_backend {
    use super::*;
    use crate::jose::{RingProvider, SignatureError};

    fn ring() -> &'static dyn CryptoProvider {
        static PROVIDER: std::sync::OnceLock<RingProvider> = std::sync::OnceLock::new();
        PROVIDER.get_or_init(|| {
            #[expect(
                clippy::disallowed_methods,
                reason = "the test is the caller handing it in"
            )]
            let rng = ring::rand::SystemRandom::new();
            RingProvider::new(rng)
        })
    }

    fn backends() -> [(&'static str, &'static dyn CryptoProvider); 2] {
        [("p256", provider()), ("ring", ring())]
    }

    #[test]
    fn both_backends_verify_the_rfc_7515_examples() {
        for (name, backend) in backends() {
            let a3 = Verifier::new(backend).verify_with_key(A3_JWS, &a3_key());
            assert!(a3.is_ok(), "{name}: A.3 {a3:?}");
            let a2 = Verifier::new(backend).verify_with_key(A2_JWS, &a2_key());
            assert!(a2.is_ok(), "{name}: A.2 {a2:?}");
        }
    }

    #[test]
    fn both_backends_sign_the_exact_rfc_7515_a2_signature() {
        let (signing_input, expected) = A2_JWS.rsplit_once('.').expect("three parts");
        for (name, backend) in backends() {
            let der = RsaPrivateKeyDer::Pkcs8(SecretBytes::new(A2_PKCS8.to_vec()));
            let key = backend.load_rs256(&der).expect("A.2 key loads");
            let signature = key.sign(signing_input.as_bytes()).expect("signs");
            assert_eq!(base64url::encode(&signature), expected, "{name}");
        }
    }

    #[test]
    fn ring_es256_keys_have_the_public_half_and_jws_sized_signatures() {
        let private = EcPrivateKey::generate(&mut test_rng());
        let key = ring().load_es256(&private).expect("loads");
        assert_eq!(key.algorithm(), Algorithm::Es256);
        assert_eq!(
            key.public_key(),
            &crate::jose::PublicKey::EcP256(private.public_key().clone())
        );
        let signature = key.sign(b"message").expect("signs");
        assert_eq!(signature.len(), 64);
        // A signature in any other form, or under the wrong algorithm, fails.
        let public = key.public_key();
        assert_eq!(
            ring().verify(Algorithm::Es256, public, b"message", &signature[..63]),
            Err(SignatureError)
        );
        assert_eq!(
            ring().verify(Algorithm::Rs256, public, b"message", &signature),
            Err(SignatureError)
        );
        assert_eq!(
            ring().verify(Algorithm::Es256, a2_key().key(), b"message", &signature),
            Err(SignatureError)
        );
        let debug = format!("{key:?}");
        assert!(
            !debug.contains(&base64url::encode(&private.scalar())),
            "{debug}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn each_backend_verifies_the_others_es256_signatures(
            seed in any::<[u8; 32]>(),
            message in proptest::collection::vec(any::<u8>(), 0..256),
            flip in 0usize..64,
        ) {
            use rand_core::SeedableRng;
            let private = EcPrivateKey::generate(&mut chacha20::ChaCha20Rng::from_seed(seed));
            for (signer, verifier) in [(provider(), ring()), (ring(), provider())] {
                let key = signer.load_es256(&private).expect("loads");
                let signature = key.sign(&message).expect("signs");
                prop_assert!(verifier.verify(Algorithm::Es256, key.public_key(), &message, &signature).is_ok());
                let mut broken = signature.clone();
                broken[flip] ^= 1;
                prop_assert!(verifier.verify(Algorithm::Es256, key.public_key(), &message, &broken).is_err());
            }
        }
    }
}
