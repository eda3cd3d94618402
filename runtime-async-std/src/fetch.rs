//! The hardened HTTP client and the DNS TXT lookup.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use async_io::{Async, Timer};
use atlogin_core::transport::{Fetch, Response, TransportError, TxtAnswer};
use bytes::Bytes;
use futures_rustls::TlsConnector;
use futures_rustls::pki_types::ServerName;
use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::proto::rr::RData;
use http_body_util::{BodyExt, Full};
use smol_hyper::rt::FuturesIo;

use super::dns::AsyncIoRuntime;
use super::{DriverConfig, DriverError};

/// The `User-Agent` of every request.
const USER_AGENT: &str = concat!(
    "atlogin/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/atlogin/atlogin)"
);

/// The hardened client: HTTP with the destination policy, body cap, timeouts and
/// redirect budget, and DNS TXT lookups.
pub struct Fetcher {
    tls: TlsConnector,
    dns: Resolver<AsyncIoRuntime>,
    config: DriverConfig,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Runs `future`, or gives `on_timeout` after `limit`.
async fn within<T>(limit: Duration, on_timeout: T, future: impl Future<Output = T>) -> T {
    futures_lite::future::or(future, async {
        Timer::after(limit).await;
        on_timeout
    })
    .await
}

impl Fetcher {
    /// Builds the client and the resolver.
    pub fn new(config: DriverConfig) -> Result<Self, DriverError> {
        let dns = resolver(&config)?;
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for der in &config.extra_roots {
            roots
                .add(der.clone().into())
                .map_err(|e| DriverError::Http(e.to_string()))?;
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| DriverError::Http(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            tls: TlsConnector::from(Arc::new(tls)),
            dns,
            config,
        })
    }

