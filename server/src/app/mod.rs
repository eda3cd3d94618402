//! The HTTP service: one axum router over the provider endpoints, the sign-in
//! pages, the atproto client documents and the operations endpoints.
//!
//! | path | what |
//! | --- | --- |
//! | `GET /authorize` | a relying party's request: the sign-in form, or straight to the PDS with `login_hint` |
//! | `POST /authorize` | the form: the typed handle starts the atproto login |
//! | `GET /atproto/callback` | back from the PDS: the identity is proven, the code goes to the relying party |
//! | `GET /.well-known/openid-configuration`, `GET /jwks` | discovery |
//! | `POST /token`, `GET`/`POST /userinfo`, `POST /revoke` | the OIDC endpoints |
//! | `GET /oauth-client-metadata.json`, `GET /oauth/jwks.json` | the atproto client's documents (with a public URL) |
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | operations |
//! | `GET /demo`, `/demo/start`, `/demo/callback` | the built-in demo relying party |

mod demo;
mod oidc;
mod ops;
mod pages;
mod signin;

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use atlogin_core::client::ClientConfig;
use atlogin_core::identity::Mode;
use atlogin_core::jose::crypto::CryptoProvider;
use atlogin_core::provider::ProviderConfig;
use atlogin_core::time::UnixTime;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::routing::{get, post};
use governor::{DefaultKeyedRateLimiter, Quota};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::metrics::Metrics;
use crate::settings::RateLimits;
use crate::store::Store;

pub use demo::{DEMO_CLIENT_ID, Demo};

/// How many authorization requests one address may make per sign-in it may
/// start: people reload and go back, but each request stores a row.
const AUTHORIZE_PER_LOGIN: u32 = 4;

/// The largest request body read, in bytes: forms and token requests are small.
const MAX_BODY_LEN: usize = 64 * 1024;

/// How long one request may take, upstream round trips included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The cookie that ties a sign-in to the browser that started it.
const BROWSER_COOKIE: &str = "atlogin_browser";
/// Its name with a public https URL: `__Host-` makes browsers insist on
/// `Secure`, `Path=/` and no `Domain`.
const BROWSER_COOKIE_SECURE: &str = "__Host-atlogin_browser";

/// Everything the handlers share.
pub struct App {
    /// The OpenID provider; replaced when its keys change on disk.
    provider: RwLock<Arc<ProviderConfig>>,
    /// The atproto OAuth client; replaced when its keys change on disk.
    client: RwLock<Arc<ClientConfig>>,
    /// Builds both again from the keys on disk.
    assembly: crate::serve::Assembly,
    /// Carries out core's requests with the hardened client.
    pub driver: atlogin_tokio::Driver,
    /// Pending logins, codes, tokens.
    pub store: Arc<dyn Store>,
    /// Counters and histograms for `/metrics`.
    pub metrics: Metrics,
    /// How handles and DIDs are read (development allows `.test` names and http).
    pub mode: Mode,
    /// Signs and verifies.
    pub crypto: &'static dyn CryptoProvider,
    /// Whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Whether the public URL is https, so cookies are `Secure`.
    pub secure_cookies: bool,
    /// The built-in demo relying party, when on.
    pub demo: Option<Demo>,
    /// Sends back-channel logout tokens.
    pub logout: crate::logout::LogoutSender,
    /// Work done after a response (upstream revocation, logout tokens), which
    /// a graceful stop waits for.
    pub tasks: tokio_util::task::TaskTracker,
    /// Sign-ins started, per address.
    login_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Token requests, per address.
    token_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Authorization requests (each stores a row), per address.
    authorize_limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("issuer", &self.provider().issuer())
            .field("client_id", &self.client().client_id())
            .finish_non_exhaustive()
    }
}

/// The shared state of the router.
pub type Shared = Arc<App>;

