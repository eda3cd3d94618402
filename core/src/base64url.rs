//! Strict base64url without padding, as JOSE uses it ([RFC 7515 §2]).
//!
//! Decoding refuses padding, white space, characters outside the URL-safe alphabet
//! and encodings whose unused trailing bits are not zero, so every byte string has
//! exactly one accepted encoding. This matters for values that are compared as
//! strings after decoding (thumbprints, `ath`, PKCE challenges).
//!
//! [RFC 7515 §2]: https://www.rfc-editor.org/rfc/rfc7515#section-2

use base64ct::{Base64UrlUnpadded, Encoding};

/// The input was not strict unpadded base64url.
///
/// The error never includes the input, which may be a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid base64url")]
pub struct Base64UrlError;

/// Encodes bytes as base64url without padding.
#[must_use]
pub fn encode(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Appends the base64url encoding of `bytes` to `out`.
pub fn encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + Base64UrlUnpadded::encoded_len(bytes), 0);
    // The buffer was sized by `encoded_len` just above, so encoding cannot run out of room.
    let written = Base64UrlUnpadded::encode(bytes, &mut out[start..]).map_or(0, str::len);
    out.truncate(start + written);
}

/// The base64url SHA-256 of `bytes`: PKCE S256, DPoP `ath`, thumbprints.
#[must_use]
pub fn encode_sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    encode(&Sha256::digest(bytes))
}

/// Decodes strict unpadded base64url.
pub fn decode(encoded: &str) -> Result<Vec<u8>, Base64UrlError> {
    Base64UrlUnpadded::decode_vec(encoded).map_err(|_| Base64UrlError)
}

/// Decodes strict unpadded base64url into a buffer of exactly `N` bytes.
pub fn decode_array<const N: usize>(encoded: &str) -> Result<[u8; N], Base64UrlError> {
    let mut out = [0u8; N];
    let decoded = Base64UrlUnpadded::decode(encoded, &mut out).map_err(|_| Base64UrlError)?;
    if decoded.len() != N {
        return Err(Base64UrlError);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_without_padding_in_the_url_alphabet() {
        // RFC 4648 §10 test vectors, with padding removed and the URL alphabet.
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"f"), "Zg");
        assert_eq!(encode(b"fo"), "Zm8");
        assert_eq!(encode(b"foo"), "Zm9v");
        assert_eq!(encode(b"foob"), "Zm9vYg");
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn encode_into_appends() {
        let mut out = b"x.".to_vec();
        encode_into(b"foob", &mut out);
        assert_eq!(out, b"x.Zm9vYg");
    }

    #[test]
    fn rejects_padding() {
        assert_eq!(decode("Zg=="), Err(Base64UrlError));
        assert_eq!(decode("Zm8="), Err(Base64UrlError));
    }

    #[test]
    fn rejects_white_space() {
        assert_eq!(decode("Zm9v Yg"), Err(Base64UrlError));
        assert_eq!(decode("Zm9v\nYg"), Err(Base64UrlError));
        assert_eq!(decode(" Zm9v"), Err(Base64UrlError));
        assert_eq!(decode("Zm9v\t"), Err(Base64UrlError));
    }

    #[test]
    fn rejects_the_standard_alphabet() {
        assert_eq!(decode("-_8"), Ok(vec![0xfb, 0xff]));
        assert_eq!(decode("+/8"), Err(Base64UrlError));
    }

    #[test]
    fn rejects_non_canonical_trailing_bits() {
        // "Zg" is the one encoding of "f"; "Zh" differs only in the unused low bits.
        assert_eq!(decode("Zg"), Ok(b"f".to_vec()));
        assert_eq!(decode("Zh"), Err(Base64UrlError));
        assert_eq!(decode("Zm9"), Err(Base64UrlError));
    }

    #[test]
    fn rejects_impossible_lengths() {
        assert_eq!(decode("Z"), Err(Base64UrlError));
        assert_eq!(decode("Zm9vY"), Err(Base64UrlError));
    }

    #[test]
    fn decode_array_requires_the_exact_length() {
        assert_eq!(decode_array::<3>("Zm9v"), Ok(*b"foo"));
        assert_eq!(decode_array::<4>("Zm9v"), Err(Base64UrlError));
        assert_eq!(decode_array::<2>("Zm9v"), Err(Base64UrlError));
    }

    proptest! {
        #[test]
        fn round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let encoded = encode(&bytes);
            prop_assert!(!encoded.contains('='));
            prop_assert_eq!(decode(&encoded), Ok(bytes));
        }

        #[test]
        fn accepted_encodings_are_canonical(text in "[A-Za-z0-9_-]{0,64}") {
            if let Ok(bytes) = decode(&text) {
                prop_assert_eq!(encode(&bytes), text);
            }
        }
    }
}
