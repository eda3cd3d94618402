//! The configuration file (`atlogin.toml`) and its check.
//!
//! With no file atlogin is meant to run as a laptop tool: on 127.0.0.1:9411, as
//! an atproto loopback client, with its state in the state directory. A file
//! sets the public URL (atlogin is then a confidential atproto client that
//! publishes its metadata), the listen address, the proxies it trusts, the
//! relying parties, lifetimes, the store and logging.
//!
//! Secrets (client secrets, the database URL) can be read from a file
//! (`secret_file`, `url_file`) or an environment variable (`secret_env`,
//! `url_env`) so they need not sit in the configuration; an inline value is
//! accepted only in a file its owner alone can read. `ATLOGIN_PUBLIC_URL`
//! overrides `public_url`.
//!
//! [`check`] names every problem it finds, each with its line;
//! [`Settings`](crate::settings::Settings)
//! turns a checked file into what `atlogin serve` runs with.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;
use url::Url;

/// The environment variable that overrides `public_url`.
pub const PUBLIC_URL_ENV: &str = "ATLOGIN_PUBLIC_URL";

/// The shortest client secret accepted, in bytes (core's provider enforces it too).
const MIN_SECRET_LEN: usize = 16;

/// The longest authorization-code lifetime accepted: RFC 6749 §4.1.2
/// recommends at most ten minutes.
const MAX_CODE_LIFETIME: u64 = 600;

/// The configuration as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The URL atlogin is reached at from the outside (its issuer).
    pub public_url: Option<Spanned<String>>,
    /// The socket address to listen on.
    pub listen: Option<Spanned<String>>,
    /// Where keys and the embedded database live.
    pub state_dir: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-*` headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<Spanned<String>>,
    /// `[store]`.
    #[serde(default)]
    pub store: StoreConfig,
    /// `[log]`.
    #[serde(default)]
    pub log: LogConfig,
    /// `[lifetimes]`, in seconds.
    #[serde(default)]
    pub lifetimes: LifetimesConfig,
    /// The registered relying parties, `[[clients]]`.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// `[upstream]`: how people's PDSes are reached.
    #[serde(default)]
    pub upstream: UpstreamConfig,
    /// `[rate_limits]`, per client IP address.
    #[serde(default)]
    pub rate_limits: RateLimitsConfig,
    /// Whether the built-in demo relying party at `/demo` is on (the default
    /// without `public_url`, off with one).
    pub demo: Option<bool>,
}

/// `[upstream]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Development rules: plain http and private or loopback addresses are
    /// allowed for PDSes, authorization servers and handle hosts. Never in production.
    pub development: Option<Spanned<bool>>,
    /// The PLC directory, instead of `https://plc.directory`.
    pub plc_url: Option<Spanned<String>>,
    /// DNS servers for handle TXT lookups, instead of the system's.
    #[serde(default)]
    pub nameservers: Vec<Spanned<String>>,
    /// A service whose `com.atproto.identity.resolveHandle` resolves handles,
    /// instead of DNS and the HTTPS well-known file (the bidirectional check
    /// still applies). For development worlds whose handles only their PDS knows.
    pub handle_resolver: Option<Spanned<String>>,
    /// PEM files of certificate authorities trusted besides the public ones,
    /// for PDSes, authorization servers and handle hosts behind a private CA.
    #[serde(default)]
    pub ca_certificates: Vec<Spanned<PathBuf>>,
}