impl App {
    /// Assembles the state.
    #[expect(clippy::too_many_arguments, reason = "assembled once, at start")]
    pub fn new(
        assembly: crate::serve::Assembly,
        provider: ProviderConfig,
        client: ClientConfig,
        driver: atlogin_tokio::Driver,
        store: Arc<dyn Store>,
        mode: Mode,
        trusted_proxies: Vec<IpAddr>,
        rate_limits: RateLimits,
        demo: Option<Demo>,
    ) -> Result<Self, String> {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        let secure_cookies = provider.issuer().starts_with("https://");
        Ok(Self {
            provider: RwLock::new(Arc::new(provider)),
            client: RwLock::new(Arc::new(client)),
            assembly,
            driver,
            store,
            metrics: Metrics::new(),
            mode,
            crypto: crate::crypto::provider(),
            trusted_proxies,
            secure_cookies,
            demo,
            login_limiter: DefaultKeyedRateLimiter::keyed(per_minute(
                rate_limits.logins_per_minute,
            )),
            token_limiter: DefaultKeyedRateLimiter::keyed(per_minute(
                rate_limits.tokens_per_minute,
            )),
            logout: crate::logout::LogoutSender::new()?,
            tasks: tokio_util::task::TaskTracker::new(),
            authorize_limiter: DefaultKeyedRateLimiter::keyed(per_minute(
                rate_limits
                    .logins_per_minute
                    .saturating_mul(AUTHORIZE_PER_LOGIN),
            )),
        })
    }

