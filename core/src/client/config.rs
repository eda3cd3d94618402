//! The client atlogin is toward authorization servers, and the documents it publishes.
//!
//! Two kinds of client:
//!
//! - **Confidential**: the `client_id` is the https URL of the client ID metadata
//!   document ([`ClientConfig::metadata_document`]); the client authenticates
//!   with `private_key_jwt` and ES256 keys published as a JWK Set, inline or at
//!   `jwks_uri`. Keys rotate: several may be configured, each with a `kid`, and
//!   new sessions use the newest (the last one given).
//! - **Loopback** (development): the `client_id` is
//!   `http://localhost?redirect_uri=…&scope=…` and the client is public, with no
//!   client authentication. A server reachable only at 127.0.0.1 can sign people
//!   in at a real PDS this way, with no public URL.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value, json};
use url::Url;

use crate::identity::IdentityConfig;
use crate::jose::{Algorithm, CryptoProvider, DefaultProvider, JwkSet, JwsSigningKey};

/// Why a client configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientConfigError {
    /// The `client_id` URL breaks a rule of the atproto profile.
    #[error("the client_id {url} is unusable: {reason}")]
    ClientId {
        /// The URL given.
        url: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A client key is unusable.
    #[error("client keys: {0}")]
    Keys(&'static str),
    /// A redirect URI is unusable.
    #[error("the redirect URI {url} is unusable: {reason}")]
    RedirectUri {
        /// The URI given.
        url: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The scope is malformed or lacks `atproto`.
    #[error("scope: {0}")]
    Scope(&'static str),
    /// A setting that only a confidential client has was given to the loopback client.
    #[error("the loopback client has no {0}")]
    Loopback(&'static str),
    /// A `client_uri`, `logo_uri`, `tos_uri`, `policy_uri` or `jwks_uri` is unusable.
    #[error("{field} is unusable: {reason}")]
    Uri {
        /// The metadata member.
        field: &'static str,
        /// The rule it breaks.
        reason: &'static str,
    },
}

/// An OAuth scope: distinct space-separated tokens ([RFC 6749 §3.3]).
///
/// [RFC 6749 §3.3]: https://www.rfc-editor.org/rfc/rfc6749#section-3.3
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(Vec<String>);

impl Scope {
    /// `atproto` alone: enough to learn who someone is.
    #[must_use]
    pub fn atproto() -> Self {
        Self(vec!["atproto".to_owned()])
    }

    /// Parses a space-separated scope. Duplicates are dropped; every token is
    /// printable ASCII without `"` or `\`.
    pub fn parse(text: &str) -> Result<Self, ClientConfigError> {
        let mut tokens: Vec<String> = Vec::new();
        for token in text.split(' ') {
            if token.is_empty() {
                return Err(ClientConfigError::Scope(
                    "empty scope token (doubled or edge space)",
                ));
            }
            if !token
                .bytes()
                .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
            {
                return Err(ClientConfigError::Scope(
                    "a scope token holds a character outside NQCHAR",
                ));
            }
            if !tokens.iter().any(|t| t == token) {
                tokens.push(token.to_owned());
            }
        }
        Ok(Self(tokens))
    }

    /// Whether the scope holds this token.
    #[must_use]
    pub fn contains(&self, token: &str) -> bool {
        self.0.iter().any(|t| t == token)
    }

    /// Whether every token of this scope is in `other`.
    #[must_use]
    pub fn is_subset_of(&self, other: &Self) -> bool {
        self.0.iter().all(|t| other.contains(t))
    }

    /// The tokens.
    #[must_use]
    pub fn tokens(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

impl TryFrom<String> for Scope {
    type Error = ClientConfigError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Scope> for String {
    fn from(scope: Scope) -> Self {
        scope.to_string()
    }
}

/// Where the client's public keys are published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Jwks {
    /// Inline in the metadata document, as `jwks`.
    Inline,
    /// At this https URL, as `jwks_uri`.
    Uri(Url),
}

/// Who the client is.
#[derive(Clone, Debug)]
enum Kind {
    Confidential {
        client_id: Url,
        keys: Vec<JwsSigningKey>,
        jwks: Jwks,
    },
    Loopback {
        client_id: String,
    },
}

/// Optional descriptive members of the metadata document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Names {
    client_name: Option<String>,
    client_uri: Option<Url>,
    logo_uri: Option<Url>,
    tos_uri: Option<Url>,
    policy_uri: Option<Url>,
}

/// The atproto OAuth client configuration.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    kind: Kind,
    redirect_uris: Vec<Url>,
    scope: Scope,
    names: Names,
    identity: IdentityConfig,
    login_lifetime: Duration,
    provider: &'static dyn CryptoProvider,
}

/// How long a started login waits for the browser to come back, by default.
pub const DEFAULT_LOGIN_LIFETIME: Duration = Duration::from_secs(10 * 60);

impl ClientConfig {
    /// A confidential client whose metadata document is served at `client_id`.
    ///
    /// `keys` are ES256 keys with distinct `kid`s, oldest first; new sessions use
    /// the last. The scope starts as `atproto`.
    pub fn confidential(
        client_id: Url,
        redirect_uris: Vec<Url>,
        keys: Vec<JwsSigningKey>,
    ) -> Result<Self, ClientConfigError> {
        check_client_id(&client_id)?;
        if redirect_uris.is_empty() {
            return Err(ClientConfigError::RedirectUri {
                url: String::new(),
                reason: "none given",
            });
        }
        for uri in &redirect_uris {
            check_web_redirect_uri(uri)?;
        }
        check_keys(&keys)?;
        Ok(Self {
            kind: Kind::Confidential {
                client_id,
                keys,
                jwks: Jwks::Inline,
            },
            redirect_uris,
            scope: Scope::atproto(),
            names: Names::default(),
            identity: IdentityConfig::default(),
            login_lifetime: DEFAULT_LOGIN_LIFETIME,
            provider: DefaultProvider::get(),
        })
    }

    /// A loopback development client redirecting to `redirect_uri`, which must be
    /// `http://127.0.0.1[:port]/…` or `http://[::1][:port]/…`.
    pub fn loopback(redirect_uri: Url) -> Result<Self, ClientConfigError> {
        check_loopback_redirect_uri(&redirect_uri)?;
        let mut config = Self {
            kind: Kind::Loopback {
                client_id: String::new(),
            },
            redirect_uris: vec![redirect_uri],
            scope: Scope::atproto(),
            names: Names::default(),
            identity: IdentityConfig::default(),
            login_lifetime: DEFAULT_LOGIN_LIFETIME,
            provider: DefaultProvider::get(),
        };
        config.rebuild_loopback_client_id();
        Ok(config)
    }

    /// Sets the scope the client may ask for (the metadata `scope`); it must hold
    /// `atproto`. Logins ask for `atproto` alone unless they ask for more.
    pub fn with_scope(mut self, scope: Scope) -> Result<Self, ClientConfigError> {
        if !scope.contains("atproto") {
            return Err(ClientConfigError::Scope(
                "the client scope must include atproto",
            ));
        }
        self.scope = scope;
        self.rebuild_loopback_client_id();
        Ok(self)
    }

    /// Sets how identities are resolved (PLC directory, resolver service, mode).
    #[must_use]
    pub fn with_identity(mut self, identity: IdentityConfig) -> Self {
        self.identity = identity;
        self
    }

    /// Signs DPoP proofs with this crypto backend instead of the default.
    #[must_use]
    pub fn with_provider(mut self, provider: &'static dyn CryptoProvider) -> Self {
        self.provider = provider;
        self
    }

    /// The crypto backend.
    #[must_use]
    pub fn provider(&self) -> &'static dyn CryptoProvider {
        self.provider
    }

    /// Sets how long a started login may wait for the browser.
    #[must_use]
    pub fn with_login_lifetime(mut self, lifetime: Duration) -> Self {
        self.login_lifetime = lifetime;
        self
    }

    /// Sets `client_name`.
    #[must_use]
    pub fn with_client_name(mut self, name: impl Into<String>) -> Self {
        self.names.client_name = Some(name.into());
        self
    }

    /// Sets `client_uri`, which must be https on the `client_id`'s host.
    pub fn with_client_uri(mut self, uri: Url) -> Result<Self, ClientConfigError> {
        if self.is_loopback() {
            return Err(ClientConfigError::Loopback("client_uri"));
        }
        check_https("client_uri", &uri)?;
        if let Kind::Confidential { client_id, .. } = &self.kind
            && uri.host_str() != client_id.host_str()
        {
            return Err(ClientConfigError::Uri {
                field: "client_uri",
                reason: "not on the client_id's host",
            });
        }
        self.names.client_uri = Some(uri);
        Ok(self)
    }

    /// Sets `logo_uri`, `tos_uri` and `policy_uri` (each https, each optional).
    pub fn with_policy_uris(
        mut self,
        logo_uri: Option<Url>,
        tos_uri: Option<Url>,
        policy_uri: Option<Url>,
    ) -> Result<Self, ClientConfigError> {
        if self.is_loopback() {
            return Err(ClientConfigError::Loopback("logo, terms or policy URIs"));
        }
        for (field, uri) in [
            ("logo_uri", &logo_uri),
            ("tos_uri", &tos_uri),
            ("policy_uri", &policy_uri),
        ] {
            if let Some(uri) = uri {
                check_https(field, uri)?;
            }
        }
        self.names.logo_uri = logo_uri;
        self.names.tos_uri = tos_uri;
        self.names.policy_uri = policy_uri;
        Ok(self)
    }

    /// Publishes the keys at `jwks_uri` instead of inline.
    pub fn with_jwks_uri(mut self, uri: Url) -> Result<Self, ClientConfigError> {
        if self.is_loopback() {
            return Err(ClientConfigError::Loopback("keys"));
        }
        check_https("jwks_uri", &uri)?;
        if let Kind::Confidential { jwks, .. } = &mut self.kind {
            *jwks = Jwks::Uri(uri);
        }
        Ok(self)
    }

    /// The `client_id`, exactly as sent to authorization servers.
    #[must_use]
    pub fn client_id(&self) -> &str {
        match &self.kind {
            Kind::Confidential { client_id, .. } => client_id.as_str(),
            Kind::Loopback { client_id } => client_id,
        }
    }

    /// Whether this is the public loopback development client.
    #[must_use]
    pub fn is_loopback(&self) -> bool {
        matches!(self.kind, Kind::Loopback { .. })
    }

    /// The redirect URI logins use: the first configured.
    #[must_use]
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uris[0]
    }

    /// The scope the client may ask for.
    #[must_use]
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// How identities are resolved.
    #[must_use]
    pub fn identity(&self) -> &IdentityConfig {
        &self.identity
    }

    /// How long a started login may wait for the browser.
    #[must_use]
    pub fn login_lifetime(&self) -> Duration {
        self.login_lifetime
    }

    /// The key new sessions sign client assertions with; `None` for the loopback client.
    #[must_use]
    pub fn current_key(&self) -> Option<&JwsSigningKey> {
        match &self.kind {
            Kind::Confidential { keys, .. } => keys.last(),
            Kind::Loopback { .. } => None,
        }
    }

    /// The configured key with this `kid`, for sessions that began with it.
    #[must_use]
    pub fn key(&self, kid: &str) -> Option<&JwsSigningKey> {
        match &self.kind {
            Kind::Confidential { keys, .. } => keys.iter().find(|k| k.kid() == Some(kid)),
            Kind::Loopback { .. } => None,
        }
    }

    /// The public keys as a JWK Set; `None` for the loopback client.
    #[must_use]
    pub fn jwks(&self) -> Option<JwkSet> {
        match &self.kind {
            Kind::Confidential { keys, .. } => Some(JwkSet::new(
                keys.iter().map(JwsSigningKey::public_jwk).collect(),
            )),
            Kind::Loopback { .. } => None,
        }
    }

    /// The client ID metadata document to serve at the `client_id` URL, with
    /// HTTP 200 and `Content-Type: application/json`; `None` for the loopback
    /// client, whose metadata the authorization server derives from its id.
    #[must_use]
    pub fn metadata_document(&self) -> Option<Value> {
        let Kind::Confidential {
            client_id,
            keys,
            jwks,
        } = &self.kind
        else {
            return None;
        };
        let mut doc = Map::new();
        doc.insert("client_id".into(), client_id.as_str().into());
        doc.insert("application_type".into(), "web".into());
        doc.insert(
            "grant_types".into(),
            json!(["authorization_code", "refresh_token"]),
        );
        doc.insert("response_types".into(), json!(["code"]));
        doc.insert(
            "redirect_uris".into(),
            self.redirect_uris
                .iter()
                .map(Url::as_str)
                .collect::<Vec<_>>()
                .into(),
        );
        doc.insert("scope".into(), self.scope.to_string().into());
        doc.insert("dpop_bound_access_tokens".into(), true.into());
        doc.insert(
            "token_endpoint_auth_method".into(),
            "private_key_jwt".into(),
        );
        doc.insert(
            "token_endpoint_auth_signing_alg".into(),
            Algorithm::Es256.as_str().into(),
        );
        match jwks {
            Jwks::Inline => {
                let set = JwkSet::new(keys.iter().map(JwsSigningKey::public_jwk).collect());
                doc.insert("jwks".into(), set.to_json_value());
            }
            Jwks::Uri(uri) => {
                doc.insert("jwks_uri".into(), uri.as_str().into());
            }
        }
        if let Some(name) = &self.names.client_name {
            doc.insert("client_name".into(), name.as_str().into());
        }
        for (field, uri) in [
            ("client_uri", &self.names.client_uri),
            ("logo_uri", &self.names.logo_uri),
            ("tos_uri", &self.names.tos_uri),
            ("policy_uri", &self.names.policy_uri),
        ] {
            if let Some(uri) = uri {
                doc.insert(field.into(), uri.as_str().into());
            }
        }
        Some(Value::Object(doc))
    }

    fn rebuild_loopback_client_id(&mut self) {
        if let Kind::Loopback { client_id } = &mut self.kind {
            // Written by hand: the form is exactly "http://localhost?..." (no slash),
            // which a URL library would not produce.
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for uri in &self.redirect_uris {
                query.append_pair("redirect_uri", uri.as_str());
            }
            query.append_pair("scope", &self.scope.to_string());
            *client_id = format!("http://localhost?{}", query.finish());
        }
    }
}

fn check_client_id(url: &Url) -> Result<(), ClientConfigError> {
    let invalid = |reason| ClientConfigError::ClientId {
        url: url.to_string(),
        reason,
    };
    if url.scheme() != "https" {
        return Err(invalid("it must be an https URL"));
    }
    if url.port().is_some() {
        return Err(invalid("it must not carry a port number"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not carry user info or a fragment"));
    }
    match url.host() {
        Some(url::Host::Domain("localhost")) => {
            return Err(invalid(
                "localhost is for the loopback client, not a published client_id",
            ));
        }
        Some(url::Host::Domain(_)) => {}
        Some(_) => return Err(invalid("its host must be a DNS name, not an IP address")),
        None => return Err(invalid("it has no host")),
    }
    // The reference authorization server wants a path naming the document.
    if url.path() == "/" || url.path().ends_with('/') {
        return Err(invalid("its path must name the document, not end with /"));
    }
    Ok(())
}

fn check_web_redirect_uri(url: &Url) -> Result<(), ClientConfigError> {
    let invalid = |reason| ClientConfigError::RedirectUri {
        url: url.to_string(),
        reason,
    };
    if url.scheme() != "https" {
        return Err(invalid("a web client redirects to https URLs"));
    }
    if url.fragment().is_some() {
        return Err(invalid("it must not carry a fragment"));
    }
    Ok(())
}

fn check_loopback_redirect_uri(url: &Url) -> Result<(), ClientConfigError> {
    let invalid = |reason| ClientConfigError::RedirectUri {
        url: url.to_string(),
        reason,
    };
    if url.scheme() != "http" {
        return Err(invalid(
            "a loopback client redirects to plain http on 127.0.0.1 or [::1]",
        ));
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => {}
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => {}
        _ => {
            return Err(invalid(
                "a loopback client redirects to 127.0.0.1 or [::1], not a name",
            ));
        }
    }
    if url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid("it must not carry user info or a fragment"));
    }
    Ok(())
}

fn check_keys(keys: &[JwsSigningKey]) -> Result<(), ClientConfigError> {
    if keys.is_empty() {
        return Err(ClientConfigError::Keys(
            "a confidential client needs at least one key",
        ));
    }
    for (i, key) in keys.iter().enumerate() {
        if key.algorithm() != Algorithm::Es256 {
            return Err(ClientConfigError::Keys("client keys must be ES256"));
        }
        let Some(kid) = key.kid() else {
            return Err(ClientConfigError::Keys("every client key needs a kid"));
        };
        if keys[..i].iter().any(|k| k.kid() == Some(kid)) {
            return Err(ClientConfigError::Keys("two client keys share a kid"));
        }
    }
    Ok(())
}

fn check_https(field: &'static str, url: &Url) -> Result<(), ClientConfigError> {
    if url.scheme() == "https" {
        Ok(())
    } else {
        Err(ClientConfigError::Uri {
            field,
            reason: "it must be an https URL",
        })
    }
}
