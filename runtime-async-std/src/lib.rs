//! Runs [`atlogin_core`]'s machines on async-std — or smol, or any executor
//! that polls `futures-io` types: identity resolution and the whole atproto OAuth
//! login, each one `await` away.
//!
//! The adapter holds no protocol logic. It performs the HTTP requests and DNS TXT
//! lookups the machines hand out, with the same hardened client as
//! `atlogin-tokio`:
//!
//! - https only, unless [`DriverConfig::policy`] allows http (development);
//! - the host is resolved first, every address checked against the policy (no
//!   private, loopback, link-local, unique-local, multicast or unspecified
//!   address unless allowed), and the socket is opened to a checked address
//!   itself, so no second DNS answer can slip in; IP-literal URLs are checked the
//!   same way;
//! - redirects only where the machine allows them, each hop checked again;
//! - bodies read frame by frame and cut off at the cap;
//! - connect and total timeouts, and a `User-Agent` naming atlogin.
//!
//! # Why these parts
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052), so the adapter leans
//! on it as little as it can. Sockets and timers come from `async-io`, the reactor
//! async-std and smol both run on; HTTP/1.1 is `hyper`'s connection-level client
//! (no pool, no executor: the connection is driven inside the request's own
//! future) over `futures-rustls`, bridged by `smol-hyper`'s `futures-io` adapter;
//! DNS is `hickory-resolver` on a small runtime provider over `async-io`. The only
//! thing taken from async-std itself is its global executor, for the
//! background task hickory keeps per name-server connection. The same code
//! therefore runs unchanged under smol (`smol::block_on(driver.start_login(..))`):
//! async-std's executor starts its own threads when first used.
//!
//! ```no_run
//! use std::sync::Arc;
//! use atlogin_core::client::{CallbackParams, ClientConfig, LoginRequest};
//! use atlogin_core::identity::Mode;
//! use atlogin_async_std::{Driver, DriverConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let driver = Driver::new(DriverConfig::default())?;
//! let client = Arc::new(ClientConfig::loopback("http://127.0.0.1:9411/callback".parse()?)?);
//! let started = driver.start_login(LoginRequest::parse("alice.bsky.social", Mode::Production)?, client.clone()).await?;
//! println!("open {}", started.redirect_url);
//! // ... the browser comes back to the callback with a query string ...
//! # let query = "";
//! let verified = driver.complete_login(started.pending, &CallbackParams::parse(query)?, client).await?;
//! println!("{} is {:?} at {}", verified.did, verified.handle, verified.pds);
//! # Ok(()) }
//! ```

mod dns;
mod fetch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use atlogin_core::client::{
    AccountEmail, CallbackParams, ClientConfig, ClientError, FetchEmail, FetchProfile,
    LoginRequest, LoginStarted, PendingLogin, Profile, Refresh, Refreshed, Revoke, RevokeToken,
    ServerSession, StartLogin, TokenSet, VerifiedLogin,
};
use atlogin_core::identity::{
    AtIdentifier, Did, IdentityConfig, IdentityError, IdentityResolver, ResolvedIdentity,
};
use atlogin_core::netpolicy::NetPolicy;
use atlogin_core::secret::AccessToken;
use atlogin_core::time::UnixTime;
use atlogin_core::transport::{Action, Machine, RequestId, Response, TransportError, TxtAnswer};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

pub use fetch::Fetcher;

/// How the hardened client behaves.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DriverConfig {
    /// Which schemes and addresses may be reached.
    pub policy: NetPolicy,
    /// The longest a connection may take to open.
    pub connect_timeout: Duration,
    /// The longest a whole request may take, body included.
    pub total_timeout: Duration,
    /// The largest body read, whatever a machine allows.
    pub max_body_len: usize,
    /// Nameservers for DNS (TXT records and addresses); the system's when `None`.
    pub nameservers: Option<Vec<SocketAddr>>,
    /// Extra trusted root certificates, DER encoded (a test or private CA).
    pub extra_roots: Vec<Vec<u8>>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            policy: NetPolicy::strict(),
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(15),
            max_body_len: 64 * 1024,
            nameservers: None,
            extra_roots: Vec::new(),
        }
    }
}

impl DriverConfig {
    /// Sets the destination policy.
    #[must_use]
    pub fn with_policy(mut self, policy: NetPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Uses these nameservers instead of the system's.
    #[must_use]
    pub fn with_nameservers(mut self, nameservers: Vec<SocketAddr>) -> Self {
        self.nameservers = Some(nameservers);
        self
    }

    /// Sets the connect and total timeouts.
    #[must_use]
    pub fn with_timeouts(mut self, connect: Duration, total: Duration) -> Self {
        self.connect_timeout = connect;
        self.total_timeout = total;
        self
    }

    /// Sets the body cap.
    #[must_use]
    pub fn with_max_body_len(mut self, max: usize) -> Self {
        self.max_body_len = max;
        self
    }

    /// Trusts this extra root certificate (DER).
    #[must_use]
    pub fn with_root_certificate(mut self, der: Vec<u8>) -> Self {
        self.extra_roots.push(der);
        self
    }
}

/// The adapter could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The DNS resolver could not be built (no system configuration, say).
    #[error("DNS resolver: {0}")]
    Dns(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
}

/// Drives core machines on async-std or smol.
#[derive(Clone, Debug)]
pub struct Driver {
    fetcher: Arc<Fetcher>,
}

impl Driver {
    /// A driver with this configuration.
    pub fn new(config: DriverConfig) -> Result<Self, DriverError> {
        Ok(Self {
            fetcher: Arc::new(Fetcher::new(config)?),
        })
    }