    /// The provider as it is now.
    pub fn provider(&self) -> Arc<ProviderConfig> {
        // A poisoned lock still holds a whole Arc: writers only swap it.
        self.provider
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The atproto client as it is now.
    pub fn client(&self) -> Arc<ClientConfig> {
        self.client
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Reads both key sets again and, when the keys published or used have
    /// changed (a rotation, a retirement come due), swaps in a provider and a
    /// client built with them. Says whether anything changed.
    pub fn reload_keys(&self) -> Result<bool, crate::serve::ServeError> {
        let (provider, client) = self.assembly.build(now())?;
        let kids = |set: Option<atlogin_core::jose::JwkSet>| -> Vec<String> {
            set.map(|set| {
                set.keys()
                    .iter()
                    .filter_map(|k| k.kid().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
        };
        let mut changed = false;
        if kids(Some(provider.jwks())) != kids(Some(self.provider().jwks())) {
            *self
                .provider
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(provider);
            changed = true;
        }
        if kids(client.jwks()) != kids(self.client().jwks()) {
            *self
                .client
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(client);
            changed = true;
        }
        Ok(changed)
    }

    /// Forgets rate-limit state of addresses that have been quiet.
    pub fn forget_quiet_addresses(&self) {
        self.login_limiter.retain_recent();
        self.token_limiter.retain_recent();
        self.authorize_limiter.retain_recent();
    }

    /// The client address: the peer, or, when the peer is a trusted proxy, the
    /// nearest address in `X-Forwarded-For` that is not one. IPv6 addresses
    /// are cut to their /64, the block one subscriber gets, so that one
    /// subscriber is one rate-limit bucket.
    fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.ip().to_canonical();
        if self.trusted_proxies.contains(&client) {
            let entries: Vec<&str> = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .collect();
            // From the right: each hop appends the address it saw. Stop at the
            // first that is not a trusted proxy, or that does not parse (what is
            // left of it was written by the client and proves nothing).
            for entry in entries.iter().rev() {
                match entry.trim().parse::<IpAddr>() {
                    Ok(ip) if self.trusted_proxies.contains(&ip.to_canonical()) => {}
                    Ok(ip) => {
                        client = ip.to_canonical();
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        match client {
            IpAddr::V6(ip) => {
                let bits = u128::from(ip) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
            IpAddr::V4(_) => client,
        }
    }

    /// The browser cookie's name.
    fn cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            BROWSER_COOKIE_SECURE
        } else {
            BROWSER_COOKIE
        }
    }

    /// The browser cookie's value, if the request carries one.
    fn browser_cookie(&self, headers: &HeaderMap) -> Option<String> {
        let name = self.cookie_name();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, v)| *n == name && is_token(v))
            .map(|(_, v)| v.to_owned())
    }

    /// A `Set-Cookie` for the browser cookie.
    fn set_browser_cookie(&self, value: &str, max_age: Duration) -> HeaderValue {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let cookie = format!(
            "{}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            self.cookie_name(),
            max_age.as_secs()
        );
        // The value is base64url and the rest is fixed text.
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// Whether `value` looks like what [`random_token`] makes: 43 base64url characters.
fn is_token(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The wall clock.
pub fn now() -> UnixTime {
    #[expect(clippy::disallowed_methods, reason = "the server owns the clock")]
    let now = SystemTime::now();
    UnixTime::from_system_time(now)
}

/// A monotonic instant, for measuring how long upstream steps take.
pub fn stopwatch() -> std::time::Instant {
    #[expect(clippy::disallowed_methods, reason = "the server owns the clock")]
    let now = std::time::Instant::now();
    now
}

/// The operating system's RNG.
pub fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

/// A fresh random value, base64url: 32 bytes.
fn random_token() -> String {
    use rand_core::Rng as _;
    let mut bytes = [0u8; 32];
    rng().fill_bytes(&mut bytes);
    atlogin_core::base64url::encode(&bytes)
}

/// Request ids: a per-process random prefix and a counter.
#[derive(Clone, Debug)]
struct RequestIds {
    prefix: Arc<str>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// The router with every endpoint and the layers around them.
pub fn router(app: Shared) -> Router {
    let request_ids = RequestIds {
        prefix: random_token()[..8].into(),
        next: Arc::default(),
    };
    let x_request_id = header::HeaderName::from_static("x-request-id");
    let mut routes = Router::new()
        .route("/authorize", get(signin::authorize).post(signin::start))
        .route("/atproto/callback", get(signin::callback))
        .route("/.well-known/openid-configuration", get(oidc::discovery))
        .route("/jwks", get(oidc::jwks))
        .route("/token", post(oidc::token))
        .route("/userinfo", get(oidc::userinfo).post(oidc::userinfo))
        .route("/revoke", post(oidc::revoke))
        .route("/oauth-client-metadata.json", get(oidc::client_metadata))
        .route("/oauth/jwks.json", get(oidc::client_jwks))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/atlogin.css", get(pages::stylesheet))
        .route("/", get(pages::home));
    if app.demo.is_some() {
        routes = routes
            .route("/demo", get(demo::page))
            .route("/demo/start", get(demo::start))
            .route("/demo/callback", get(demo::callback));
    }
    let csp = if app.mode == Mode::Development {
        "default-src 'none'; style-src 'self'; img-src 'self' https: http:; frame-ancestors 'none'; base-uri 'none'"
    } else {
        "default-src 'none'; style-src 'self'; img-src 'self' https:; frame-ancestors 'none'; base-uri 'none'"
    };
    routes
        .fallback(pages::not_found)
        // Every body is read through an extractor, which enforces this limit.
        .layer(DefaultBodyLimit::max(MAX_BODY_LEN))
        .layer(
            tower::ServiceBuilder::new()
                // The headers go on every answer, the timeout's 503 included.
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(csp),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::X_FRAME_OPTIONS,
                    HeaderValue::from_static("DENY"),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ))
                // A request id a client sends is not believed: atlogin makes its own.
                .map_request(|mut request: Request<axum::body::Body>| {
                    request.headers_mut().remove("x-request-id");
                    request
                })
                .layer(SetRequestIdLayer::new(x_request_id.clone(), request_ids))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                        let id = request
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default();
                        // The path only: queries carry codes and states.
                        tracing::info_span!("request", id, method = %request.method(), path = request.uri().path())
                    }),
                )
                .layer(PropagateRequestIdLayer::new(x_request_id))
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    REQUEST_TIMEOUT,
                )),
        )
        .with_state(app)
}

/// The peer address axum hands the handlers.
type Peer = ConnectInfo<SocketAddr>;
