//! Proof Key for Code Exchange ([RFC 7636]) with the S256 method only.
//!
//! `plain` is refused everywhere: the atproto OAuth profile forbids it and OAuth
//! 2.1 deprecates it. The client side generates a [`PkceVerifier`] from the
//! caller's RNG and sends its [`PkceChallenge`]; the server side stores the
//! challenge and later checks the verifier with [`PkceChallenge::verify`], in
//! constant time.
//!
//! [RFC 7636]: https://www.rfc-editor.org/rfc/rfc7636

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;

use crate::base64url;
use crate::secret::secret_string;

/// Why a PKCE value or check was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkceError {
    /// The challenge is not 43 characters of base64url (the S256 output size).
    #[error("malformed code_challenge")]
    InvalidChallenge,
    /// The verifier is not 43 to 128 unreserved characters.
    #[error("malformed code_verifier")]
    InvalidVerifier,
    /// The verifier does not match the challenge.
    #[error("code_verifier does not match code_challenge")]
    Mismatch,
    /// `code_challenge_method` is `plain` or unknown.
    #[error("unsupported code_challenge_method")]
    UnsupportedMethod,
}

secret_string! {
    /// A PKCE `code_verifier` ([RFC 7636 §4.1]).
    ///
    /// [RFC 7636 §4.1]: https://www.rfc-editor.org/rfc/rfc7636#section-4.1
    pub struct PkceVerifier;
}

impl PkceVerifier {
    /// A fresh verifier: 32 bytes from `rng`, base64url encoded to 43 characters,
    /// as RFC 7636 §4.1 recommends.
    #[must_use]
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::new(crate::secret::random_string(rng, 32))
    }

    /// Checks the syntax of a verifier received from a client:
    /// 43 to 128 characters of `[A-Za-z0-9-._~]`.
    pub fn parse(value: &str) -> Result<Self, PkceError> {
        check_verifier_syntax(value)?;
        Ok(Self::new(value))
    }

    /// The S256 challenge of this verifier.
    #[must_use]
    pub fn challenge(&self) -> PkceChallenge {
        PkceChallenge(s256(self.secret()))
    }
}

/// The only supported `code_challenge_method`.
pub const METHOD_S256: &str = "S256";

/// Checks a `code_challenge_method` parameter: only `S256` is accepted.
pub fn check_method(method: &str) -> Result<(), PkceError> {
    if method == METHOD_S256 {
        Ok(())
    } else {
        Err(PkceError::UnsupportedMethod)
    }
}

/// An S256 `code_challenge`: `BASE64URL(SHA256(ASCII(code_verifier)))`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct PkceChallenge(String);

impl PkceChallenge {
    /// Checks the syntax of a challenge received from a client: 43 characters that
    /// decode strictly to 32 bytes.
    pub fn parse(value: &str) -> Result<Self, PkceError> {
        if value.len() != 43 || base64url::decode_array::<32>(value).is_err() {
            return Err(PkceError::InvalidChallenge);
        }
        Ok(Self(value.to_owned()))
    }

    /// The challenge text, as sent in `code_challenge`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The method name to send with it, always `S256`.
    #[must_use]
    pub fn method(&self) -> &'static str {
        METHOD_S256
    }

    /// Checks `verifier` against this challenge in constant time. A verifier that
    /// breaks the RFC 7636 syntax is refused, even one made with `new`.
    pub fn verify(&self, verifier: &PkceVerifier) -> Result<(), PkceError> {
        check_verifier_syntax(verifier.secret())?;
        let computed = s256(verifier.secret());
        if bool::from(computed.as_bytes().ct_eq(self.0.as_bytes())) {
            Ok(())
        } else {
            Err(PkceError::Mismatch)
        }
    }
}

fn s256(verifier: &str) -> String {
    base64url::encode_sha256(verifier.as_bytes())
}

