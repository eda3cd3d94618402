use super::*;
use crate::test_rng;
use proptest::prelude::*;

// RFC 7638 §3.1: the RSA key and its SHA-256 thumbprint.
const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
const RFC7638_THUMBPRINT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

// RFC 7515 Appendix A.3: the EC P-256 key.
const A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const A3_D: &str = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";

// RFC 9449 §4.1 (Figure 4): the public key of the example proof, and the `jkt`
// that RFC 9449 §6.1 binds the example access token to.
const RFC9449_JWK: &str = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;
const RFC9449_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

fn rfc7638_json(extra: &str) -> String {
    format!(r#"{{"kty":"RSA","n":"{RFC7638_N}","e":"AQAB"{extra}}}"#)
}

fn a3_public_json(extra: &str) -> String {
    format!(r#"{{"kty":"EC","crv":"P-256","x":"{A3_X}","y":"{A3_Y}"{extra}}}"#)
}

#[test]
fn rfc7638_rsa_thumbprint() {
    let jwk = Jwk::from_json(rfc7638_json(r#","alg":"RS256","kid":"2011-04-29""#).as_bytes())
        .expect("RFC 7638 key parses");
    assert_eq!(jwk.thumbprint().as_str(), RFC7638_THUMBPRINT);
    assert_eq!(jwk.kid(), Some("2011-04-29"));
    assert_eq!(jwk.algorithm(), Some(Algorithm::Rs256));
}

#[test]
fn rfc9449_ec_thumbprint() {
    let jwk = Jwk::from_json(RFC9449_JWK.as_bytes()).expect("RFC 9449 key parses");
    assert_eq!(jwk.thumbprint().as_str(), RFC9449_JKT);
}

#[test]
fn thumbprint_ignores_optional_members() {
    let plain = Jwk::from_json(a3_public_json("").as_bytes()).expect("parses");
    let dressed =
        Jwk::from_json(a3_public_json(r#","kid":"k","use":"sig","alg":"ES256""#).as_bytes())
            .expect("parses");
    assert_eq!(plain.thumbprint(), dressed.thumbprint());
}

#[test]
fn public_jwk_round_trips_through_json() {
    let jwk = Jwk::from_json(
        a3_public_json(r#","kid":"k1","use":"sig","key_ops":["verify"]"#).as_bytes(),
    )
    .expect("parses");
    let json = serde_json::to_vec(&jwk).expect("serializes");
    assert_eq!(Jwk::from_json(&json), Ok(jwk));
    let rsa = Jwk::from_json(rfc7638_json("").as_bytes()).expect("parses");
    let json = serde_json::to_vec(&rsa).expect("serializes");
    assert_eq!(Jwk::from_json(&json), Ok(rsa));
}

#[test]
fn rejects_private_members_in_a_public_jwk() {
    let ec = a3_public_json(&format!(r#","d":"{A3_D}""#));
    assert_eq!(
        Jwk::from_json(ec.as_bytes()),
        Err(JwkError::PrivateKeyMaterial)
    );
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
        let rsa = rfc7638_json(&format!(r#","{member}":"AQAB""#));
        assert_eq!(
            Jwk::from_json(rsa.as_bytes()),
            Err(JwkError::PrivateKeyMaterial),
            "{member}"
        );
    }
}

#[test]
fn rejects_points_off_the_curve() {
    let off = format!(r#"{{"kty":"EC","crv":"P-256","x":"{A3_X}","y":"{A3_X}"}}"#);
    assert_eq!(Jwk::from_json(off.as_bytes()), Err(JwkError::InvalidKey));
    let zero = base64url::encode(&[0u8; 32]);
    let origin = format!(r#"{{"kty":"EC","crv":"P-256","x":"{zero}","y":"{zero}"}}"#);
    assert_eq!(Jwk::from_json(origin.as_bytes()), Err(JwkError::InvalidKey));
}

#[test]
fn rejects_coordinates_of_the_wrong_length() {
    let short = base64url::encode(&[1u8; 31]);
    let json = format!(r#"{{"kty":"EC","crv":"P-256","x":"{short}","y":"{A3_Y}"}}"#);
    assert_eq!(
        Jwk::from_json(json.as_bytes()),
        Err(JwkError::InvalidParameter("x"))
    );
    let padded = format!(r#"{{"kty":"EC","crv":"P-256","x":"{A3_X}=","y":"{A3_Y}"}}"#);
    assert_eq!(
        Jwk::from_json(padded.as_bytes()),
        Err(JwkError::InvalidParameter("x"))
    );
}

#[test]
fn rejects_unsupported_types_curves_and_algorithms() {
    let okp = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    assert_eq!(
        Jwk::from_json(okp.as_bytes()),
        Err(JwkError::UnsupportedKeyType)
    );
    let oct = r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
    assert_eq!(
        Jwk::from_json(oct.as_bytes()),
        Err(JwkError::UnsupportedKeyType)
    );
    let p384 = format!(r#"{{"kty":"EC","crv":"P-384","x":"{A3_X}","y":"{A3_Y}"}}"#);
    assert_eq!(
        Jwk::from_json(p384.as_bytes()),
        Err(JwkError::UnsupportedCurve)
    );
    let hs = a3_public_json(r#","alg":"HS256""#);
    assert_eq!(
        Jwk::from_json(hs.as_bytes()),
        Err(JwkError::UnsupportedAlgorithm)
    );
    let mismatch = a3_public_json(r#","alg":"RS256""#);
    assert_eq!(
        Jwk::from_json(mismatch.as_bytes()),
        Err(JwkError::AlgorithmMismatch)
    );
}

#[test]
fn rejects_malformed_documents() {
    assert_eq!(Jwk::from_json(b"[]"), Err(JwkError::Malformed));
    assert_eq!(Jwk::from_json(b"{"), Err(JwkError::Malformed));
    let dup = format!(r#"{{"kty":"EC","crv":"P-256","x":"{A3_X}","y":"{A3_Y}","x":"{A3_Y}"}}"#);
    assert_eq!(Jwk::from_json(dup.as_bytes()), Err(JwkError::Malformed));
    assert_eq!(
        Jwk::from_json(br#"{"kty":1}"#),
        Err(JwkError::InvalidParameter("kty"))
    );
    assert_eq!(
        Jwk::from_json(br#"{"crv":"P-256"}"#),
        Err(JwkError::InvalidParameter("kty"))
    );
    let kid = a3_public_json(r#","kid":7"#);
    assert_eq!(
        Jwk::from_json(kid.as_bytes()),
        Err(JwkError::InvalidParameter("kid"))
    );
    let ops = a3_public_json(r#","key_ops":["verify","verify"]"#);
    assert_eq!(
        Jwk::from_json(ops.as_bytes()),
        Err(JwkError::InvalidParameter("key_ops"))
    );
    let big = vec![b' '; MAX_JWK_SET_LEN + 1];
    assert_eq!(Jwk::from_json(&big), Err(JwkError::TooLarge));
}

#[test]
fn rsa_keys_must_be_large_and_minimal() {
    let n = base64url::decode(RFC7638_N).expect("base64url");
    let e = vec![1, 0, 1];
    assert!(RsaPublicKey::from_components(n.clone(), e.clone()).is_ok());
    // A 1024-bit modulus is too small.
    assert_eq!(
        RsaPublicKey::from_components(n[..128].to_vec(), e.clone()),
        Err(JwkError::WeakRsaKey)
    );
    // A leading zero octet is not the minimal encoding (RFC 7518 §6.3.1.1).
    let mut padded = vec![0];
    padded.extend_from_slice(&n);
    assert_eq!(
        RsaPublicKey::from_components(padded, e.clone()),
        Err(JwkError::InvalidParameter("n"))
    );
    // An even modulus, exponents 1 and 2, and an over-long exponent are refused.
    let mut even = n.clone();
    *even.last_mut().expect("non-empty") &= 0xfe;
    assert_eq!(
        RsaPublicKey::from_components(even, e),
        Err(JwkError::WeakRsaKey)
    );
    assert_eq!(
        RsaPublicKey::from_components(n.clone(), vec![1]),
        Err(JwkError::WeakRsaKey)
    );
    assert_eq!(
        RsaPublicKey::from_components(n.clone(), vec![2]),
        Err(JwkError::WeakRsaKey)
    );
    assert_eq!(
        RsaPublicKey::from_components(n.clone(), vec![1, 0, 0]),
        Err(JwkError::WeakRsaKey)
    );
    assert_eq!(
        RsaPublicKey::from_components(n.clone(), vec![1, 0, 0, 0, 1]),
        Err(JwkError::WeakRsaKey)
    );
    assert_eq!(
        RsaPublicKey::from_components(n, vec![0, 1, 0, 1]),
        Err(JwkError::InvalidParameter("e"))
    );
}

#[test]
fn can_verify_honours_alg_use_and_key_ops() {
    let parse = |extra: &str| Jwk::from_json(a3_public_json(extra).as_bytes()).expect("parses");
    assert!(parse("").can_verify(Algorithm::Es256));
    assert!(!parse("").can_verify(Algorithm::Rs256));
    assert!(parse(r#","use":"sig""#).can_verify(Algorithm::Es256));
    assert!(!parse(r#","use":"enc""#).can_verify(Algorithm::Es256));
    assert!(parse(r#","key_ops":["sign","verify"]"#).can_verify(Algorithm::Es256));
    assert!(!parse(r#","key_ops":["encrypt"]"#).can_verify(Algorithm::Es256));
}

#[test]
fn jwk_set_skips_unsupported_keys_and_fails_on_private_ones() {
    let set = format!(
        r#"{{"keys":[{},{{"kty":"OKP","crv":"Ed25519","x":"abc"}},{},{}]}}"#,
        a3_public_json(r#","kid":"ec""#),
        rfc7638_json(r#","kid":"rsa""#),
        a3_public_json(r#","alg":"ES384""#),
    );
    let parsed = JwkSet::from_json(set.as_bytes()).expect("parses");
    let kids: Vec<_> = parsed.keys().iter().map(Jwk::kid).collect();
    assert_eq!(kids, [Some("ec"), Some("rsa")]);

    let bad = format!(r#"{{"keys":[{}]}}"#, a3_public_json(r#","d":"x""#));
    assert_eq!(
        JwkSet::from_json(bad.as_bytes()),
        Err(JwkError::PrivateKeyMaterial)
    );
    assert_eq!(
        JwkSet::from_json(br#"{"keys":{}}"#),
        Err(JwkError::InvalidParameter("keys"))
    );
    assert_eq!(
        JwkSet::from_json(br#"{"keys":[1]}"#),
        Err(JwkError::InvalidParameter("keys"))
    );
    assert_eq!(
        JwkSet::from_json(b"{}"),
        Err(JwkError::InvalidParameter("keys"))
    );
}

#[test]
fn jwk_set_limits() {
    let one = a3_public_json("");
    let many = format!(
        r#"{{"keys":[{}]}}"#,
        vec![one.as_str(); MAX_JWK_SET_KEYS + 1].join(",")
    );
    assert_eq!(
        JwkSet::from_json(many.as_bytes()),
        Err(JwkError::TooManyKeys)
    );
    let big = vec![b' '; MAX_JWK_SET_LEN + 1];
    assert_eq!(JwkSet::from_json(&big), Err(JwkError::TooLarge));
}

#[test]
fn jwk_set_serializes_as_keys_array() {
    let jwk = Jwk::from_json(a3_public_json(r#","kid":"a""#).as_bytes()).expect("parses");
    let set = JwkSet::new(vec![jwk]);
    let json = serde_json::to_vec(&set).expect("serializes");
    assert_eq!(JwkSet::from_json(&json), Ok(set));
}

#[test]
fn private_key_from_rfc7515_a3() {
    let json = a3_public_json(&format!(r#","d":"{A3_D}""#));
    let key = EcPrivateKey::from_jwk_json(json.as_bytes()).expect("private JWK parses");
    assert_eq!(base64url::encode(key.public_key().x()), A3_X);
    assert_eq!(base64url::encode(key.public_key().y()), A3_Y);
    assert_eq!(base64url::encode(&key.scalar()), A3_D);
}

#[test]
fn private_key_must_match_its_public_members() {
    let other = EcPrivateKey::generate(&mut test_rng());
    let d = base64url::encode(&other.scalar());
    let json = a3_public_json(&format!(r#","d":"{d}""#));
    assert_eq!(
        EcPrivateKey::from_jwk_json(json.as_bytes()),
        Err(JwkError::InvalidKey)
    );
    assert_eq!(
        EcPrivateKey::from_jwk_json(a3_public_json("").as_bytes()),
        Err(JwkError::InvalidParameter("d"))
    );
    let zero = base64url::encode(&[0u8; 32]);
    let json = a3_public_json(&format!(r#","d":"{zero}""#));
    assert_eq!(
        EcPrivateKey::from_jwk_json(json.as_bytes()),
        Err(JwkError::InvalidKey)
    );
}

#[test]
fn private_key_round_trips_and_redacts() {
    let key = EcPrivateKey::generate(&mut test_rng());
    let json = key.to_jwk_json(Some("key-1"));
    let back = EcPrivateKey::from_jwk_json(json.as_bytes()).expect("round trips");
    assert_eq!(back, key);
    let public = Jwk::from_map(
        &json::parse_object(json.as_bytes())
            .map(|mut m| {
                m.remove("d");
                m
            })
            .expect("object"),
    )
    .expect("public half parses");
    assert_eq!(public.kid(), Some("key-1"));

    let debug = format!("{key:?}");
    let d = base64url::encode(&key.scalar());
    assert!(!debug.contains(&d), "debug output leaks the scalar");
    assert!(debug.starts_with("EcPrivateKey"));
    assert_ne!(
        EcPrivateKey::generate(&mut test_rng()),
        EcPrivateKey::generate(&mut crate::test_rng_2())
    );
}

proptest! {
    #[test]
    fn generated_keys_round_trip_as_jwk(seed in any::<[u8; 32]>()) {
        use rand_core::SeedableRng;
        let key = EcPrivateKey::generate(&mut chacha20::ChaCha20Rng::from_seed(seed));
        let public = Jwk::new(PublicKey::EcP256(key.public_key().clone()));
        let json = serde_json::to_vec(&public).expect("serializes");
        prop_assert_eq!(Jwk::from_json(&json).expect("parses"), public);
        let private = EcPrivateKey::from_jwk_json(key.to_jwk_json(None).as_bytes()).expect("parses");
        prop_assert_eq!(private, key);
    }
}

#[test]
fn rsa_modulus_size_bounds_are_inclusive() {
    let modulus = |bits: usize| {
        let mut n = vec![0xff; bits.div_ceil(8)];
        n[0] = 0xff >> (n.len() * 8 - bits);
        n
    };
    let e = vec![1, 0, 1];
    for bits in [2048, 8192] {
        let key = RsaPublicKey::from_components(modulus(bits), e.clone()).expect("in range");
        assert_eq!(key.bits(), bits);
    }
    for bits in [2047, 8193] {
        assert_eq!(
            RsaPublicKey::from_components(modulus(bits), e.clone()),
            Err(JwkError::WeakRsaKey),
            "{bits}"
        );
    }
}

#[test]
fn jwk_set_skips_keys_it_cannot_use() {
    let p384 = format!(r#"{{"kty":"EC","crv":"P-384","x":"{A3_X}","y":"{A3_Y}"}}"#);
    let small_n = base64url::encode(&base64url::decode(RFC7638_N).expect("b64")[..128]);
    let weak = format!(r#"{{"kty":"RSA","n":"{small_n}","e":"AQAB"}}"#);
    let padded_n = format!("AA{RFC7638_N}");
    let padded = format!(r#"{{"kty":"RSA","n":"{padded_n}","e":"AQAB"}}"#);
    let missing = r#"{"kty":"EC","crv":"P-256"}"#;
    let off_curve = format!(r#"{{"kty":"EC","crv":"P-256","x":"{A3_X}","y":"{A3_X}"}}"#);
    let set = format!(
        r#"{{"keys":[{p384},{weak},{padded},{missing},{off_curve},{}]}}"#,
        a3_public_json(r#","kid":"good""#)
    );
    let parsed = JwkSet::from_json(set.as_bytes()).expect("parses");
    let kids: Vec<_> = parsed.keys().iter().map(Jwk::kid).collect();
    assert_eq!(kids, [Some("good")]);
}
