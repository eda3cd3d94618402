//! The provider's configuration: issuer, endpoints, registered clients, keys, lifetimes.

use std::fmt;
use std::time::Duration;

use subtle::ConstantTimeEq;
use url::Url;

use crate::client::Scope;
use crate::jose::{Algorithm, JwkSet, JwsSigningKey};
use crate::secret::secret_string;

/// Why a provider configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderConfigError {
    /// A registered client breaks a rule.
    #[error("client {client_id}: {reason}")]
    Client {
        /// The client.
        client_id: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The issuer is not an https URL without query or fragment.
    #[error("the issuer {0} must be an https URL without query or fragment")]
    Issuer(String),
    /// The signing keys break a rule.
    #[error("signing keys: {0}")]
    Keys(&'static str),
}

secret_string! {
    /// A client secret as the client sends it.
    pub struct ClientSecret;
}

/// The shortest plain client secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

/// How a registered client's secret is kept in the configuration.
#[derive(Clone, PartialEq, Eq)]
pub enum StoredSecret {
    /// The secret itself.
    Plain(ClientSecret),
    /// Its SHA-256, base64url (`atlogin hash-secret` prints it): secrets are
    /// random and long, so a fast hash is enough to keep them out of the file.
    Sha256(String),
}

impl StoredSecret {
    /// Whether `presented` is the secret, compared in constant time.
    #[must_use]
    pub fn matches(&self, presented: &str) -> bool {
        match self {
            Self::Plain(secret) => secret
                .secret()
                .as_bytes()
                .ct_eq(presented.as_bytes())
                .into(),
            Self::Sha256(hash) => crate::base64url::encode_sha256(presented.as_bytes())
                .as_bytes()
                .ct_eq(hash.as_bytes())
                .into(),
        }
    }
}

impl fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plain(_) => "StoredSecret::Plain(..)",
            Self::Sha256(_) => "StoredSecret::Sha256(..)",
        })
    }
}

/// How a client authenticates at the token endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the client secret (RFC 6749 §2.3.1).
    ClientSecretBasic(StoredSecret),
    /// The client secret in the form body.
    ClientSecretPost(StoredSecret),
    /// A JWT signed with one of these keys (RFC 7523, OIDC Core §9).
    PrivateKeyJwt(JwkSet),
}

impl ClientAuth {
    /// The `token_endpoint_auth_method` name.
    #[must_use]
    pub fn method(&self) -> &'static str {
        match self {
            Self::ClientSecretBasic(_) => "client_secret_basic",
            Self::ClientSecretPost(_) => "client_secret_post",
            Self::PrivateKeyJwt(_) => "private_key_jwt",
        }
    }
}

/// A relying party registered with the provider.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RegisteredClient {
    /// The client id.
    pub client_id: String,
    /// The redirect URIs, compared byte for byte.
    pub redirect_uris: Vec<String>,
    /// The scopes it may be granted.
    pub allowed_scopes: Scope,
    /// How it authenticates.
    pub auth: ClientAuth,
    /// The algorithm its ID tokens are signed with; RS256 unless registered
    /// otherwise (OIDC Registration 1.0 §2).
    pub id_token_signed_response_alg: Algorithm,
    /// Whether PKCE (S256) is required of it.
    pub require_pkce: bool,
    /// Where to send back-channel logout tokens, if it wants them.
    pub backchannel_logout_uri: Option<Url>,
}

impl RegisteredClient {
    /// A client with these redirect URIs and authentication, allowed `openid
    /// profile email`, RS256 ID tokens, PKCE required. Refresh tokens need
    /// `offline_access` among its allowed scopes: registering it so is the
    /// operator's consent on the person's behalf (OIDC Core §11).
    pub fn new(client_id: impl Into<String>, redirect_uris: Vec<String>, auth: ClientAuth) -> Self {
        Self {
            client_id: client_id.into(),
            redirect_uris,
            allowed_scopes: default_scopes(),
            auth,
            id_token_signed_response_alg: Algorithm::Rs256,
            require_pkce: true,
            backchannel_logout_uri: None,
        }
    }