/// 43 to 128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
fn check_verifier_syntax(value: &str) -> Result<(), PkceError> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if (43..=128).contains(&value.len()) && value.bytes().all(unreserved) {
        Ok(())
    } else {
        Err(PkceError::InvalidVerifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng;
    use proptest::prelude::*;

    // RFC 7636 Appendix B.
    const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b() {
        let verifier = PkceVerifier::parse(RFC_VERIFIER).expect("valid verifier");
        assert_eq!(verifier.challenge().as_str(), RFC_CHALLENGE);
        let challenge = PkceChallenge::parse(RFC_CHALLENGE).expect("valid challenge");
        assert_eq!(challenge.verify(&verifier), Ok(()));
    }

    #[test]
    fn rfc7636_appendix_b_verifier_octets() {
        // The 32 octets of Appendix B, encoded, give the same verifier.
        let octets = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        assert_eq!(base64url::encode(&octets), RFC_VERIFIER);
    }

    #[test]
    fn verify_checks_the_verifier_syntax_too() {
        let short = PkceVerifier::new("abc");
        let challenge = short.challenge();
        assert_eq!(challenge.verify(&short), Err(PkceError::InvalidVerifier));
    }

    #[test]
    fn wrong_verifier_is_a_mismatch() {
        let challenge = PkceChallenge::parse(RFC_CHALLENGE).expect("valid challenge");
        let other = PkceVerifier::parse(&"a".repeat(43)).expect("valid verifier");
        assert_eq!(challenge.verify(&other), Err(PkceError::Mismatch));
    }

    #[test]
    fn plain_and_unknown_methods_are_refused() {
        assert_eq!(check_method("S256"), Ok(()));
        assert_eq!(check_method("plain"), Err(PkceError::UnsupportedMethod));
        assert_eq!(check_method("s256"), Err(PkceError::UnsupportedMethod));
        assert_eq!(check_method(""), Err(PkceError::UnsupportedMethod));
    }

    #[test]
    fn verifier_syntax() {
        assert!(PkceVerifier::parse(&"a".repeat(42)).is_err());
        assert!(PkceVerifier::parse(&"a".repeat(129)).is_err());
        assert!(PkceVerifier::parse(&"a".repeat(128)).is_ok());
        assert!(PkceVerifier::parse(&format!("{}~._-", "A".repeat(40))).is_ok());
        assert_eq!(
            PkceVerifier::parse(&format!("{}+", "a".repeat(42))),
            Err(PkceError::InvalidVerifier)
        );
        assert_eq!(
            PkceVerifier::parse(&format!("{} ", "a".repeat(42))),
            Err(PkceError::InvalidVerifier)
        );
    }

    #[test]
    fn challenge_syntax() {
        // A plain challenge (the verifier itself) is longer or shorter than 43 most times;
        // 43 characters that are not canonical base64url are refused too.
        assert_eq!(
            PkceChallenge::parse(&"a".repeat(44)),
            Err(PkceError::InvalidChallenge)
        );
        assert_eq!(
            PkceChallenge::parse(&"a".repeat(42)),
            Err(PkceError::InvalidChallenge)
        );
        assert_eq!(
            PkceChallenge::parse(&format!("{}=", "a".repeat(42))),
            Err(PkceError::InvalidChallenge)
        );
        assert_eq!(
            PkceChallenge::parse(&format!("{}~", "a".repeat(42))),
            Err(PkceError::InvalidChallenge)
        );
        // Non-canonical trailing bits: the last character of 43 carries 2 unused bits.
        assert_eq!(
            PkceChallenge::parse(&format!("{}B", "a".repeat(42))),
            Err(PkceError::InvalidChallenge)
        );
    }

    #[test]
    fn generated_verifiers_are_fresh_and_well_formed() {
        let mut rng = test_rng();
        let a = PkceVerifier::generate(&mut rng);
        let b = PkceVerifier::generate(&mut rng);
        assert_ne!(a, b);
        assert_eq!(a.secret().len(), 43);
        assert!(PkceVerifier::parse(a.secret()).is_ok());
        assert_eq!(format!("{a:?}"), "PkceVerifier { .. }");
    }

    proptest! {
        #[test]
        fn every_generated_pair_verifies(seed in any::<[u8; 32]>()) {
            use rand_core::SeedableRng;
            let mut rng = chacha20::ChaCha20Rng::from_seed(seed);
            let verifier = PkceVerifier::generate(&mut rng);
            let challenge = PkceChallenge::parse(verifier.challenge().as_str()).expect("well-formed");
            prop_assert_eq!(challenge.verify(&verifier), Ok(()));
        }
    }
}
