//! JWT registered claims ([RFC 7519 §4.1]) and their validation.
//!
//! [RFC 7519 §4.1]: https://www.rfc-editor.org/rfc/rfc7519#section-4.1

use std::time::Duration;

use serde_json::{Map, Value};

use crate::time::UnixTime;

/// Why a JWT's claims were refused. Messages name claims, never their values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    /// `aud` does not name the expected audience.
    #[error("jwt audience does not match")]
    AudienceMismatch,
    /// `exp` lies in the past, beyond the leeway.
    #[error("jwt has expired")]
    Expired,
    /// A claim has the wrong JSON type or an impossible value.
    #[error("jwt claim `{0}` is malformed")]
    InvalidClaim(&'static str),
    /// `iat` lies in the future, beyond the leeway.
    #[error("jwt was issued in the future")]
    IssuedInFuture,
    /// `iss` is not the expected issuer.
    #[error("jwt issuer does not match")]
    IssuerMismatch,
    /// A claim the validation requires is absent.
    #[error("jwt claim `{0}` is missing")]
    MissingClaim(&'static str),
    /// `nbf` lies in the future, beyond the leeway.
    #[error("jwt is not yet valid")]
    NotYetValid,
    /// `iat` is older than the allowed age.
    #[error("jwt was issued too long ago")]
    TooOld,
}

/// What to check of a JWT's registered claims.
///
/// The leeway is explicit: clocks differ, and how much they may differ is a
/// decision for the caller, not a default hidden here. `exp` is required unless
/// [`without_required_exp`](Self::without_required_exp) says otherwise.
#[derive(Clone, Debug)]
#[must_use]
pub struct ClaimsValidation<'a> {
    now: UnixTime,
    leeway: Duration,
    issuer: Option<&'a str>,
    audience: Option<&'a str>,
    require_exp: bool,
    require_iat: bool,
    max_age: Option<Duration>,
}

impl<'a> ClaimsValidation<'a> {
    /// Validation at time `now`, tolerating clock differences of `leeway`.
    pub fn new(now: UnixTime, leeway: Duration) -> Self {
        Self {
            now,
            leeway,
            issuer: None,
            audience: None,
            require_exp: true,
            require_iat: false,
            max_age: None,
        }
    }

    /// Requires `iss` to equal `issuer` exactly.
    pub fn with_issuer(mut self, issuer: &'a str) -> Self {
        self.issuer = Some(issuer);
        self
    }

    /// Requires `aud` to be `audience`, or an array that contains it.
    pub fn with_audience(mut self, audience: &'a str) -> Self {
        self.audience = Some(audience);
        self
    }

    /// Accepts a JWT without `exp` (one that is still checked if present).
    pub fn without_required_exp(mut self) -> Self {
        self.require_exp = false;
        self
    }

    /// Requires `iat`.
    pub fn with_required_iat(mut self) -> Self {
        self.require_iat = true;
        self
    }

    /// Requires `iat` and refuses JWTs issued more than `max_age` (plus leeway) ago.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.require_iat = true;
        self.max_age = Some(max_age);
        self
    }
}

/// `aud`: one audience or several ([RFC 7519 §4.1.3]).
///
/// [RFC 7519 §4.1.3]: https://www.rfc-editor.org/rfc/rfc7519#section-4.1.3
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    /// An array of audiences.
    Many(Vec<String>),
    /// A single audience string.
    One(String),
}

impl Audience {
    /// Whether `audience` is, or is among, these audiences.
    #[must_use]
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::Many(all) => all.iter().any(|a| a == audience),
            Self::One(one) => one == audience,
        }
    }
}

/// The registered claims of a JWT, type-checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegisteredClaims {
    /// `iss`.
    pub iss: Option<String>,
    /// `sub`.
    pub sub: Option<String>,
    /// `aud`.
    pub aud: Option<Audience>,
    /// `exp`.
    pub exp: Option<UnixTime>,
    /// `nbf`.
    pub nbf: Option<UnixTime>,
    /// `iat`.
    pub iat: Option<UnixTime>,
    /// `jti`.
    pub jti: Option<String>,
}

