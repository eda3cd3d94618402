//! `atlogin serve`: assembles keys, store, provider, atproto client and router,
//! listens, sweeps expired rows, and stops gracefully.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use atlogin_core::client::{ClientConfig, Scope};
use atlogin_core::identity::{IdentityConfig, Mode};
use atlogin_core::netpolicy::NetPolicy;
use atlogin_core::provider::ProviderConfig;
use atlogin_core::time::UnixTime;
use atlogin_tokio::DriverConfig;
use url::Url;

use crate::app::{self, App, Demo};
use crate::keys::{KeySet, KeyStore};
use crate::settings::{Settings, StoreSettings};
use crate::store::{PgStore, SqliteStore, Store};

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a stop waits for requests in flight, then for background work.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// How often expired rows are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The upstream scope atlogin's atproto client is registered with: the
/// identity, and the email address for relying parties that ask for it.
const CLIENT_SCOPE: &str = "atproto transition:email";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The keys could not be loaded or made.
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyStoreError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The listening socket could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The settings do not make a valid provider or client.
    #[error("invalid settings: {0}")]
    Settings(String),
}

/// How the hardened client reaches people's PDSes and handle hosts.
fn driver_config(upstream: &crate::settings::Upstream) -> Result<DriverConfig, String> {
    let mut config = DriverConfig::default();
    if upstream.development {
        config = config.with_policy(NetPolicy::development());
    }
    if !upstream.nameservers.is_empty() {
        config = config.with_nameservers(upstream.nameservers.clone());
    }
    for path in &upstream.ca_certificates {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
        for der in crate::settings::pem_certificates(&text).map_err(|e| format!("{shown}: {e}"))? {
            config = config.with_root_certificate(der);
        }
    }
    Ok(config)
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// The address it listens on.
    pub address: SocketAddr,
    /// Its issuer.
    pub issuer: String,
    /// The shared state, for tests and operations.
    pub app: app::Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Stops accepting, lets the requests in flight finish, and waits.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(error) => Err(std::io::Error::other(error)),
        }
    }

    /// Waits until the server stops.
    pub async fn wait(mut self) -> std::io::Result<()> {
        match (&mut self.task).await {
            Ok(result) => result,
            Err(error) => Err(std::io::Error::other(error)),
        }
    }
}

/// The address the demo uses to reach this server: the listening address,
/// or loopback when listening on every address.
fn own_address(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, bound.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, bound.port()).into(),
        _ => bound,
    }
}

/// The store the settings name, opened and migrated.
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, ServeError> {
    Ok(match &settings.store {
        StoreSettings::Sqlite => {
            Arc::new(SqliteStore::open(&settings.state_dir.join("atlogin.sqlite3")).await?)
        }
        StoreSettings::Postgres(url) => Arc::new(PgStore::connect(url).await?),
    })
}

/// The issuer: the public URL without a trailing slash, or, for the loopback
/// client, `http://127.0.0.1:<port>` (the browser and the relying parties
/// reach atlogin on this machine's loopback address).
pub fn issuer(settings: &Settings, port: u16) -> String {
    match &settings.public_url {
        Some(url) => url.as_str().trim_end_matches('/').to_owned(),
        None => format!("http://127.0.0.1:{port}"),
    }
}

/// The provider for `issuer` with the published ID-token keys and `clients`.
pub fn provider_config(
    settings: &Settings,
    issuer: &str,
    clients: Vec<atlogin_core::provider::RegisteredClient>,
) -> Result<ProviderConfig, ServeError> {
    let keys = KeyStore::open(&settings.state_dir, crate::crypto::provider())?;
    let id_token_keys = keys.load_or_generate(KeySet::IdToken, app::now(), &mut app::rng())?;
    Ok(ProviderConfig::new(
        issuer,
        id_token_keys.into_iter().map(|k| k.signing).collect(),
        clients,
    )
    .map_err(|e| ServeError::Settings(e.to_string()))?
    .with_lifetimes(settings.lifetimes))
}

/// What the provider and the atproto client are built from, so that they can
/// be built again when their keys change on disk.
#[derive(Clone, Debug)]
pub struct Assembly {
    settings: Settings,
    issuer: String,
    clients: Vec<atlogin_core::provider::RegisteredClient>,
    mode: Mode,
}

impl Assembly {
    /// The provider and the client with the keys on disk published at `now`
    /// (making a key for a set that has none current).
    pub fn build(&self, now: UnixTime) -> Result<(ProviderConfig, ClientConfig), ServeError> {
        let keys = KeyStore::open(&self.settings.state_dir, crate::crypto::provider())?;
        let client_keys = keys.load_or_generate(KeySet::AtprotoClient, now, &mut app::rng())?;
        let provider = provider_config(&self.settings, &self.issuer, self.clients.clone())?;
        let client = atproto_client(
            &self.settings,
            &self.issuer,
            self.mode,
            client_keys.into_iter().map(|k| k.signing).collect(),
        )?;
        Ok((provider, client))
    }
}

