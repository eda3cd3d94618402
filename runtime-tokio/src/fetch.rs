//! The hardened HTTP client and the DNS TXT lookup.

use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use atlogin_core::netpolicy::{NetPolicy, Refused};
use atlogin_core::transport::{Fetch, Response, TransportError, TxtAnswer};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{DriverConfig, DriverError};

/// The `User-Agent` of every request.
const USER_AGENT: &str = concat!(
    "atlogin/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/atlogin/atlogin)"
);

/// A destination the policy refused, carried through reqwest's error chain.
#[derive(Debug)]
struct Blocked(Refused);

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for Blocked {}

/// Resolves names for reqwest and lets through only the addresses the policy
/// allows: reqwest connects to exactly what this returns.
struct CheckedResolver {
    dns: Arc<TokioResolver>,
    policy: NetPolicy,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let dns = self.dns.clone();
        let policy = self.policy.clone();
        Box::pin(async move {
            // Fully qualified: no search domain from resolv.conf may be appended
            // to a name that came from a handle or a DID document.
            let fqdn = format!("{}.", name.as_str().trim_end_matches('.'));
            let found = dns.lookup_ip(fqdn.as_str()).await?;
            let mut allowed = Vec::new();
            let mut refused = None;
            for ip in found.iter() {
                match policy.check_ip(ip) {
                    Ok(()) => allowed.push(SocketAddr::new(ip, 0)),
                    Err(refusal) => refused = Some(refusal),
                }
            }
            match (allowed.is_empty(), refused) {
                // Every address was refused: say why, rather than "not found".
                (true, Some(refusal)) => {
                    Err(Box::new(Blocked(refusal)) as Box<dyn StdError + Send + Sync>)
                }
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// The hardened client: HTTP with the destination policy, body cap, timeouts and
/// redirect budget, and DNS TXT lookups.
pub struct Fetcher {
    http: reqwest::Client,
    dns: Arc<TokioResolver>,
    config: DriverConfig,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// Builds the client and the resolver.
    pub fn new(config: DriverConfig) -> Result<Self, DriverError> {
        let dns = Arc::new(resolver(&config)?);
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for der in &config.extra_roots {
            roots
                .add(der.clone().into())
                .map_err(|e| DriverError::Http(e.to_string()))?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| DriverError::Http(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .dns_resolver(Arc::new(CheckedResolver {
                dns: dns.clone(),
                policy: config.policy.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .user_agent(USER_AGENT)
            .no_proxy()
            .build()
            .map_err(|e| DriverError::Http(e.to_string()))?;
        Ok(Self { http, dns, config })
    }

    /// Carries out one fetch under the policy, the limits and the total timeout.
    pub async fn fetch(&self, fetch: Fetch) -> Result<Response, TransportError> {
        match tokio::time::timeout(self.config.total_timeout, self.fetch_inner(fetch)).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout),
        }
    }

    async fn fetch_inner(&self, fetch: Fetch) -> Result<Response, TransportError> {
        let cap = fetch.limits.max_body_len.min(self.config.max_body_len);
        let mut request = fetch.request;
        let mut hops = 0u8;
        loop {
            let url = url::Url::parse(&request.uri().to_string())
                .map_err(|_| TransportError::Blocked("not an absolute URL".into()))?;
            self.config
                .policy
                .check_url(&url)
                .map_err(|refused| TransportError::Blocked(refused.to_string()))?;
            let method = request.method().clone();
            let outgoing = reqwest::Request::try_from(clone_request(&request))
                .map_err(|_| TransportError::Blocked("the request is malformed".into()))?;
            let response = self.http.execute(outgoing).await.map_err(transport_error)?;
            let status = response.status();
            if status.is_redirection()
                && fetch.limits.max_redirects > 0
                && method == http::Method::GET
            {
                let location = response
                    .headers()
                    .get(http::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| url.join(v).ok());
                if let Some(next) = location {
                    hops += 1;
                    if hops > fetch.limits.max_redirects {
                        return Err(TransportError::TooManyRedirects);
                    }
                    let uri = next
                        .as_str()
                        .parse()
                        .map_err(|_| TransportError::Blocked("bad redirect".into()))?;
                    *request.uri_mut() = uri;
                    if next.origin() != url.origin() {
                        strip_credentials(request.headers_mut());
                    }
                    continue;
                }
            }
            return read_capped(response, cap).await;
        }
    }

    /// Looks up the TXT records of `name`.
    pub async fn lookup_txt(&self, name: &str) -> TxtAnswer {
        let fqdn = format!("{name}.");
        match self.dns.txt_lookup(fqdn.as_str()).await {
            Ok(lookup) => {
                let records: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::TXT(txt) => {
                            let joined: Vec<u8> = txt
                                .txt_data
                                .iter()
                                .flat_map(|part| part.iter().copied())
                                .collect();
                            String::from_utf8(joined).ok()
                        }
                        _ => None,
                    })
                    .collect();
                if records.is_empty() {
                    TxtAnswer::NoRecords
                } else {
                    TxtAnswer::Records(records)
                }
            }
            Err(error) if error.is_no_records_found() || error.is_nx_domain() => {
                TxtAnswer::NoRecords
            }
            Err(error) => TxtAnswer::Failed(error.to_string()),
        }
    }
}

/// Drops what authenticates a request before it follows a redirect to another
/// origin.
fn strip_credentials(headers: &mut http::HeaderMap) {
    headers.remove(http::header::AUTHORIZATION);
    headers.remove(http::header::COOKIE);
    headers.remove("dpop");
}

fn resolver(config: &DriverConfig) -> Result<TokioResolver, DriverError> {
    let provider = TokioRuntimeProvider::default();
    let builder = match &config.nameservers {
        Some(servers) => {
            let name_servers = servers
                .iter()
                .map(|server| {
                    let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                    for connection in &mut ns.connections {
                        connection.port = server.port();
                    }
                    ns
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), name_servers),
                provider,
            )
        }
        None => TokioResolver::builder_tokio().map_err(|e| DriverError::Dns(e.to_string()))?,
    };
    builder.build().map_err(|e| DriverError::Dns(e.to_string()))
}

fn clone_request(request: &http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// Reads the body chunk by chunk, refusing more than `cap` bytes.
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Response, TransportError> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(TransportError::BodyTooLarge(cap));
    }
    let mut out = http::Response::new(Vec::new());
    *out.status_mut() = response.status();
    *out.headers_mut() = response.headers().clone();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if out.body().len() + chunk.len() > cap {
            return Err(TransportError::BodyTooLarge(cap));
        }
        out.body_mut().extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Maps a reqwest error, finding a policy refusal anywhere in its chain.
fn transport_error(error: reqwest::Error) -> TransportError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&error);
    while let Some(current) = source {
        if let Some(Blocked(refused)) = current.downcast_ref::<Blocked>() {
            return TransportError::Blocked(refused.to_string());
        }
        source = current.source();
    }
    if error.is_timeout() {
        TransportError::Timeout
    } else {
        TransportError::Connect(error.without_url().to_string())
    }
}