impl RegisteredClaims {
    /// Reads the registered claims of a claims set, checking their JSON types.
    pub fn from_map(claims: &Map<String, Value>) -> Result<Self, ClaimsError> {
        let aud = match claims.get("aud") {
            None => None,
            Some(Value::String(one)) => Some(Audience::One(one.clone())),
            Some(Value::Array(many)) => {
                let many = many
                    .iter()
                    .map(|a| a.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or(ClaimsError::InvalidClaim("aud"))?;
                Some(Audience::Many(many))
            }
            Some(_) => return Err(ClaimsError::InvalidClaim("aud")),
        };
        Ok(Self {
            iss: string_claim(claims, "iss")?,
            sub: string_claim(claims, "sub")?,
            aud,
            exp: date_claim(claims, "exp")?,
            nbf: date_claim(claims, "nbf")?,
            iat: date_claim(claims, "iat")?,
            jti: string_claim(claims, "jti")?,
        })
    }

    /// Applies `validation` to these claims.
    pub fn validate(&self, validation: &ClaimsValidation<'_>) -> Result<(), ClaimsError> {
        let now = validation.now;
        let leeway = validation.leeway;
        if let Some(issuer) = validation.issuer {
            let iss = self
                .iss
                .as_deref()
                .ok_or(ClaimsError::MissingClaim("iss"))?;
            if iss != issuer {
                return Err(ClaimsError::IssuerMismatch);
            }
        }
        if let Some(audience) = validation.audience {
            let aud = self.aud.as_ref().ok_or(ClaimsError::MissingClaim("aud"))?;
            if !aud.contains(audience) {
                return Err(ClaimsError::AudienceMismatch);
            }
        }
        match self.exp {
            // Expired "on or after" exp (RFC 7519 §4.1.4).
            Some(exp) if now >= exp.saturating_add(leeway) => return Err(ClaimsError::Expired),
            None if validation.require_exp => return Err(ClaimsError::MissingClaim("exp")),
            _ => {}
        }
        if let Some(nbf) = self.nbf
            && now.saturating_add(leeway) < nbf
        {
            return Err(ClaimsError::NotYetValid);
        }
        match self.iat {
            Some(iat) => {
                if iat > now.saturating_add(leeway) {
                    return Err(ClaimsError::IssuedInFuture);
                }
                if let Some(max_age) = validation.max_age
                    && now > iat.saturating_add(max_age).saturating_add(leeway)
                {
                    return Err(ClaimsError::TooOld);
                }
            }
            None if validation.require_iat => return Err(ClaimsError::MissingClaim("iat")),
            None => {}
        }
        Ok(())
    }
}

fn string_claim(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, ClaimsError> {
    let value = crate::json::optional_str(claims, name).map_err(ClaimsError::InvalidClaim)?;
    Ok(value.map(str::to_owned))
}

/// A `NumericDate`: a non-negative JSON number of seconds; fractions are dropped.
fn date_claim(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<UnixTime>, ClaimsError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let number = value.as_number().ok_or(ClaimsError::InvalidClaim(name))?;
    if let Some(secs) = number.as_u64() {
        return Ok(Some(UnixTime::from_secs(secs)));
    }
    match number.as_f64() {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "the range is checked first; dropping the fraction is intended"
        )]
        Some(secs) if (0.0..1.0e15).contains(&secs) => Ok(Some(UnixTime::from_secs(secs as u64))),
        _ => Err(ClaimsError::InvalidClaim(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
    const LEEWAY: Duration = Duration::from_secs(30);

    fn claims(value: Value) -> RegisteredClaims {
        let Value::Object(map) = value else {
            panic!("test claims must be an object")
        };
        RegisteredClaims::from_map(&map).expect("well-typed claims")
    }

    fn check(value: Value, validation: &ClaimsValidation<'_>) -> Result<(), ClaimsError> {
        claims(value).validate(validation)
    }

    fn base() -> ClaimsValidation<'static> {
        ClaimsValidation::new(NOW, LEEWAY)
    }

    #[test]
    fn accepts_a_valid_set() {
        let v = base()
            .with_issuer("https://as")
            .with_audience("client")
            .with_max_age(Duration::from_secs(60));
        let ok = json!({"iss": "https://as", "aud": "client", "exp": 1_700_000_100,
                        "iat": 1_699_999_990, "nbf": 1_699_999_990});
        assert_eq!(check(ok, &v), Ok(()));
    }

    #[test]
    fn issuer_must_match_exactly() {
        let v = base().with_issuer("https://as");
        let exp = 1_700_000_100;
        assert_eq!(
            check(json!({"iss": "https://as/", "exp": exp}), &v),
            Err(ClaimsError::IssuerMismatch)
        );
        assert_eq!(
            check(json!({"exp": exp}), &v),
            Err(ClaimsError::MissingClaim("iss"))
        );
    }

    #[test]
    fn audience_may_be_a_string_or_an_array() {
        let v = base().with_audience("client");
        let exp = 1_700_000_100;
        assert_eq!(check(json!({"aud": "client", "exp": exp}), &v), Ok(()));
        assert_eq!(
            check(json!({"aud": ["x", "client"], "exp": exp}), &v),
            Ok(())
        );
        assert_eq!(
            check(json!({"aud": ["x"], "exp": exp}), &v),
            Err(ClaimsError::AudienceMismatch)
        );
        assert_eq!(
            check(json!({"aud": "other", "exp": exp}), &v),
            Err(ClaimsError::AudienceMismatch)
        );
        assert_eq!(
            check(json!({"exp": exp}), &v),
            Err(ClaimsError::MissingClaim("aud"))
        );
    }

    #[test]
    fn exp_is_required_and_honours_the_leeway() {
        assert_eq!(
            check(json!({}), &base()),
            Err(ClaimsError::MissingClaim("exp"))
        );
        assert_eq!(check(json!({}), &base().without_required_exp()), Ok(()));
        // Still valid 29 s after exp with 30 s leeway; expired at exactly exp + leeway.
        assert_eq!(check(json!({"exp": 1_699_999_971}), &base()), Ok(()));
        assert_eq!(
            check(json!({"exp": 1_699_999_970}), &base()),
            Err(ClaimsError::Expired)
        );
        let no_leeway = ClaimsValidation::new(NOW, Duration::ZERO);
        assert_eq!(
            check(json!({"exp": 1_700_000_000}), &no_leeway),
            Err(ClaimsError::Expired)
        );
        assert_eq!(
            check(
                json!({"exp": 1_699_999_000}),
                &base().without_required_exp()
            ),
            Err(ClaimsError::Expired)
        );
    }

    #[test]
    fn nbf_honours_the_leeway() {
        let v = base().without_required_exp();
        assert_eq!(check(json!({"nbf": 1_700_000_030}), &v), Ok(()));
        assert_eq!(
            check(json!({"nbf": 1_700_000_031}), &v),
            Err(ClaimsError::NotYetValid)
        );
    }

    #[test]
    fn iat_in_the_future_and_too_old() {
        let v = base()
            .without_required_exp()
            .with_max_age(Duration::from_secs(60));
        assert_eq!(check(json!({"iat": 1_700_000_030}), &v), Ok(()));
        assert_eq!(
            check(json!({"iat": 1_700_000_031}), &v),
            Err(ClaimsError::IssuedInFuture)
        );
        assert_eq!(check(json!({"iat": 1_699_999_910}), &v), Ok(()));
        assert_eq!(
            check(json!({"iat": 1_699_999_909}), &v),
            Err(ClaimsError::TooOld)
        );
        assert_eq!(check(json!({}), &v), Err(ClaimsError::MissingClaim("iat")));
        let plain = base().without_required_exp().with_required_iat();
        assert_eq!(
            check(json!({}), &plain),
            Err(ClaimsError::MissingClaim("iat"))
        );
        assert_eq!(
            check(
                json!({"iat": 1_800_000_000}),
                &base().without_required_exp()
            ),
            Err(ClaimsError::IssuedInFuture)
        );
    }

    #[test]
    fn claims_of_the_wrong_type_are_refused() {
        for (value, name) in [
            (json!({"iss": 1}), "iss"),
            (json!({"sub": null}), "sub"),
            (json!({"aud": 1}), "aud"),
            (json!({"aud": ["a", 1]}), "aud"),
            (json!({"exp": "1"}), "exp"),
            (json!({"exp": -1}), "exp"),
            (json!({"nbf": 1e300}), "nbf"),
            (json!({"iat": true}), "iat"),
            (json!({"jti": []}), "jti"),
        ] {
            let Value::Object(map) = value else {
                unreachable!()
            };
            assert_eq!(
                RegisteredClaims::from_map(&map),
                Err(ClaimsError::InvalidClaim(name))
            );
        }
    }

    #[test]
    fn fractional_dates_are_floored() {
        let c = claims(json!({"exp": 1_700_000_000.9}));
        assert_eq!(c.exp, Some(UnixTime::from_secs(1_700_000_000)));
    }
}