    /// The hardened client itself.
    #[must_use]
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// Runs `machine` to its end, carrying out its requests; requests it hands
    /// out together run at the same time.
    pub async fn run<M: Machine>(&self, mut machine: M) -> M::Output {
        let mut pending = FuturesUnordered::new();
        loop {
            while let Some(action) = machine.poll() {
                match action {
                    Action::Done(output) => return output,
                    Action::Fetch(fetch) => {
                        let fetcher = self.fetcher.clone();
                        pending.push(Box::pin(async move {
                            let id = fetch.id;
                            (id, Answer::Http(fetcher.fetch(fetch).await))
                        })
                            as futures_util::future::BoxFuture<'static, (RequestId, Answer)>);
                    }
                    Action::LookupTxt(lookup) => {
                        let fetcher = self.fetcher.clone();
                        pending.push(Box::pin(async move {
                            (
                                lookup.id,
                                Answer::Txt(fetcher.lookup_txt(&lookup.name).await),
                            )
                        }));
                    }
                }
            }
            let Some((id, answer)) = pending.next().await else {
                // A machine that waits for nothing and has no result would be a bug
                // in core; it cannot happen with the machines core ships.
                std::future::pending::<()>().await;
                continue;
            };
            machine.handle_time(now());
            match answer {
                Answer::Http(response) => machine.handle_response(id, response),
                Answer::Txt(records) => machine.handle_txt(id, records),
            }
        }
    }

    /// Resolves a handle or DID to a verified identity.
    pub async fn resolve_identity(
        &self,
        identifier: AtIdentifier,
        config: &IdentityConfig,
    ) -> Result<ResolvedIdentity, IdentityError> {
        self.run(IdentityResolver::new(identifier, config.clone()))
            .await
    }

    /// Starts a login: returns the URL to send the browser to and what to store.
    pub async fn start_login(
        &self,
        request: LoginRequest,
        config: Arc<ClientConfig>,
    ) -> Result<LoginStarted, ClientError> {
        let machine = StartLogin::new(request, config, now(), &mut os_rng())?;
        self.run(machine).await
    }

    /// Completes a login from the callback's query.
    pub async fn complete_login(
        &self,
        pending: PendingLogin,
        callback: &CallbackParams,
        config: Arc<ClientConfig>,
    ) -> Result<VerifiedLogin, ClientError> {
        let machine = atlogin_core::client::CompleteLogin::new(
            pending,
            callback,
            config,
            now(),
            &mut os_rng(),
        )?;
        self.run(machine).await
    }

    /// Exchanges the refresh token for new tokens.
    pub async fn refresh(
        &self,
        session: ServerSession,
        tokens: TokenSet,
        config: Arc<ClientConfig>,
    ) -> Result<Refreshed, ClientError> {
        self.run(Refresh::new(session, tokens, config, now(), &mut os_rng())?)
            .await
    }

    /// Revokes a token at the authorization server.
    pub async fn revoke(
        &self,
        session: ServerSession,
        token: RevokeToken,
        config: Arc<ClientConfig>,
    ) -> Result<(), ClientError> {
        self.run(Revoke::new(session, token, config, now(), &mut os_rng())?)
            .await
    }

    /// Reads the public profile (display name, avatar).
    pub async fn fetch_profile(&self, did: &Did, pds: &url::Url) -> Result<Profile, ClientError> {
        self.run(FetchProfile::new(did, pds)).await
    }

    /// Reads the account's email with the session's access token.
    pub async fn fetch_email(
        &self,
        session: ServerSession,
        token: AccessToken,
        did: &Did,
        pds: &url::Url,
        config: Arc<ClientConfig>,
    ) -> Result<AccountEmail, ClientError> {
        self.run(FetchEmail::new(
            session,
            token,
            did,
            pds,
            config,
            now(),
            &mut os_rng(),
        )?)
        .await
    }
}

enum Answer {
    Http(Result<Response, TransportError>),
    Txt(TxtAnswer),
}

/// The current time: the adapter owns the clock.
fn now() -> UnixTime {
    #[expect(
        clippy::disallowed_methods,
        reason = "the runtime adapter is where the clock lives"
    )]
    let now = SystemTime::now();
    UnixTime::from_system_time(now)
}

/// The operating system's RNG: the adapter is where randomness comes from.
fn os_rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}