    /// Signs this client's ID tokens with `alg`.
    #[must_use]
    pub fn with_id_token_alg(mut self, alg: Algorithm) -> Self {
        self.id_token_signed_response_alg = alg;
        self
    }

    /// Limits the scopes it may be granted.
    #[must_use]
    pub fn with_allowed_scopes(mut self, scopes: Scope) -> Self {
        self.allowed_scopes = scopes;
        self
    }

    /// Makes PKCE optional for it.
    #[must_use]
    pub fn without_required_pkce(mut self) -> Self {
        self.require_pkce = false;
        self
    }

    /// Registers its back-channel logout URI.
    #[must_use]
    pub fn with_backchannel_logout_uri(mut self, uri: Url) -> Self {
        self.backchannel_logout_uri = Some(uri);
        self
    }
}

fn default_scopes() -> Scope {
    Scope::parse("openid profile email").expect("a constant, valid scope")
}

/// How long each artefact lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lifetimes {
    /// An authorization request waiting for the upstream login.
    pub authorization: Duration,
    /// An authorization code.
    pub code: Duration,
    /// An access token.
    pub access_token: Duration,
    /// An ID token.
    pub id_token: Duration,
    /// A refresh token.
    pub refresh_token: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            authorization: Duration::from_secs(15 * 60),
            code: Duration::from_secs(60),
            access_token: Duration::from_secs(5 * 60),
            id_token: Duration::from_secs(5 * 60),
            refresh_token: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// The provider: who it is, where its endpoints are, whom it serves, what it signs with.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    issuer: String,
    clients: Vec<RegisteredClient>,
    keys: Vec<JwsSigningKey>,
    lifetimes: Lifetimes,
}

/// Paths of the endpoints below the issuer.
pub(crate) const AUTHORIZE_PATH: &str = "authorize";
pub(crate) const TOKEN_PATH: &str = "token";
pub(crate) const USERINFO_PATH: &str = "userinfo";
pub(crate) const JWKS_PATH: &str = "jwks";
pub(crate) const REVOKE_PATH: &str = "revoke";

impl ProviderConfig {
    /// A provider at `issuer` (used byte for byte) signing with `keys`, each with a
    /// `kid`, oldest first; at least one must be RS256, which OIDC Discovery
    /// requires every provider to offer.
    pub fn new(
        issuer: &str,
        keys: Vec<JwsSigningKey>,
        clients: Vec<RegisteredClient>,
    ) -> Result<Self, ProviderConfigError> {
        let url = Url::parse(issuer).map_err(|_| ProviderConfigError::Issuer(issuer.to_owned()))?;
        let dev_http = url.scheme() == "http"
            && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if (url.scheme() != "https" && !dev_http)
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(ProviderConfigError::Issuer(issuer.to_owned()));
        }
        check_keys(&keys)?;
        for (i, client) in clients.iter().enumerate() {
            check_client(client, &keys)?;
            if clients[..i].iter().any(|c| c.client_id == client.client_id) {
                return Err(ProviderConfigError::Client {
                    client_id: client.client_id.clone(),
                    reason: "registered twice",
                });
            }
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            clients,
            keys,
            lifetimes: Lifetimes::default(),
        })
    }

    /// Sets the lifetimes.
    #[must_use]
    pub fn with_lifetimes(mut self, lifetimes: Lifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    /// The issuer identifier, exactly as configured.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The URL of an endpoint below the issuer.
    pub(crate) fn endpoint(&self, path: &str) -> String {
        if self.issuer.ends_with('/') {
            format!("{}{path}", self.issuer)
        } else {
            format!("{}/{path}", self.issuer)
        }
    }

    /// The lifetimes.
    #[must_use]
    pub fn lifetimes(&self) -> &Lifetimes {
        &self.lifetimes
    }

    /// The registered client with this id.
    #[must_use]
    pub fn client(&self, client_id: &str) -> Option<&RegisteredClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    /// The registered clients.
    #[must_use]
    pub fn clients(&self) -> &[RegisteredClient] {
        &self.clients
    }

    /// The newest key for `alg`.
    pub(crate) fn signing_key(&self, alg: Algorithm) -> Option<&JwsSigningKey> {
        self.keys.iter().rev().find(|k| k.algorithm() == alg)
    }

    /// The public keys, for the JWKS endpoint.
    #[must_use]
    pub fn jwks(&self) -> JwkSet {
        JwkSet::new(self.keys.iter().map(JwsSigningKey::public_jwk).collect())
    }

    /// The algorithms the provider signs ID tokens with, RS256 first.
    pub(crate) fn signing_algorithms(&self) -> Vec<Algorithm> {
        let mut algs = vec![Algorithm::Rs256];
        if self.keys.iter().any(|k| k.algorithm() == Algorithm::Es256) {
            algs.push(Algorithm::Es256);
        }
        algs
    }
}

