//! Handles, DIDs and the identifiers people type, parsed once at the edge.
//!
//! The rules are those of the atproto specifications for handles and DIDs:
//! a [`Handle`] is a lower-cased DNS name of at least two labels whose top-level
//! domain is not reserved, a [`Did`] follows the generic DID syntax with atproto's
//! narrower character set, and only the blessed methods `did:plc` and `did:web`
//! resolve. Parsing keeps three failures apart: bad syntax, a well-formed name
//! atproto does not resolve (reserved TLD, other DID method), and, later, a
//! resolution that fails.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Whether development names and transports are allowed.
///
/// Production is the default: handles under `.test`, `http` URLs, ports other
/// than 443 and `did:web` on `localhost` are refused. Development allows them, for
/// a PDS and PLC directory running on the developer's own machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Local development and tests.
    Development,
    /// Everything else.
    #[default]
    Production,
}

/// The longest handle, in characters.
pub const MAX_HANDLE_LEN: usize = 253;

/// The longest DID, in characters.
pub const MAX_DID_LEN: usize = 2048;

/// Top-level domains under which handles never resolve.
const RESERVED_TLDS: [&str; 8] = [
    "alt",
    "arpa",
    "example",
    "internal",
    "invalid",
    "local",
    "localhost",
    "onion",
];

/// Why a handle was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// The handle is under `.test`, which only development mode allows.
    #[error("the handle {0} is under .test, which is for development only")]
    DevelopmentOnly(String),
    /// The handle is under a top-level domain reserved for non-public names.
    #[error("the handle {0} is under a reserved top-level domain and cannot be resolved")]
    ReservedTld(String),
    /// The text is not a syntactically valid handle.
    #[error("not a valid handle: {0}")]
    Syntax(&'static str),
}

/// An atproto handle: a DNS name, normalised to lower case.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(String);

impl Handle {
    /// Parses and normalises a handle, refusing reserved top-level domains and, in
    /// production, `.test`.
    pub fn parse(input: &str, mode: Mode) -> Result<Self, HandleError> {
        let handle = Self::parse_syntax(input)?;
        let tld = handle.0.rsplit('.').next().unwrap_or_default();
        if RESERVED_TLDS.contains(&tld) {
            return Err(HandleError::ReservedTld(handle.0));
        }
        if tld == "test" && mode == Mode::Production {
            return Err(HandleError::DevelopmentOnly(handle.0));
        }
        Ok(handle)
    }

    /// Checks only the syntax and lower-cases; reserved TLDs pass.
    pub fn parse_syntax(input: &str) -> Result<Self, HandleError> {
        if input.is_empty() {
            return Err(HandleError::Syntax("empty"));
        }
        if input.len() > MAX_HANDLE_LEN {
            return Err(HandleError::Syntax("longer than 253 characters"));
        }
        if !input.is_ascii() {
            return Err(HandleError::Syntax(
                "only ASCII letters, digits, hyphens and dots",
            ));
        }
        let labels: Vec<&str> = input.split('.').collect();
        if labels.len() < 2 {
            return Err(HandleError::Syntax(
                "needs at least two labels, such as alice.example.com",
            ));
        }
        for label in &labels {
            if label.is_empty() {
                return Err(HandleError::Syntax(
                    "empty label (two dots in a row, or a dot at an end)",
                ));
            }
            if label.len() > 63 {
                return Err(HandleError::Syntax("label longer than 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(HandleError::Syntax(
                    "only ASCII letters, digits, hyphens and dots",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(HandleError::Syntax("a label starts or ends with a hyphen"));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.starts_with(|c: char| c.is_ascii_digit()))
        {
            return Err(HandleError::Syntax(
                "the top-level domain starts with a digit",
            ));
        }
        Ok(Self(input.to_ascii_lowercase()))
    }

    /// The normalised handle.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({})", self.0)
    }
}

/// Why a DID was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DidError {
    /// The text is not a syntactically valid DID.
    #[error("not a valid DID: {0}")]
    Syntax(&'static str),
    /// A well-formed DID whose method atproto does not use (only `plc` and `web`).
    #[error("DID method `{0}` is not supported; atproto uses did:plc and did:web")]
    UnsupportedMethod(String),
    /// A `did:web` that is well-formed but not usable here (a path, a port, a bad host).
    #[error("unusable did:web: {0}")]
    UnsupportedWeb(&'static str),
}

/// A DID of one of the methods atproto resolves: `did:plc` or `did:web`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did(String);

/// The method of a [`Did`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DidMethod {
    /// `did:plc`, resolved through a PLC directory.
    Plc,
    /// `did:web`, resolved from the host's `/.well-known/did.json`.
    Web,
}

impl Did {
    /// Parses a DID, refusing other methods than `plc` and `web`, and `did:web`
    /// with a path, or with a port (except `localhost` in development).
    pub fn parse(input: &str, mode: Mode) -> Result<Self, DidError> {
        check_did_syntax(input)?;
        let rest = &input[4..];
        let (method, id) = rest.split_once(':').ok_or(DidError::Syntax("no method"))?;
        match method {
            "plc" => {
                // did:plc identifiers are 24 characters of lower-case base32.
                let base32 = |b: u8| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b);
                if id.len() != 24 || !id.bytes().all(base32) {
                    return Err(DidError::Syntax(
                        "a did:plc identifier is 24 base32 characters",
                    ));
                }
            }
            "web" => check_did_web(id, mode)?,
            other => return Err(DidError::UnsupportedMethod(other.to_owned())),
        }
        Ok(Self(input.to_owned()))
    }

    /// The DID text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The method.
    #[must_use]
    pub fn method(&self) -> DidMethod {
        if self.0.starts_with("did:plc:") {
            DidMethod::Plc
        } else {
            DidMethod::Web
        }
    }

    /// For `did:web`, the host in lower case (with `:port` in development),
    /// percent-decoded.
    #[must_use]
    pub fn web_host(&self) -> Option<String> {
        let id = self.0.strip_prefix("did:web:")?;
        Some(
            id.replace("%3A", ":")
                .replace("%3a", ":")
                .to_ascii_lowercase(),
        )
    }
}

/// The generic DID syntax as atproto narrows it.
fn check_did_syntax(input: &str) -> Result<(), DidError> {
    if input.len() > MAX_DID_LEN {
        return Err(DidError::Syntax("longer than 2048 characters"));
    }
    let rest = input
        .strip_prefix("did:")
        .ok_or(DidError::Syntax("does not start with did:"))?;
    let (method, id) = rest.split_once(':').ok_or(DidError::Syntax("no method"))?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(DidError::Syntax("the method is not lower-case letters"));
    }
    let allowed =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'%' | b'-');
    if id.is_empty() || !id.bytes().all(allowed) {
        return Err(DidError::Syntax(
            "the identifier has characters outside [a-zA-Z0-9._:%-]",
        ));
    }
    if id.ends_with(':') || id.ends_with('%') {
        return Err(DidError::Syntax("the identifier ends with : or %"));
    }
    let bytes = id.as_bytes();
    for (i, _) in id.match_indices('%') {
        let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
        if !hex(i + 1) || !hex(i + 2) {
            return Err(DidError::Syntax("% is not followed by two hex digits"));
        }
    }
    Ok(())
}