/// Starts the server; it runs until [`Server::stop`] or `shutdown` completes.
pub async fn start(
    settings: &Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Server, ServeError> {
    let keys = KeyStore::open(&settings.state_dir, crate::crypto::provider())?;
    if matches!(settings.store, StoreSettings::Postgres(_))
        && keys.load(KeySet::IdToken)?.is_empty()
    {
        tracing::warn!(
            dir = %settings.state_dir.display(),
            "making new signing keys: replicas sharing this database must share these keys too (copy the keys folder)"
        );
    }
    let store = open_store(settings).await?;

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| ServeError::Listen {
            address: settings.listen,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| ServeError::Listen {
        address: settings.listen,
        source,
    })?;
    let issuer = issuer(settings, address.port());
    let invalid = |e: &dyn std::fmt::Display| ServeError::Settings(e.to_string());

    let mut clients = settings.clients.clone();
    let demo = if settings.demo {
        let base =
            Url::parse(&format!("http://{}", own_address(address))).map_err(|e| invalid(&e))?;
        let (demo, registered) = Demo::new(&issuer, base).map_err(|e| invalid(&e))?;
        clients.push(registered);
        Some(demo)
    } else {
        None
    };
    let mode = if settings.upstream.development {
        Mode::Development
    } else {
        Mode::Production
    };
    let assembly = Assembly {
        settings: settings.clone(),
        issuer: issuer.clone(),
        clients,
        mode,
    };
    let (provider, client) = assembly.build(app::now())?;

    let driver_config = driver_config(&settings.upstream).map_err(|e| invalid(&e))?;
    let driver = atlogin_tokio::Driver::new(driver_config).map_err(|e| invalid(&e))?;

    let app = Arc::new(
        App::new(
            assembly,
            provider,
            client,
            driver,
            store,
            mode,
            settings.trusted_proxies.clone(),
            settings.rate_limits,
            demo,
        )
        .map_err(|e| invalid(&e))?,
    );
    let router = app::router(app.clone());

    let sweeper = spawn_sweeper(app.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        tokio::select! {
            () = shutdown => {}
            _ = stopped => {}
        }
    };
    let task = tokio::spawn(accept_loop(
        listener,
        router,
        app.clone(),
        sweeper,
        shutdown,
    ));
    tracing::info!(%address, %issuer, client_id = app.client().client_id(), "atlogin is listening");
    Ok(Server {
        address,
        issuer,
        app,
        stop: Some(stop),
        task,
    })
}

/// Serves connections until `shutdown`, then lets the requests in flight and
/// the background work finish, for at most [`SHUTDOWN_GRACE`] each.
///
/// hyper's own connection builder, rather than `axum::serve`, so that a client
/// must send its request headers within [`HEADER_READ_TIMEOUT`]: a connection
/// that dribbles bytes or sends nothing is closed instead of held open.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    app: app::Shared,
    sweeper: tokio::task::JoinHandle<()>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, mostly: wait, rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = tower::ServiceExt::map_request(
            router.clone(),
            move |mut request: http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        );
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    sweeper.abort();
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after the grace period were cut off");
    }
    app.tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, app.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("background work (upstream revocations, logout tokens) was cut off");
    }
    Ok(())
}

/// Every minute: sweeps expired rows, forgets quiet addresses, and picks up
/// keys rotated or retired on disk (by `atlogin keys rotate`, or by another
/// replica sharing the keys folder).
fn spawn_sweeper(app: app::Shared) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            match app.store.sweep(app::now()).await {
                Ok(0) => {}
                Ok(swept) => tracing::debug!(swept, "expired rows swept"),
                Err(error) => tracing::warn!(%error, "sweeping expired rows failed"),
            }
            app.forget_quiet_addresses();
            match app.reload_keys() {
                Ok(true) => tracing::info!("signing keys changed on disk: now using them"),
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "cannot reload the signing keys"),
            }
        }
    })
}

/// The atproto OAuth client: confidential, publishing its metadata, with an
/// https public URL; the loopback client otherwise.
fn atproto_client(
    settings: &Settings,
    issuer: &str,
    mode: Mode,
    keys: Vec<atlogin_core::jose::JwsSigningKey>,
) -> Result<ClientConfig, ServeError> {
    let invalid = |e: &dyn std::fmt::Display| ServeError::Settings(e.to_string());
    let url = |path: &str| Url::parse(&format!("{issuer}{path}")).map_err(|e| invalid(&e));
    let mut identity = IdentityConfig::default().with_mode(mode);
    if let Some(plc) = &settings.upstream.plc_url {
        identity.plc_directory = plc.clone();
    }
    if let Some(resolver) = &settings.upstream.handle_resolver {
        identity = identity.with_handle_resolver(resolver.clone());
    }
    let scope = Scope::parse(CLIENT_SCOPE).map_err(|e| invalid(&e))?;
    // An http public URL (loopback only, for development and tests) cannot be
    // an atproto client_id: atlogin is then the loopback client at that URL.
    let confidential = settings
        .public_url
        .as_ref()
        .is_some_and(|url| url.scheme() == "https");
    let client = if confidential {
        let home = url("/")?;
        ClientConfig::confidential(
            url("/oauth-client-metadata.json")?,
            vec![url("/atproto/callback")?],
            keys,
        )
        .and_then(|c| c.with_client_uri(home))
        .map_err(|e| invalid(&e))?
    } else {
        ClientConfig::loopback(url("/atproto/callback")?).map_err(|e| invalid(&e))?
    };
    Ok(client
        .with_provider(crate::crypto::provider())
        .with_scope(scope)
        .map_err(|e| invalid(&e))?
        .with_identity(identity)
        .with_client_name("atlogin")
        .with_login_lifetime(settings.login_lifetime))
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("stopping: finishing the requests in flight");
}
