//! What `atlogin serve` runs with: the configuration file, checked, with its
//! secrets read and `ATLOGIN_PUBLIC_URL` applied, or the laptop defaults when
//! there is no file.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use atlogin_core::client::Scope;
use atlogin_core::jose::Algorithm;
use atlogin_core::provider::{ClientAuth, ClientSecret, Lifetimes, RegisteredClient, StoredSecret};
use toml::Spanned;
use url::Url;
use zeroize::Zeroizing;

use crate::config::{self, Config, Problem, Surroundings};

/// Where atlogin listens without a configuration: the port the atproto
/// loopback client's redirect URI names.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9411);

/// How long a sign-in may wait at the person's PDS, by default.
const DEFAULT_LOGIN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The store to open.
#[derive(Clone)]
pub enum StoreSettings {
    /// `atlogin.sqlite3` in the state directory.
    Sqlite,
    /// PostgreSQL at this URL (which may hold a password).
    Postgres(Zeroizing<String>),
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite => f.write_str("Sqlite"),
            Self::Postgres(_) => f.write_str("Postgres(<redacted>)"),
        }
    }
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How people's PDSes are reached.
#[derive(Clone, Debug, Default)]
pub struct Upstream {
    /// Development rules: http and private addresses allowed.
    pub development: bool,
    /// Another PLC directory.
    pub plc_url: Option<Url>,
    /// Other DNS servers for handle lookups.
    pub nameservers: Vec<SocketAddr>,
    /// A `resolveHandle` service instead of DNS and HTTPS.
    pub handle_resolver: Option<Url>,
    /// PEM files of extra trusted certificate authorities.
    pub ca_certificates: Vec<PathBuf>,
}

/// The certificates in a PEM file's `text`, DER encoded.
///
/// # Errors
///
/// When a certificate block does not decode, or there is none.
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let certificates = CertificateDer::pem_slice_iter(text.as_bytes())
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates ({e})"))?;
    if certificates.is_empty() {
        return Err("holds no PEM certificate".to_owned());
    }
    Ok(certificates)
}

/// Requests per minute from one address.
#[derive(Clone, Copy, Debug)]
pub struct RateLimits {
    /// Sign-ins started.
    pub logins_per_minute: u32,
    /// Token endpoint requests.
    pub tokens_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            logins_per_minute: 30,
            tokens_per_minute: 600,
        }
    }
}

/// Everything `serve` needs to start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The public URL, or `None` for the loopback client on `listen`.
    pub public_url: Option<Url>,
    /// The socket address to listen on.
    pub listen: SocketAddr,
    /// Keys and the embedded database.
    pub state_dir: PathBuf,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// The store.
    pub store: StoreSettings,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
    /// Lifetimes of what the provider issues.
    pub lifetimes: Lifetimes,
    /// How long a sign-in may wait at the PDS.
    pub login_lifetime: Duration,
    /// The relying parties.
    pub clients: Vec<RegisteredClient>,
    /// How PDSes are reached.
    pub upstream: Upstream,
    /// Rate limits.
    pub rate_limits: RateLimits,
    /// Whether `/demo` is on.
    pub demo: bool,
}

impl Settings {
    /// The laptop defaults: loopback client on 127.0.0.1:9411, SQLite, `/demo` on.
    pub fn defaults(state_dir: PathBuf) -> Self {
        Self {
            public_url: None,
            listen: DEFAULT_LISTEN,
            state_dir,
            trusted_proxies: Vec::new(),
            store: StoreSettings::Sqlite,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            lifetimes: Lifetimes::default(),
            login_lifetime: DEFAULT_LOGIN_LIFETIME,
            clients: Vec::new(),
            upstream: Upstream::default(),
            rate_limits: RateLimits::default(),
            demo: true,
        }
    }

    /// Checks `text` and builds the settings from it; `public_url_env` is the
    /// value of `ATLOGIN_PUBLIC_URL`, which wins over the file's `public_url`.
    /// Every problem is returned, each with its line.
    pub fn from_file(
        text: &str,
        around: &Surroundings<'_>,
        public_url_env: Option<&str>,
        state_dir: PathBuf,
    ) -> Result<Self, Vec<Problem>> {
        let mut problems = config::check(text, around);
        let public_url = match public_url_env.filter(|v| !v.is_empty()) {
            Some(value) => match parse_public_url(value) {
                Ok(url) => Some(url),
                Err(why) => {
                    problems.push(Problem {
                        line: None,
                        message: format!("{}: {why}", config::PUBLIC_URL_ENV),
                    });
                    None
                }
            },
            None => None,
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let config = config::parse(text).map_err(|p| vec![p])?;
        build(&config, around, public_url, state_dir).map_err(|p| vec![p])
    }
}

/// The rules of `public_url`, for the environment variable too.
fn parse_public_url(text: &str) -> Result<Url, &'static str> {
    config::check_public_url(text)
}

