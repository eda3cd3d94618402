//! The runtime-neutral half of atlogin's runtime adapters.
//!
//! `atlogin-tokio` and `atlogin-async-std` differ only in how they open sockets,
//! speak HTTP and wait: each implements [`Transport`], the hardened fetch and the
//! DNS TXT lookup, and names `Driver<ItsTransport>` its driver. Everything else
//! lives here once:
//!
//! - [`Driver`]: runs a core machine to its end, carrying out the requests it
//!   hands out (those handed out together run at the same time), and the public
//!   API over core (`resolve_identity`, `start_login`, `complete_login`,
//!   `refresh`, `revoke`, `fetch_profile`, `fetch_email`), with the clock and the
//!   operating system's randomness that core takes as arguments;
//! - [`DriverConfig`]: the destination policy, timeouts, body cap, nameservers
//!   and extra roots both adapters honour;
//! - [`hardening`]: the rules of the hardened client that do not depend on a
//!   runtime (the redirect loop, address checks, the `User-Agent`);
//! - [`dns`]: hickory's resolver built from the configuration, and the TXT
//!   lookup, for any hickory runtime provider.
//!
//! Nothing here opens a socket or needs an executor.

pub mod dns;
pub mod hardening;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use atlogin_core::client::{
    AccountEmail, CallbackParams, ClientConfig, ClientError, CompleteLogin, FetchEmail,
    FetchProfile, LoginRequest, LoginStarted, PendingLogin, Profile, Refresh, Refreshed, Revoke,
    RevokeToken, ServerSession, StartLogin, TokenSet, VerifiedLogin,
};
use atlogin_core::identity::{
    AtIdentifier, Did, IdentityConfig, IdentityError, IdentityResolver, ResolvedIdentity,
};
use atlogin_core::netpolicy::NetPolicy;
use atlogin_core::secret::AccessToken;
use atlogin_core::time::UnixTime;
use atlogin_core::transport::{
    Action, Fetch, Machine, RequestId, Response, TransportError, TxtAnswer,
};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;

/// What an adapter provides: the hardened fetch and the DNS TXT lookup.
pub trait Transport: Send + Sync + Sized + 'static {
    /// Builds the transport for this configuration.
    fn from_config(config: DriverConfig) -> Result<Self, DriverError>;

    /// Carries out one fetch under the policy, the limits and the total timeout.
    fn fetch(&self, fetch: Fetch) -> impl Future<Output = Result<Response, TransportError>> + Send;

    /// Looks up the TXT records of `name`.
    fn lookup_txt(&self, name: &str) -> impl Future<Output = TxtAnswer> + Send;
}

/// How the hardened client behaves.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DriverConfig {
    /// Which schemes and addresses may be reached.
    pub policy: NetPolicy,
    /// The longest a connection may take to open: on async-std, per address
    /// tried and again for the TLS handshake; on tokio, as reqwest applies it.
    /// [`total_timeout`](Self::total_timeout) bounds the whole request either
    /// way.
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

/// Drives core machines with the transport `T`.
#[derive(Debug)]
pub struct Driver<T> {
    transport: Arc<T>,
}

impl<T> Clone for Driver<T> {
    fn clone(&self) -> Self {
        Self {
            transport: self.transport.clone(),
        }
    }
}

impl<T: Transport> Driver<T> {
    /// A driver with this configuration.
    pub fn new(config: DriverConfig) -> Result<Self, DriverError> {
        Ok(Self {
            transport: Arc::new(T::from_config(config)?),
        })
    }

    /// The hardened client itself.
    #[must_use]
    pub fn fetcher(&self) -> &T {
        &self.transport
    }

    /// Runs `machine` to its end, carrying out its requests; requests it hands
    /// out together run at the same time.
    pub async fn run<M: Machine>(&self, mut machine: M) -> M::Output {
        let mut pending: FuturesUnordered<BoxFuture<'static, (RequestId, Answer)>> =
            FuturesUnordered::new();
        loop {
            while let Some(action) = machine.poll() {
                match action {
                    Action::Done(output) => return output,
                    Action::Fetch(fetch) => {
                        let transport = self.transport.clone();
                        pending.push(Box::pin(async move {
                            let id = fetch.id;
                            (id, Answer::Http(transport.fetch(fetch).await))
                        }));
                    }
                    Action::LookupTxt(lookup) => {
                        let transport = self.transport.clone();
                        pending.push(Box::pin(async move {
                            let answer = transport.lookup_txt(&lookup.name).await;
                            (lookup.id, Answer::Txt(answer))
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
        let machine = CompleteLogin::new(pending, callback, config, now(), &mut os_rng())?;
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
