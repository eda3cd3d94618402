//! The hardened client's rules that do not depend on a runtime: the redirect
//! loop with its per-hop policy check, the address check after DNS, and what
//! every request carries.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use atlogin_core::netpolicy::NetPolicy;
use atlogin_core::transport::{Fetch, Response, TransportError};

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!(
    "atlogin/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/atlogin/atlogin)"
);

/// The TLS client configuration of both adapters: the *ring* provider, safe
/// protocol versions, the webpki roots plus `extra_roots`, no client auth.
pub fn tls_config(extra_roots: &[Vec<u8>]) -> Result<rustls::ClientConfig, crate::DriverError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for der in extra_roots {
        roots
            .add(der.clone().into())
            .map_err(|e| crate::DriverError::Http(e.to_string()))?;
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| crate::DriverError::Http(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// One request on the wire, as the redirect loop hands it to an adapter.
#[derive(Debug)]
pub struct Hop {
    /// The request's URL, already checked against the policy.
    pub url: url::Url,
    /// The request (its URI is `url`).
    pub request: http::Request<Vec<u8>>,
    /// The body cap for the answer.
    pub max_body_len: usize,
    /// Whether a redirect answer will be followed: the adapter then returns its
    /// head with an empty body instead of reading the body.
    pub follows_redirects: bool,
}

/// Carries out `fetch` with `exchange` doing each single request: checks every
/// URL against `policy` before it is requested, follows redirects only within
/// the machine's budget (and only for GET), drops credentials on a hop to
/// another origin, and caps the body at the smaller of the machine's limit and
/// `max_body_len`.
pub async fn with_redirects<F, Fut>(
    policy: &NetPolicy,
    max_body_len: usize,
    fetch: Fetch,
    mut exchange: F,
) -> Result<Response, TransportError>
where
    F: FnMut(Hop) -> Fut,
    Fut: Future<Output = Result<Response, TransportError>>,
{
    let cap = fetch.limits.max_body_len.min(max_body_len);
    let budget = fetch.limits.max_redirects;
    let mut request = fetch.request;
    let mut hops = 0u8;
    loop {
        let url = url::Url::parse(&request.uri().to_string())
            .map_err(|_| TransportError::Blocked("not an absolute URL".into()))?;
        policy
            .check_url(&url)
            .map_err(|refused| TransportError::Blocked(refused.to_string()))?;
        let follows = budget > 0 && request.method() == http::Method::GET;
        let response = exchange(Hop {
            url: url.clone(),
            request: copy_request(&request),
            max_body_len: cap,
            follows_redirects: follows,
        })
        .await?;
        let next = follows.then(|| redirect_target(&url, &response)).flatten();
        let Some(next) = next else {
            return Ok(response);
        };
        hops += 1;
        if hops > budget {
            return Err(TransportError::TooManyRedirects);
        }
        *request.uri_mut() = next
            .as_str()
            .parse()
            .map_err(|_| TransportError::Blocked("bad redirect".into()))?;
        if next.origin() != url.origin() {
            strip_credentials(request.headers_mut());
        }
    }
}

/// Where a redirect answer points, resolved against the URL it answered.
fn redirect_target(url: &url::Url, response: &Response) -> Option<url::Url> {
    if !response.status().is_redirection() {
        return None;
    }
    response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url.join(v).ok())
}

/// Whether an adapter may leave an answer's body unread: a redirect the loop
/// will follow (`follows_redirects` is the hop's).
#[must_use]
pub fn is_followed_redirect(
    follows_redirects: bool,
    status: http::StatusCode,
    headers: &http::HeaderMap,
) -> bool {
    follows_redirects && status.is_redirection() && headers.contains_key(http::header::LOCATION)
}

/// A copy of `request` for one hop (`http::Request` is not `Clone`: extensions).
fn copy_request(request: &http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// Drops what authenticates a request before it follows a redirect to another
/// origin.
fn strip_credentials(headers: &mut http::HeaderMap) {
    headers.remove(http::header::AUTHORIZATION);
    headers.remove(http::header::COOKIE);
    headers.remove("dpop");
}

/// The addresses a name resolved to that `policy` allows, with `port`; when
/// every one is refused, the refusal.
pub fn checked_addresses(
    policy: &NetPolicy,
    found: impl IntoIterator<Item = IpAddr>,
    port: u16,
) -> Result<Vec<SocketAddr>, TransportError> {
    let mut allowed = Vec::new();
    let mut refused = None;
    for ip in found {
        match policy.check_ip(ip) {
            Ok(()) => allowed.push(SocketAddr::new(ip, port)),
            Err(refusal) => refused = Some(refusal),
        }
    }
    match (allowed.is_empty(), refused) {
        // Every address was refused: say why, rather than "not found".
        (true, Some(refusal)) => Err(TransportError::Blocked(refusal.to_string())),
        (true, None) => Err(TransportError::Connect("the name has no address".into())),
        (false, _) => Ok(allowed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlogin_core::transport::{FetchLimits, RequestId};

    fn answer(status: u16, location: Option<&str>) -> Response {
        let mut response = http::Response::new(b"body".to_vec());
        *response.status_mut() = http::StatusCode::from_u16(status).expect("status");
        if let Some(location) = location {
            response
                .headers_mut()
                .insert(http::header::LOCATION, location.parse().expect("value"));
        }
        response
    }

    fn get(url: &str, redirects: u8) -> Fetch {
        let mut request = http::Request::new(Vec::new());
        *request.uri_mut() = url.parse().expect("uri");
        request.headers_mut().insert(
            http::header::AUTHORIZATION,
            "DPoP t".parse().expect("value"),
        );
        Fetch::new(
            RequestId::new(1),
            request,
            FetchLimits::new(1024, redirects),
        )
    }

    fn run(fetch: Fetch, answers: &[Response]) -> (Result<Response, TransportError>, Vec<String>) {
        let mut seen = Vec::new();
        let mut answers = answers.iter().cloned();
        let result = futures_util::FutureExt::now_or_never(with_redirects(
            &NetPolicy::strict(),
            512,
            fetch,
            |hop| {
                seen.push(format!(
                    "{} cap={} follows={} auth={}",
                    hop.url,
                    hop.max_body_len,
                    hop.follows_redirects,
                    hop.request
                        .headers()
                        .contains_key(http::header::AUTHORIZATION)
                ));
                let next = answers.next().expect("an answer for every hop");
                async move { Ok(next) }
            },
        ))
        .expect("no waiting");
        (result, seen)
    }

    #[test]
    fn follows_within_the_budget_and_drops_credentials_across_origins() {
        let (result, seen) = run(
            get("https://a.example/x", 2),
            &[
                answer(302, Some("/y")),
                answer(301, Some("https://b.example/z")),
                answer(200, None),
            ],
        );
        assert_eq!(result.expect("answer").status(), 200);
        assert_eq!(
            seen,
            [
                "https://a.example/x cap=512 follows=true auth=true",
                "https://a.example/y cap=512 follows=true auth=true",
                "https://b.example/z cap=512 follows=true auth=false",
            ]
        );
    }

    #[test]
    fn refuses_hops_beyond_the_budget_and_off_the_policy() {
        let (result, _) = run(
            get("https://a.example/x", 1),
            &[answer(302, Some("/y")), answer(302, Some("/z"))],
        );
        assert_eq!(result.err(), Some(TransportError::TooManyRedirects));
        let (result, seen) = run(
            get("https://a.example/x", 1),
            &[answer(302, Some("http://a.example/plain"))],
        );
        assert!(
            matches!(result, Err(TransportError::Blocked(_))),
            "{result:?}"
        );
        assert_eq!(seen.len(), 1, "the http hop is never requested");
    }

    #[test]
    fn hands_back_redirects_when_none_may_be_followed() {
        let (result, seen) = run(get("https://a.example/x", 0), &[answer(302, Some("/y"))]);
        assert_eq!(result.expect("answer").status(), 302);
        assert_eq!(
            seen,
            ["https://a.example/x cap=512 follows=false auth=true"]
        );
    }

    #[test]
    fn checks_every_resolved_address() {
        let policy = NetPolicy::strict();
        let public: IpAddr = "93.184.215.14".parse().expect("ip");
        let private: IpAddr = "10.0.0.1".parse().expect("ip");
        assert_eq!(
            checked_addresses(&policy, [private, public], 443).expect("one allowed"),
            [SocketAddr::new(public, 443)]
        );
        assert!(matches!(
            checked_addresses(&policy, [private], 443),
            Err(TransportError::Blocked(_))
        ));
        assert!(matches!(
            checked_addresses(&policy, [], 443),
            Err(TransportError::Connect(_))
        ));
    }
}