fn check_did_web(id: &str, mode: Mode) -> Result<(), DidError> {
    if id.contains(':') {
        return Err(DidError::UnsupportedWeb(
            "did:web with a path is not supported",
        ));
    }
    let (host, port) = match id.split_once("%3A").or_else(|| id.split_once("%3a")) {
        Some((host, port)) => (host, Some(port)),
        None => (id, None),
    };
    if host.contains('%') {
        return Err(DidError::UnsupportedWeb(
            "the host holds percent-encoded characters",
        ));
    }
    if let Some(port) = port {
        let localhost = host.eq_ignore_ascii_case("localhost");
        if !(localhost && mode == Mode::Development) {
            return Err(DidError::UnsupportedWeb(
                "a port is allowed only for localhost in development",
            ));
        }
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DidError::UnsupportedWeb("the port is not a number"));
        }
        return Ok(());
    }
    if host.eq_ignore_ascii_case("localhost") {
        return match mode {
            Mode::Development => Ok(()),
            Mode::Production => Err(DidError::UnsupportedWeb(
                "did:web:localhost is for development only",
            )),
        };
    }
    Handle::parse_syntax(host)
        .map_err(|_| DidError::UnsupportedWeb("the host is not a DNS name"))?;
    Ok(())
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Did({})", self.0)
    }
}

impl Serialize for Did {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Did {
    /// Deserializes stored DIDs in development mode: a stored value was checked
    /// under the mode in force when it was stored.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text, Mode::Development).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Handle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Handle {
    /// Deserializes stored handles with the syntax check only.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_syntax(&text).map_err(serde::de::Error::custom)
    }
}

/// What a person typed to sign in: a handle or a DID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AtIdentifier {
    /// A DID.
    Did(Did),
    /// A handle.
    Handle(Handle),
}

/// Why a typed identifier was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AtIdentifierError {
    /// It starts with `did:` but is not an acceptable DID.
    #[error(transparent)]
    Did(#[from] DidError),
    /// It is not an acceptable handle.
    #[error(transparent)]
    Handle(#[from] HandleError),
}

impl AtIdentifier {
    /// Parses what a person typed: surrounding white space and one leading `@`
    /// are dropped; text starting with `did:` (in any case, so that `DID:plc:…`
    /// gets the DID error it deserves) is a DID, anything else a handle.
    pub fn parse(input: &str, mode: Mode) -> Result<Self, AtIdentifierError> {
        let trimmed = input.trim();
        let trimmed = trimmed.strip_prefix('@').unwrap_or(trimmed);
        if trimmed
            .get(..4)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("did:"))
        {
            Ok(Self::Did(Did::parse(trimmed, mode)?))
        } else {
            Ok(Self::Handle(Handle::parse(trimmed, mode)?))
        }
    }
}

impl fmt::Display for AtIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Did(did) => did.fmt(f),
            Self::Handle(handle) => handle.fmt(f),
        }
    }
}

impl FromStr for Handle {
    type Err = HandleError;

    /// Parses a production handle.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s, Mode::Production)
    }
}

impl FromStr for Did {
    type Err = DidError;

    /// Parses a production DID.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s, Mode::Production)
    }
}

#[cfg(test)]
mod tests;
