//! The hardened HTTP client and the DNS TXT lookup.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use async_io::{Async, Timer};
use atlogin_core::transport::{Fetch, Response, TransportError, TxtAnswer};
use atlogin_driver::hardening::{self, Hop, USER_AGENT};
use atlogin_driver::{DriverConfig, DriverError, Transport, dns};
use bytes::Bytes;
use futures_rustls::TlsConnector;
use futures_rustls::pki_types::ServerName;
use hickory_resolver::Resolver;
use http_body_util::{BodyExt, Full};
use smol_hyper::rt::FuturesIo;

use crate::dns::AsyncIoRuntime;

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

impl Transport for Fetcher {
    fn from_config(config: DriverConfig) -> Result<Self, DriverError> {
        let dns = dns::resolver(&config, AsyncIoRuntime)?;
        let mut tls = hardening::tls_config(&config.extra_roots)?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            tls: TlsConnector::from(Arc::new(tls)),
            dns,
            config,
        })
    }

    fn fetch(&self, fetch: Fetch) -> impl Future<Output = Result<Response, TransportError>> + Send {
        within(
            self.config.total_timeout,
            Err(TransportError::Timeout),
            hardening::with_redirects(
                &self.config.policy,
                self.config.max_body_len,
                fetch,
                |hop| self.exchange(hop),
            ),
        )
    }

    fn lookup_txt(&self, name: &str) -> impl Future<Output = TxtAnswer> + Send {
        dns::lookup_txt(&self.dns, name)
    }
}

impl Fetcher {
    /// The addresses `url`'s host may be reached at, every one checked.
    async fn addresses(&self, url: &url::Url) -> Result<Vec<SocketAddr>, TransportError> {
        let port = url
            .port_or_known_default()
            .ok_or_else(|| TransportError::Blocked("no port".into()))?;
        let ips: Vec<IpAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            Some(url::Host::Domain(name)) => self
                .dns
                .lookup_ip(dns::fully_qualified(name).as_str())
                .await
                .map_err(|e| TransportError::Connect(format!("resolving {name}: {e}")))?
                .iter()
                .collect(),
            None => return Err(TransportError::Blocked("no host".into())),
        };
        hardening::checked_addresses(&self.config.policy, ips, port)
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
    async fn exchange(&self, hop: Hop) -> Result<Response, TransportError> {
        let url = &hop.url;
        let (cap, follows) = (hop.max_body_len, hop.follows_redirects);
        let tcp = self.connect(url).await?;
        let outgoing = outgoing(url, &hop.request)?;
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
        if hardening::is_followed_redirect(follows, parts.status, &parts.headers) {
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