/// Builds settings from a configuration [`config::check`] found no problem in.
fn build(
    config: &Config,
    around: &Surroundings<'_>,
    public_url_env: Option<Url>,
    state_dir: PathBuf,
) -> Result<Settings, Problem> {
    let internal = |message: String| Problem {
        line: None,
        message,
    };
    let mut settings = Settings::defaults(config.state_dir.clone().unwrap_or(state_dir));
    settings.public_url = match public_url_env {
        Some(url) => Some(url),
        None => config
            .public_url
            .as_ref()
            .map(|u| parse_public_url(u.get_ref()).map_err(|e| internal(format!("public_url {e}"))))
            .transpose()?,
    };
    if let Some(listen) = &config.listen {
        settings.listen = listen
            .get_ref()
            .parse()
            .map_err(|_| internal("listen is not an address".into()))?;
    }
    settings.trusted_proxies = config
        .trusted_proxies
        .iter()
        .filter_map(|p| p.get_ref().parse().ok())
        .collect();
    if config
        .store
        .kind
        .as_ref()
        .map(Spanned::get_ref)
        .map(String::as_str)
        == Some("postgres")
    {
        let url = read_secret(
            around,
            config.store.url.as_ref(),
            config.store.url_file.as_ref(),
            config.store.url_env.as_ref(),
        )
        .ok_or_else(|| internal("the database URL cannot be read".into()))?;
        settings.store = StoreSettings::Postgres(url);
    }
    if config
        .log
        .format
        .as_ref()
        .map(Spanned::get_ref)
        .map(String::as_str)
        == Some("json")
    {
        settings.log_format = LogFormat::Json;
    }
    if let Some(level) = &config.log.level {
        settings.log_level.clone_from(level.get_ref());
    }
    let secs = |value: &Option<Spanned<u64>>, default: Duration| {
        value
            .as_ref()
            .map_or(default, |v| Duration::from_secs(*v.get_ref()))
    };
    let lifetimes = &config.lifetimes;
    let mut issued = Lifetimes::default();
    issued.code = secs(&lifetimes.code, issued.code);
    issued.access_token = secs(&lifetimes.access_token, issued.access_token);
    issued.id_token = secs(&lifetimes.id_token, issued.id_token);
    issued.refresh_token = secs(&lifetimes.refresh_token, issued.refresh_token);
    settings.login_lifetime = secs(&lifetimes.login, DEFAULT_LOGIN_LIFETIME);
    // The relying party's request waits as long as the sign-in may.
    issued.authorization = settings.login_lifetime;
    settings.lifetimes = issued;
    for client in &config.clients {
        settings
            .clients
            .push(registered_client(client, around).map_err(internal)?);
    }
    settings.upstream = upstream(&config.upstream);
    if let Some(limit) = &config.rate_limits.logins_per_minute {
        settings.rate_limits.logins_per_minute = *limit.get_ref();
    }
    if let Some(limit) = &config.rate_limits.tokens_per_minute {
        settings.rate_limits.tokens_per_minute = *limit.get_ref();
    }
    settings.demo = config.demo.unwrap_or(settings.public_url.is_none());
    Ok(settings)
}

fn upstream(config: &config::UpstreamConfig) -> Upstream {
    Upstream {
        development: config.development.as_ref().is_some_and(|d| *d.get_ref()),
        plc_url: config
            .plc_url
            .as_ref()
            .and_then(|u| Url::parse(u.get_ref()).ok()),
        nameservers: config
            .nameservers
            .iter()
            .filter_map(|n| n.get_ref().parse().ok())
            .collect(),
        handle_resolver: config
            .handle_resolver
            .as_ref()
            .and_then(|u| Url::parse(u.get_ref()).ok()),
        ca_certificates: config
            .ca_certificates
            .iter()
            .map(|p| p.get_ref().clone())
            .collect(),
    }
}

fn registered_client(
    client: &config::ClientConfig,
    around: &Surroundings<'_>,
) -> Result<RegisteredClient, String> {
    let id = client.client_id.get_ref();
    let secret = || {
        read_secret(
            around,
            client.secret.as_ref(),
            client.secret_file.as_ref(),
            client.secret_env.as_ref(),
        )
        .map(|s| StoredSecret::Plain(ClientSecret::new(s.as_str())))
        .ok_or_else(|| format!("client {id}: the secret cannot be read"))
    };
    let auth = match client.auth.as_ref().map(|a| a.get_ref().as_str()) {
        Some("client_secret_post") => ClientAuth::ClientSecretPost(secret()?),
        _ => ClientAuth::ClientSecretBasic(secret()?),
    };
    let redirect_uris = client
        .redirect_uris
        .get_ref()
        .iter()
        .map(|u| u.get_ref().clone())
        .collect();
    let mut registered = RegisteredClient::new(id.clone(), redirect_uris, auth);
    if client.id_token_alg.as_ref().map(|a| a.get_ref().as_str()) == Some("ES256") {
        registered = registered.with_id_token_alg(Algorithm::Es256);
    }
    if let Some(scope) = &client.scope {
        let scope =
            Scope::parse(scope.get_ref()).map_err(|_| format!("client {id}: scope is invalid"))?;
        registered = registered.with_allowed_scopes(scope);
    }
    if let Some(uri) = &client.backchannel_logout_uri {
        let uri = Url::parse(uri.get_ref())
            .map_err(|_| format!("client {id}: backchannel_logout_uri is invalid"))?;
        registered = registered.with_backchannel_logout_uri(uri);
    }
    Ok(registered)
}

/// The secret from whichever source gives it, without a trailing newline.
fn read_secret(
    around: &Surroundings<'_>,
    inline: Option<&Spanned<String>>,
    file: Option<&Spanned<PathBuf>>,
    env: Option<&Spanned<String>>,
) -> Option<Zeroizing<String>> {
    let value = if let Some(inline) = inline {
        inline.get_ref().clone()
    } else if let Some(file) = file {
        (around.read_file)(file.get_ref()).ok()?
    } else {
        (around.env)(env?.get_ref())?
    };
    Some(Zeroizing::new(
        value.trim_end_matches(['\n', '\r']).to_owned(),
    ))
}
