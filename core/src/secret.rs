//! Secret values: tokens, codes, verifiers, key material.
//!
//! Every secret type here follows the same rules:
//!
//! - `Debug` prints the type name and nothing of the value, so a secret inside a
//!   struct that derives `Debug` cannot reach a log line.
//! - There is no `Display`; the one accessor, [`secret()`](AccessToken::secret),
//!   says in its name what it hands out.
//! - Equality is constant-time in the contents (the length is not hidden).
//! - The memory holding the value is zeroized on drop.
//!
//! They implement `serde` traits so that pending logins and issued codes can be
//! stored by the caller; storing them is the only reason to serialize one.

use std::fmt;

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::base64url;

/// Defines a string secret newtype with redacted `Debug`, constant-time equality,
/// zeroize-on-drop and transparent serde.
macro_rules! secret_string {
    ($(#[$meta:meta])* $vis:vis struct $name:ident;) => {
        $(#[$meta])*
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        $vis struct $name(String);

        impl $name {
            /// Wraps a value received from elsewhere.
            #[must_use]
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret value.
            ///
            /// Security: hand it only to the party it is meant for; never log it,
            /// put it in an error message or in a URL that ends up in logs.
            #[must_use]
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                ::subtle::ConstantTimeEq::ct_eq(self.0.as_bytes(), other.0.as_bytes()).into()
            }
        }

        impl Eq for $name {}

        impl Drop for $name {
            fn drop(&mut self) {
                ::zeroize::Zeroize::zeroize(&mut self.0);
            }
        }
    };
}

pub(crate) use secret_string;

secret_string! {
    /// An OAuth access token ([RFC 6749 §1.4]), opaque to its holder.
    ///
    /// [RFC 6749 §1.4]: https://www.rfc-editor.org/rfc/rfc6749#section-1.4
    pub struct AccessToken;
}

secret_string! {
    /// An OAuth refresh token ([RFC 6749 §1.5]).
    ///
    /// [RFC 6749 §1.5]: https://www.rfc-editor.org/rfc/rfc6749#section-1.5
    pub struct RefreshToken;
}

secret_string! {
    /// An OAuth authorization code ([RFC 6749 §1.3.1]).
    ///
    /// [RFC 6749 §1.3.1]: https://www.rfc-editor.org/rfc/rfc6749#section-1.3.1
    pub struct AuthorizationCode;
}

/// Adds `generate`: 256 random bits from the caller's RNG, base64url encoded.
macro_rules! random_secret {
    ($($name:ident),+) => {$(
        impl $name {
            /// A fresh random value: 256 bits from `rng`, base64url encoded.
            #[must_use]
            pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
                Self(random_string(rng, 32))
            }
        }
    )+};
}

random_secret!(AccessToken, AuthorizationCode, RefreshToken);

/// Bytes that must stay secret, such as a private key in DER form.
#[derive(Clone)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of the bytes; they are zeroized when this value is dropped.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The secret bytes.
    ///
    /// Security: pass them only to the code that needs the key; never log them.
    #[must_use]
    pub fn secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBytes").finish_non_exhaustive()
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretBytes {}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// `len` random bytes from `rng`, base64url encoded. The intermediate buffer is zeroized.
pub(crate) fn random_string<R: CryptoRng + ?Sized>(rng: &mut R, len: usize) -> String {
    let mut bytes = zeroize::Zeroizing::new(vec![0u8; len]);
    rng.fill_bytes(&mut bytes);
    base64url::encode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng;

    #[test]
    fn debug_shows_only_the_type_name() {
        let token = AccessToken::new("sk-very-secret-value");
        assert_eq!(format!("{token:?}"), "AccessToken { .. }");
        assert_eq!(
            format!("{:?}", RefreshToken::new("abc")),
            "RefreshToken { .. }"
        );
        assert_eq!(
            format!("{:?}", AuthorizationCode::new("abc")),
            "AuthorizationCode { .. }"
        );
        let bytes = SecretBytes::new(b"private key".to_vec());
        assert_eq!(format!("{bytes:?}"), "SecretBytes { .. }");
    }

    #[test]
    fn equality_compares_contents() {
        assert_eq!(AccessToken::new("abc"), AccessToken::new("abc"));
        assert_ne!(AccessToken::new("abc"), AccessToken::new("abd"));
        assert_ne!(AccessToken::new("abc"), AccessToken::new("abcd"));
        assert_eq!(SecretBytes::new(vec![1, 2]), SecretBytes::new(vec![1, 2]));
        assert_ne!(SecretBytes::new(vec![1, 2]), SecretBytes::new(vec![1, 3]));
    }

    #[test]
    fn serializes_transparently_for_storage() {
        let code = AuthorizationCode::new("c0de");
        let json = serde_json::to_string(&code).expect("serializes");
        assert_eq!(json, "\"c0de\"");
        let back: AuthorizationCode = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, code);
    }

    #[test]
    fn generated_values_are_256_bit_and_distinct() {
        let mut rng = test_rng();
        let a = AccessToken::generate(&mut rng);
        let b = AccessToken::generate(&mut rng);
        assert_eq!(a.secret().len(), 43);
        assert_eq!(base64url::decode(a.secret()).expect("base64url").len(), 32);
        assert_ne!(a, b);
        assert_eq!(RefreshToken::generate(&mut rng).secret().len(), 43);
        assert_eq!(AuthorizationCode::generate(&mut rng).secret().len(), 43);
    }
}