/// `[rate_limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Sign-ins started per minute from one address (default 30).
    pub logins_per_minute: Option<Spanned<u32>>,
    /// Token endpoint requests per minute from one address (default 600). A
    /// relying party makes one per sign-in, all from its own address: set this
    /// above its peak.
    pub tokens_per_minute: Option<Spanned<u32>>,
}

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite` (the default, a file in the state directory) or `postgres`.
    pub kind: Option<Spanned<String>>,
    /// The PostgreSQL URL, inline.
    pub url: Option<Spanned<String>>,
    /// A file holding the PostgreSQL URL.
    pub url_file: Option<Spanned<PathBuf>>,
    /// An environment variable holding the PostgreSQL URL.
    pub url_env: Option<Spanned<String>>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (the default) or `json`.
    pub format: Option<Spanned<String>>,
    /// A `tracing` filter, such as `info` or `atlogin=debug`.
    pub level: Option<Spanned<String>>,
}

/// `[lifetimes]`, in seconds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifetimesConfig {
    /// Authorization codes.
    pub code: Option<Spanned<u64>>,
    /// Access tokens.
    pub access_token: Option<Spanned<u64>>,
    /// ID tokens.
    pub id_token: Option<Spanned<u64>>,
    /// Refresh tokens.
    pub refresh_token: Option<Spanned<u64>>,
    /// A sign-in in progress at the person's PDS.
    pub login: Option<Spanned<u64>>,
}

/// One `[[clients]]` entry: a relying party.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The `client_id` it presents.
    pub client_id: Spanned<String>,
    /// Its redirect URIs, matched exactly.
    pub redirect_uris: Spanned<Vec<Spanned<String>>>,
    /// `client_secret_basic` (the default) or `client_secret_post`.
    pub auth: Option<Spanned<String>>,
    /// The client secret, inline.
    pub secret: Option<Spanned<String>>,
    /// A file holding the client secret.
    pub secret_file: Option<Spanned<PathBuf>>,
    /// An environment variable holding the client secret.
    pub secret_env: Option<Spanned<String>>,
    /// `RS256` (the default) or `ES256`.
    pub id_token_alg: Option<Spanned<String>>,
    /// Where back-channel logout tokens are sent.
    pub backchannel_logout_uri: Option<Spanned<String>>,
    /// The scopes it may ask for (default `openid profile email`).
    pub scope: Option<Spanned<String>>,
}

/// One thing wrong with a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong, and what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// What the check may look at outside the file.
pub struct Surroundings<'a> {
    /// Whether group or others can read the configuration file.
    pub file_is_shared: bool,
    /// Reads an environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Reads a secret file.
    pub read_file: &'a dyn Fn(&std::path::Path) -> std::io::Result<String>,
}

impl fmt::Debug for Surroundings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Surroundings")
            .field("file_is_shared", &self.file_is_shared)
            .finish_non_exhaustive()
    }
}

/// Parses `text`; a syntax error or a value of the wrong type is one problem.
///
/// The parser's message can quote the value it choked on, which may be a
/// secret or a database URL: quoted text is left out of the message.
pub fn parse(text: &str) -> Result<Config, Problem> {
    toml::from_str(text).map_err(|error| Problem {
        line: error.span().map(|span| line_of(text, &span)),
        message: without_quoted_values(error.message().trim_end()),
    })
}

/// `message` with the text between each pair of double quotes replaced by `…`.
fn without_quoted_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, piece) in message.split('"').enumerate() {
        if i > 0 {
            out.push('"');
        }
        // Odd pieces sit between quotes.
        out.push_str(if i % 2 == 1 { "…" } else { piece });
    }
    out
}

/// Parses and checks `text`: every problem found, each with its line.
pub fn check(text: &str, around: &Surroundings<'_>) -> Vec<Problem> {
    match parse(text) {
        Ok(config) => Checker {
            text,
            around,
            problems: Vec::new(),
        }
        .run(&config),
        Err(problem) => vec![problem],
    }
}

/// The 1-based line of a byte span's start.
fn line_of(text: &str, span: &Range<usize>) -> usize {
    let start = span.start.min(text.len());
    // The number of pieces the newlines before `start` cut the text into.
    text.as_bytes()[..start].split(|&b| b == b'\n').count()
}

struct Checker<'a> {
    text: &'a str,
    around: &'a Surroundings<'a>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        let line = line_of(self.text, &at.span());
        self.problems.push(Problem {
            line: Some(line),
            message: message.into(),
        });
    }

    fn run(mut self, config: &Config) -> Vec<Problem> {
        if let Some(url) = &config.public_url
            && let Err(why) = check_public_url(url.get_ref())
        {
            self.report(url, format!("public_url {why}"));
        }
        if let Some(listen) = &config.listen
            && listen.get_ref().parse::<SocketAddr>().is_err()
        {
            self.report(
                listen,
                "listen must be an address and port, such as 127.0.0.1:9411",
            );
        }
        for proxy in &config.trusted_proxies {
            if proxy.get_ref().parse::<IpAddr>().is_err() {
                self.report(
                    proxy,
                    "trusted_proxies holds IP addresses, such as 127.0.0.1",
                );
            }
        }
        self.store(&config.store);
        if let Some(format) = &config.log.format
            && !matches!(format.get_ref().as_str(), "text" | "json")
        {
            self.report(format, "log.format is `text` or `json`");
        }
        self.lifetimes(&config.lifetimes);
        self.upstream(&config.upstream);
        for limit in [
            &config.rate_limits.logins_per_minute,
            &config.rate_limits.tokens_per_minute,
        ]
        .into_iter()
        .flatten()
        {
            if *limit.get_ref() == 0 {
                self.report(limit, "a rate limit must be at least 1 per minute");
            }
        }
        let mut seen = HashSet::new();
        for client in &config.clients {
            if !seen.insert(client.client_id.get_ref().clone()) {
                self.report(&client.client_id, "this client_id is registered twice");
            }
            self.client(client);
        }
        self.problems
    }

    fn store(&mut self, store: &StoreConfig) {
        let kind = store
            .kind
            .as_ref()
            .map_or("sqlite", |k| k.get_ref().as_str());
        let sources = [
            store.url.is_some(),
            store.url_file.is_some(),
            store.url_env.is_some(),
        ]
        .iter()
        .filter(|&&given| given)
        .count();
        match kind {
            "sqlite" => {
                if sources > 0 {
                    self.report_first(
                        [span_of(store.url.as_ref()), span_of(store.url_file.as_ref()), span_of(store.url_env.as_ref())],
                        "a database URL is for `kind = \"postgres\"`; SQLite lives in the state directory",
                    );
                }
            }
            "postgres" => {
                let at = store.kind.as_ref().map(Spanned::span);
                self.secret(
                    "url",
                    at,
                    store.url.as_ref(),
                    store.url_file.as_ref(),
                    store.url_env.as_ref(),
                    0,
                );
            }
            _ => {
                if let Some(kind) = &store.kind {
                    self.report(kind, "store.kind is `sqlite` or `postgres`");
                }
            }
        }
    }

    fn upstream(&mut self, upstream: &UpstreamConfig) {
        if let Some(plc) = &upstream.plc_url {
            match Url::parse(plc.get_ref()) {
                Ok(url) if matches!(url.scheme(), "https" | "http") => {
                    let development = upstream.development.as_ref().is_some_and(|d| *d.get_ref());
                    if url.scheme() == "http" && !development {
                        self.report(
                            plc,
                            "upstream.plc_url must be https unless upstream.development is on",
                        );
                    }
                }
                _ => self.report(plc, "upstream.plc_url is not an absolute http(s) URL"),
            }
        }
        if let Some(resolver) = &upstream.handle_resolver {
            match Url::parse(resolver.get_ref()) {
                Ok(url) if url.scheme() == "https" || (url.scheme() == "http" && upstream.development.as_ref().is_some_and(|d| *d.get_ref())) => {}
                _ => self.report(resolver, "upstream.handle_resolver is an https URL (http only with upstream.development)"),
            }
        }
        for server in &upstream.nameservers {
            if server.get_ref().parse::<SocketAddr>().is_err() {
                self.report(
                    server,
                    "upstream.nameservers holds addresses with ports, such as 127.0.0.1:53",
                );
            }
        }
        for path in &upstream.ca_certificates {
            let shown = path.get_ref().display();
            match (self.around.read_file)(path.get_ref()) {
                Ok(text) => {
                    if let Err(why) = crate::settings::pem_certificates(&text) {
                        self.report(path, format!("upstream.ca_certificates: {shown}: {why}"));
                    }
                }
                Err(error) => self.report(
                    path,
                    format!("upstream.ca_certificates: {shown} cannot be read: {error}"),
                ),
            }
        }
    }

    fn lifetimes(&mut self, lifetimes: &LifetimesConfig) {
        for (name, value) in [
            ("code", &lifetimes.code),
            ("access_token", &lifetimes.access_token),
            ("id_token", &lifetimes.id_token),
            ("refresh_token", &lifetimes.refresh_token),
            ("login", &lifetimes.login),
        ] {
            if let Some(value) = value {
                if *value.get_ref() == 0 {
                    self.report(
                        value,
                        format!("lifetimes.{name} must be at least one second"),
                    );
                } else if name == "code" && *value.get_ref() > MAX_CODE_LIFETIME {
                    self.report(
                        value,
                        format!("lifetimes.code must be at most {MAX_CODE_LIFETIME} seconds (RFC 6749 §4.1.2)"),
                    );
                }
            }
        }
    }

    fn client(&mut self, client: &ClientConfig) {
        let id = client.client_id.get_ref();
        if id.is_empty() {
            self.report(&client.client_id, "client_id must not be empty");
        }
        if client.redirect_uris.get_ref().is_empty() {
            self.report(
                &client.redirect_uris,
                format!("client {id}: give at least one redirect URI"),
            );
        }
        for uri in client.redirect_uris.get_ref() {
            if let Err(why) = check_client_url(uri.get_ref()) {
                self.report(uri, format!("client {id}: redirect URI {why}"));
            }
        }
        let auth = client
            .auth
            .as_ref()
            .map_or("client_secret_basic", |a| a.get_ref().as_str());
        match auth {
            "client_secret_basic" | "client_secret_post" => self.secret(
                "secret",
                Some(client.client_id.span()),
                client.secret.as_ref(),
                client.secret_file.as_ref(),
                client.secret_env.as_ref(),
                MIN_SECRET_LEN,
            ),
            _ => {
                if let Some(at) = &client.auth {
                    self.report(
                        at,
                        format!("client {id}: auth is `client_secret_basic` or `client_secret_post` (public clients are not supported)"),
                    );
                }
            }
        }
        if let Some(alg) = &client.id_token_alg
            && !matches!(alg.get_ref().as_str(), "RS256" | "ES256")
        {
            self.report(
                alg,
                format!("client {id}: id_token_alg is `RS256` or `ES256`"),
            );
        }
        if let Some(uri) = &client.backchannel_logout_uri {
            if let Err(why) = check_client_url(uri.get_ref()) {
                self.report(uri, format!("client {id}: backchannel_logout_uri {why}"));
            } else if !shares_an_origin(uri.get_ref(), client.redirect_uris.get_ref()) {
                self.report(
                    uri,
                    format!("client {id}: backchannel_logout_uri must have the scheme, host and port of one of its redirect URIs (Back-Channel Logout §2.2)"),
                );
            }
        }
        if let Some(scope) = &client.scope {
            match atlogin_core::client::Scope::parse(scope.get_ref()) {
                Ok(parsed) if parsed.contains("openid") => {
                    let known = ["openid", "profile", "email", "offline_access"];
                    if let Some(unknown) = parsed
                        .tokens()
                        .iter()
                        .find(|t| !known.contains(&t.as_str()))
                    {
                        self.report(scope, format!("client {id}: scope {unknown} is not one atlogin offers (openid, profile, email, offline_access)"));
                    }
                }
                _ => self.report(
                    scope,
                    format!("client {id}: scope must be a space-separated list that holds openid"),
                ),
            }
        }
    }

    /// Checks that exactly one source gives the secret `name`, that it can be
    /// read, that it is long enough, and that an inline one sits in a private file.
    fn secret(
        &mut self,
        name: &str,
        owner: Option<Range<usize>>,
        inline: Option<&Spanned<String>>,
        file: Option<&Spanned<PathBuf>>,
        env: Option<&Spanned<String>>,
        min_len: usize,
    ) {
        let given = usize::from(inline.is_some())
            + usize::from(file.is_some())
            + usize::from(env.is_some());
        if given == 0 {
            let line = owner.map(|span| line_of(self.text, &span));
            self.problems.push(Problem {
                line,
                message: format!("give one of `{name}_file`, `{name}_env` or `{name}`"),
            });
            return;
        }
        if given > 1 {
            let at = [
                inline.map(Spanned::span),
                file.map(Spanned::span),
                env.map(Spanned::span),
            ]
            .into_iter()
            .flatten()
            .max_by_key(|span| span.start);
            if let Some(at) = at {
                self.report_at(
                    &at,
                    format!("give only one of `{name}_file`, `{name}_env` and `{name}`"),
                );
            }
            return;
        }
        let value = if let Some(inline) = inline {
            if self.around.file_is_shared {
                self.report(
                    inline,
                    format!("an inline `{name}` needs a file only its owner can read (chmod 600), or use `{name}_file` or `{name}_env`"),
                );
            }
            Some((inline.span(), inline.get_ref().clone()))
        } else if let Some(file) = file {
            match (self.around.read_file)(file.get_ref()) {
                Ok(text) => Some((file.span(), text.trim_end_matches(['\n', '\r']).to_owned())),
                Err(error) => {
                    self.report(file, format!("{}: {error}", file.get_ref().display()));
                    None
                }
            }
        } else if let Some(env) = env {
            let value = (self.around.env)(env.get_ref());
            if value.is_none() {
                self.report(
                    env,
                    format!("the environment variable {} is not set", env.get_ref()),
                );
            }
            value.map(|value| (env.span(), value))
        } else {
            None
        };
        if let Some((span, value)) = value
            && value.len() < min_len
        {
            self.report_at(
                &span,
                format!("the {name} must be at least {min_len} bytes long"),
            );
        }
    }

    fn report_at(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let line = line_of(self.text, span);
        self.problems.push(Problem {
            line: Some(line),
            message: message.into(),
        });
    }

    fn report_first(&mut self, spans: [Option<Range<usize>>; 3], message: &str) {
        if let Some(span) = spans.into_iter().flatten().min_by_key(|s| s.start) {
            self.report_at(&span, message);
        }
    }
}