    /// Carries out one fetch under the policy, the limits and the total timeout.
    pub async fn fetch(&self, fetch: Fetch) -> Result<Response, TransportError> {
        within(
            self.config.total_timeout,
            Err(TransportError::Timeout),
            self.fetch_inner(fetch),
        )
        .await
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
            let follows = fetch.limits.max_redirects > 0 && request.method() == http::Method::GET;
            let response = self.exchange(&url, &request, cap, follows).await?;
            if follows && response.status().is_redirection() {
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
                    *request.uri_mut() = next
                        .as_str()
                        .parse()
                        .map_err(|_| TransportError::Blocked("bad redirect".into()))?;
                    if next.origin() != url.origin() {
                        strip_credentials(request.headers_mut());
                    }
                    continue;
                }
            }
            return Ok(response);
        }
    }

    /// The addresses `url`'s host may be reached at, every one checked.
    async fn addresses(&self, url: &url::Url) -> Result<Vec<SocketAddr>, TransportError> {
        let port = url
            .port_or_known_default()
            .ok_or_else(|| TransportError::Blocked("no port".into()))?;
        let policy = &self.config.policy;
        let ips: Vec<IpAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            Some(url::Host::Domain(name)) => {
                let fqdn = format!("{}.", name.trim_end_matches('.'));
                self.dns
                    .lookup_ip(fqdn.as_str())
                    .await
                    .map_err(|e| TransportError::Connect(format!("resolving {name}: {e}")))?
                    .iter()
                    .collect()
            }
            None => return Err(TransportError::Blocked("no host".into())),
        };
        let mut allowed = Vec::new();
        let mut refused = None;
        for ip in ips {
            match policy.check_ip(ip) {
                Ok(()) => allowed.push(SocketAddr::new(ip, port)),
                Err(refusal) => refused = Some(refusal),
            }
        }
        match (allowed.is_empty(), refused) {
            (true, Some(refusal)) => Err(TransportError::Blocked(refusal.to_string())),
            (true, None) => Err(TransportError::Connect("the name has no address".into())),
            _ => Ok(allowed),
        }
    }

    /// Connects to the first checked address that answers in time.
    async fn connect(&self, url: &url::Url) -> Result<Async<TcpStream>, TransportError> {
        let mut last = TransportError::Connect("no address".into());
        for address in self.addresses(url).await? {
            let attempt = within(
                self.config.connect_timeout,
                Err(TransportError::Timeout),
                async {
                    Async::<TcpStream>::connect(address)
                        .await
                        .map_err(|e| TransportError::Connect(e.to_string()))
                },
            )
            .await;
            match attempt {
                Ok(stream) => return Ok(stream),
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    /// One request and its capped response, on a fresh connection.
    async fn exchange(
        &self,
        url: &url::Url,
        request: &http::Request<Vec<u8>>,
        cap: usize,
        follows: bool,
    ) -> Result<Response, TransportError> {
        let tcp = self.connect(url).await?;
        let outgoing = outgoing(url, request)?;
        if url.scheme() == "https" {
            let name = match url.host() {
                Some(url::Host::Domain(name)) => ServerName::try_from(name.to_owned())
                    .map_err(|_| TransportError::Blocked("bad host name".into()))?,
                Some(url::Host::Ipv4(ip)) => ServerName::from(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => ServerName::from(IpAddr::V6(ip)),
                None => return Err(TransportError::Blocked("no host".into())),
            };
            let stream = within(
                self.config.connect_timeout,
                Err(TransportError::Timeout),
                async {
                    self.tls
                        .connect(name, tcp)
                        .await
                        .map_err(|e| TransportError::Connect(format!("TLS: {e}")))
                },
            )
            .await?;
            send(FuturesIo::new(stream), outgoing, cap, follows).await
        } else {
            send(FuturesIo::new(tcp), outgoing, cap, follows).await
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

/// The request as it goes on the wire: origin-form target, `Host`, our
/// `User-Agent`.
fn outgoing(
    url: &url::Url,
    request: &http::Request<Vec<u8>>,
) -> Result<http::Request<Full<Bytes>>, TransportError> {
    let malformed = |_| TransportError::Blocked("the request is malformed".into());
    let mut target = url.path().to_owned();
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    let mut host = url.host_str().unwrap_or_default().to_owned();
    if let Some(port) = url.port() {
        host = format!("{host}:{port}");
    }
    let mut out = http::Request::new(Full::new(Bytes::from(request.body().clone())));
    *out.method_mut() = request.method().clone();
    *out.uri_mut() = target
        .parse()
        .map_err(|e: http::uri::InvalidUri| malformed(e.to_string()))?;
    *out.headers_mut() = request.headers().clone();
    out.headers_mut().insert(
        http::header::HOST,
        host.parse()
            .map_err(|e: http::header::InvalidHeaderValue| malformed(e.to_string()))?,
    );
    out.headers_mut().insert(
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    );
    // One request per connection.
    out.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    Ok(out)
}

/// Sends `request` over a fresh HTTP/1.1 connection and reads the body chunk by
/// chunk, refusing more than `cap` bytes; a redirect that `follows` leaves its
/// body unread. The connection is driven in this same future: no task is
/// spawned, whatever executor polls it.
async fn send<T>(
    io: FuturesIo<T>,
    request: http::Request<Full<Bytes>>,
    cap: usize,
    follows: bool,
) -> Result<Response, TransportError>
where
    T: futures_lite::io::AsyncRead + futures_lite::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| TransportError::Connect(e.to_string()))?;
    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        let (parts, mut body) = response.into_parts();
        if follows
            && parts.status.is_redirection()
            && parts.headers.contains_key(http::header::LOCATION)
        {
            return Ok(http::Response::from_parts(parts, Vec::new()));
        }
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > cap as u64) {
            return Err(TransportError::BodyTooLarge(cap));
        }
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| TransportError::Connect(e.to_string()))?;
            if let Ok(chunk) = frame.into_data() {
                if bytes.len() + chunk.len() > cap {
                    return Err(TransportError::BodyTooLarge(cap));
                }
                bytes.extend_from_slice(&chunk);
            }
        }
        Ok(http::Response::from_parts(parts, bytes))
    };
    let drive = async {
        // Whatever ends the connection reaches the exchange too, as an error on
        // the request or the body; an error after the last byte (a reset, a TLS
        // close without close_notify) must not throw a whole response away.
        let _ = connection.await;
        std::future::pending().await
    };
    futures_lite::future::or(exchange, drive).await
}

/// Drops what authenticates a request before it follows a redirect to another
/// origin.
fn strip_credentials(headers: &mut http::HeaderMap) {
    headers.remove(http::header::AUTHORIZATION);
    headers.remove(http::header::COOKIE);
    headers.remove("dpop");
}

fn resolver(config: &DriverConfig) -> Result<Resolver<AsyncIoRuntime>, DriverError> {
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
            Resolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), name_servers),
                AsyncIoRuntime,
            )
        }
        None => Resolver::builder(AsyncIoRuntime).map_err(|e| DriverError::Dns(e.to_string()))?,
    };
    builder.build().map_err(|e| DriverError::Dns(e.to_string()))
}
