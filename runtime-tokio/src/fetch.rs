//! The hardened HTTP client and the DNS TXT lookup, on tokio.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use atlogin_core::transport::{Fetch, Response, TransportError, TxtAnswer};
use atlogin_driver::hardening::{self, Hop, USER_AGENT};
use atlogin_driver::{DriverConfig, DriverError, Transport, dns};
use hickory_resolver::TokioResolver;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A destination the policy refused, carried through reqwest's error chain.
#[derive(Debug)]
struct Blocked(TransportError);

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
    policy: atlogin_core::netpolicy::NetPolicy,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let dns = self.dns.clone();
        let policy = self.policy.clone();
        Box::pin(async move {
            let found = dns
                .lookup_ip(dns::fully_qualified(name.as_str()).as_str())
                .await?;
            // reqwest puts the URL's port on each address.
            match hardening::checked_addresses(&policy, found.iter(), 0) {
                Ok(allowed) => Ok(Box::new(allowed.into_iter()) as Addrs),
                Err(error) => Err(Box::new(Blocked(error)) as Box<dyn StdError + Send + Sync>),
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

impl Transport for Fetcher {
    fn from_config(config: DriverConfig) -> Result<Self, DriverError> {
        let dns = Arc::new(dns::resolver(&config, TokioRuntimeProvider::default())?);
        let tls = hardening::tls_config(&config.extra_roots)?;
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

    async fn fetch(&self, fetch: Fetch) -> Result<Response, TransportError> {
        let all = hardening::with_redirects(
            &self.config.policy,
            self.config.max_body_len,
            fetch,
            |hop| self.exchange(hop),
        );
        match tokio::time::timeout(self.config.total_timeout, all).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout),
        }
    }

    fn lookup_txt(&self, name: &str) -> impl Future<Output = TxtAnswer> + Send {
        dns::lookup_txt(&self.dns, name)
    }
}

impl Fetcher {
    /// One request; the body read under the cap unless it is a redirect to follow.
    async fn exchange(&self, hop: Hop) -> Result<Response, TransportError> {
        let outgoing = reqwest::Request::try_from(hop.request)
            .map_err(|_| TransportError::Blocked("the request is malformed".into()))?;
        let response = self.http.execute(outgoing).await.map_err(transport_error)?;
        if hardening::is_followed_redirect(
            hop.follows_redirects,
            response.status(),
            response.headers(),
        ) {
            let mut head = http::Response::new(Vec::new());
            *head.status_mut() = response.status();
            *head.headers_mut() = response.headers().clone();
            return Ok(head);
        }
        read_capped(response, hop.max_body_len).await
    }
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
            return refused.clone();
        }
        source = current.source();
    }
    if error.is_timeout() {
        TransportError::Timeout
    } else {
        TransportError::Connect(error.without_url().to_string())
    }
}