fn check_keys(keys: &[JwsSigningKey]) -> Result<(), ProviderConfigError> {
    if !keys.iter().any(|k| k.algorithm() == Algorithm::Rs256) {
        return Err(ProviderConfigError::Keys(
            "an RS256 key is required (OIDC Discovery makes RS256 mandatory)",
        ));
    }
    for (i, key) in keys.iter().enumerate() {
        let Some(kid) = key.kid() else {
            return Err(ProviderConfigError::Keys("every signing key needs a kid"));
        };
        if keys[..i].iter().any(|k| k.kid() == Some(kid)) {
            return Err(ProviderConfigError::Keys("two signing keys share a kid"));
        }
    }
    Ok(())
}

fn check_client(
    client: &RegisteredClient,
    keys: &[JwsSigningKey],
) -> Result<(), ProviderConfigError> {
    let invalid = |reason| ProviderConfigError::Client {
        client_id: client.client_id.clone(),
        reason,
    };
    let basic = matches!(client.auth, ClientAuth::ClientSecretBasic(_));
    if client.client_id.is_empty() || (basic && client.client_id.contains(':')) {
        return Err(invalid(
            "the client id must be non-empty, and without ':' for client_secret_basic",
        ));
    }
    if client.redirect_uris.is_empty() {
        return Err(invalid("it needs at least one redirect URI"));
    }
    for uri in &client.redirect_uris {
        let parsed = Url::parse(uri).map_err(|_| invalid("a redirect URI is not a URL"))?;
        if parsed.fragment().is_some() {
            return Err(invalid("a redirect URI must not have a fragment"));
        }
    }
    let secret = match &client.auth {
        ClientAuth::ClientSecretBasic(secret) | ClientAuth::ClientSecretPost(secret) => {
            Some(secret)
        }
        ClientAuth::PrivateKeyJwt(_) => None,
    };
    if let Some(StoredSecret::Plain(secret)) = secret
        && secret.secret().len() < MIN_SECRET_LEN
    {
        return Err(invalid("its client secret is shorter than 16 characters"));
    }
    if let Some(logout) = &client.backchannel_logout_uri {
        // Back-Channel Logout 1.0 §2.2: same scheme, host and port as a redirect URI.
        let origin = logout.origin();
        let shares_origin = client
            .redirect_uris
            .iter()
            .filter_map(|uri| Url::parse(uri).ok())
            .any(|uri| uri.origin() == origin);
        if logout.fragment().is_some() || !shares_origin {
            return Err(invalid(
                "its backchannel_logout_uri must share a redirect URI's origin and have no fragment",
            ));
        }
    }
    if !client.allowed_scopes.contains("openid") {
        return Err(invalid("its allowed scopes must include openid"));
    }
    if !keys
        .iter()
        .any(|k| k.algorithm() == client.id_token_signed_response_alg)
    {
        return Err(invalid(
            "no signing key for its id_token_signed_response_alg",
        ));
    }
    Ok(())
}