fn span_of<T>(value: Option<&Spanned<T>>) -> Option<Range<usize>> {
    value.map(Spanned::span)
}

/// https (http on 127.0.0.1 or `[::1]`, where atlogin is the atproto loopback
/// client), no path, no query, no fragment. The pages link to root paths, and
/// the atproto loopback client accepts only IP literals, not `localhost`.
pub(crate) fn check_public_url(text: &str) -> Result<Url, &'static str> {
    let url = Url::parse(text).map_err(|_| "is not an absolute URL")?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must have no query or fragment");
    }
    if url.path() != "/" {
        return Err("must have no path: atlogin serves from the root of its host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must have no user name or password");
    }
    let loopback_ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback_ip) {
        return Err("must be https (http only on 127.0.0.1 or [::1], for development)");
    }
    Ok(url)
}

/// An absolute https URL (http on loopback) without a fragment.
fn check_client_url(text: &str) -> Result<(), &'static str> {
    let url = Url::parse(text).map_err(|_| "is not an absolute URL")?;
    if url.fragment().is_some() {
        return Err("must have no fragment");
    }
    if url.scheme() != "https" && !is_loopback_http(&url) {
        return Err("must be https (http only on 127.0.0.1, [::1] or localhost)");
    }
    Ok(())
}

/// Whether `uri` has the origin of one of `redirect_uris`.
fn shares_an_origin(uri: &str, redirect_uris: &[Spanned<String>]) -> bool {
    let Ok(uri) = Url::parse(uri) else {
        return false;
    };
    redirect_uris
        .iter()
        .filter_map(|r| Url::parse(r.get_ref()).ok())
        .any(|r| r.origin() == uri.origin())
}

fn is_loopback_http(url: &Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(url::Host::Domain(name)) => name == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
}
