//! One conformance suite for atlogin's runtime adapters.
//!
//! [`World`] starts, on loopback, a scripted PLC directory, PDS and
//! authorization server (one HTTP server, routed by `Host`), a DNS server for
//! the `.test` names they use, and a TCP server that accepts connections and
//! never answers. [`conformance_tests!`] expands to one test per case for an
//! adapter that implements [`Adapter`]; each adapter crate's tests invoke it.
//!
//! Nothing here leaves the host: the world lives on 127.0.0.0/8, and the
//! "private address" the DNS hands out is 0.1.2.3, which no packet can reach even
//! if an adapter failed to refuse it.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use atlogin_core::client::{
    CallbackParams, ClientConfig, ClientError, LoginRequest, LoginStarted, PendingLogin,
    VerifiedLogin,
};
use atlogin_core::identity::{AtIdentifier, IdentityConfig, IdentityError, ResolvedIdentity};
use atlogin_core::netpolicy::NetPolicy;
use atlogin_core::transport::{Fetch, Response, TransportError, TxtAnswer};
use atlogin_driver::{Driver, DriverConfig, Transport};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;

/// The account the world knows.
pub const ALICE_DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
/// Its handle.
pub const ALICE_HANDLE: &str = "alice.test";
/// A second account, whose PDS is down: its DID document names a PDS on a
/// loopback port nothing listens on.
pub const DOWN_HANDLE: &str = "down.test";
/// Its DID.
pub const DOWN_DID: &str = "did:plc:downdowndowndowndowndown";

/// How an adapter is set up for one case.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The destination policy.
    pub policy: NetPolicy,
    /// The world's DNS server.
    pub nameserver: SocketAddr,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Total timeout.
    pub total_timeout: Duration,
    /// Body cap.
    pub max_body_len: usize,
    /// Extra trusted root certificates, DER encoded.
    pub root_certificates: Vec<Vec<u8>>,
}

/// What the suite asks of an adapter; each call may build a fresh driver from
/// `setup` and block on its runtime.
pub trait Adapter {
    /// One hardened fetch.
    fn fetch(&self, setup: &Setup, fetch: Fetch) -> Result<Response, TransportError>;
    /// One TXT lookup.
    fn lookup_txt(&self, setup: &Setup, name: &str) -> TxtAnswer;
    /// A whole identity resolution.
    fn resolve_identity(
        &self,
        setup: &Setup,
        identifier: AtIdentifier,
        config: &IdentityConfig,
    ) -> Result<ResolvedIdentity, IdentityError>;
    /// The start of a login.
    fn start_login(
        &self,
        setup: &Setup,
        request: LoginRequest,
        client: Arc<ClientConfig>,
    ) -> Result<LoginStarted, ClientError>;
    /// The end of a login.
    fn complete_login(
        &self,
        setup: &Setup,
        pending: PendingLogin,
        callback: &CallbackParams,
        client: Arc<ClientConfig>,
    ) -> Result<VerifiedLogin, ClientError>;
}

/// Runs a future to its end on one executor: how a test calls into a runtime.
pub trait BlockOn {
    /// Blocks the thread until `future` is done.
    fn block_on<F: Future>(&self, future: F) -> F::Output;
}

/// The [`Adapter`] of a driver built on `atlogin-driver` with the transport `T`,
/// polled by the executor `E`; each call builds a fresh driver from the setup.
#[derive(Debug)]
pub struct DriverAdapter<T, E> {
    executor: E,
    transport: std::marker::PhantomData<fn() -> T>,
}

impl<T, E> DriverAdapter<T, E> {
    /// The driver with transport `T`, run by `executor`.
    pub fn new(executor: E) -> Self {
        Self {
            executor,
            transport: std::marker::PhantomData,
        }
    }
}

fn driver<T: Transport>(setup: &Setup) -> Driver<T> {
    let mut config = DriverConfig::default()
        .with_policy(setup.policy.clone())
        .with_nameservers(vec![setup.nameserver])
        .with_timeouts(setup.connect_timeout, setup.total_timeout)
        .with_max_body_len(setup.max_body_len);
    for root in &setup.root_certificates {
        config = config.with_root_certificate(root.clone());
    }
    Driver::new(config).expect("the driver builds")
}

impl<T: Transport, E: BlockOn> Adapter for DriverAdapter<T, E> {
    fn fetch(&self, setup: &Setup, fetch: Fetch) -> Result<Response, TransportError> {
        self.executor
            .block_on(async { driver::<T>(setup).fetcher().fetch(fetch).await })
    }

    fn lookup_txt(&self, setup: &Setup, name: &str) -> TxtAnswer {
        self.executor
            .block_on(async { driver::<T>(setup).fetcher().lookup_txt(name).await })
    }

    fn resolve_identity(
        &self,
        setup: &Setup,
        identifier: AtIdentifier,
        config: &IdentityConfig,
    ) -> Result<ResolvedIdentity, IdentityError> {
        self.executor.block_on(async {
            driver::<T>(setup)
                .resolve_identity(identifier, config)
                .await
        })
    }

    fn start_login(
        &self,
        setup: &Setup,
        request: LoginRequest,
        client: Arc<ClientConfig>,
    ) -> Result<LoginStarted, ClientError> {
        self.executor
            .block_on(async { driver::<T>(setup).start_login(request, client).await })
    }

    fn complete_login(
        &self,
        setup: &Setup,
        pending: PendingLogin,
        callback: &CallbackParams,
        client: Arc<ClientConfig>,
    ) -> Result<VerifiedLogin, ClientError> {
        self.executor.block_on(async {
            driver::<T>(setup)
                .complete_login(pending, callback, client)
                .await
        })
    }
}

/// The scripted servers, running until dropped.
#[derive(Debug)]
pub struct World {
    runtime: Option<tokio::runtime::Runtime>,
    /// The HTTP server.
    pub http: SocketAddr,
    /// The DNS server.
    pub dns: SocketAddr,
    /// A server that accepts connections and never answers.
    pub silent: SocketAddr,
    /// The HTTP server again, over TLS, with a certificate for `pds.test` only.
    pub https: SocketAddr,
    /// The test CA that signed that certificate, DER encoded.
    pub root_certificate: Vec<u8>,
    /// What the scripted servers saw, shared with them.
    seen: Seen,
}

/// What the scripted authorization server records, for tests to read.
#[derive(Clone, Debug, Default)]
struct Seen {
    /// The tokens revoked, in order.
    revoked: Arc<std::sync::Mutex<Vec<String>>>,
    /// The form of each pushed authorization request that got a `request_uri`.
    pushed: Arc<std::sync::Mutex<Vec<HashMap<String, String>>>>,
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl World {
    /// Starts every server on 127.0.0.1.
    ///
    /// # Panics
    ///
    /// When a loopback socket cannot be bound: the test cannot run then.
    #[must_use]
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (root_certificate, tls) = test_pki();
        let seen = Seen::default();
        let shared = seen.clone();
        let (http, dns, silent, https) = runtime.block_on(async {
            let http = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind http");
            let dns = tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind dns");
            let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind silent");
            let https = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind https");
            let addrs = (
                http.local_addr().expect("addr"),
                dns.local_addr().expect("addr"),
                silent.local_addr().expect("addr"),
                https.local_addr().expect("addr"),
            );
            tokio::spawn(serve_https(https, addrs.3.port(), tls, shared.clone()));
            tokio::spawn(serve_http(http, addrs.0.port(), shared));
            tokio::spawn(serve_dns(dns));
            tokio::spawn(serve_silent(silent));
            addrs
        });
        Self {
            runtime: Some(runtime),
            http,
            dns,
            silent,
            https,
            root_certificate,
            seen,
        }
    }

    /// The tokens revoked at the authorization server so far.
    ///
    /// # Panics
    ///
    /// When a server thread panicked while holding the list.
    #[must_use]
    pub fn revoked(&self) -> Vec<String> {
        self.seen.revoked.lock().expect("revocation list").clone()
    }

    /// The forms of the pushed authorization requests accepted so far.
    ///
    /// # Panics
    ///
    /// When a server thread panicked while holding the list.
    #[must_use]
    pub fn pushed(&self) -> Vec<HashMap<String, String>> {
        self.seen.pushed.lock().expect("pushed requests").clone()
    }

    /// A setup that reaches the world (http, 127.0.0.1 allowed) with short timeouts.
    #[must_use]
    pub fn setup(&self) -> Setup {
        Setup {
            policy: NetPolicy::strict()
                .with_http()
                .with_allowed(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST)),
            nameserver: self.dns,
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(3),
            max_body_len: 64 * 1024,
            root_certificates: Vec::new(),
        }
    }

    /// A production setup for the TLS server: https only, 127.0.0.1 the one
    /// non-public address allowed, the test CA trusted.
    #[must_use]
    pub fn tls_setup(&self) -> Setup {
        Setup {
            policy: NetPolicy::strict().with_allowed(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST)),
            root_certificates: vec![self.root_certificate.clone()],
            ..self.setup()
        }
    }

    /// `http://<host>:<port><path>` on the world's HTTP server.
    #[must_use]
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.http.port())
    }

    /// The identity configuration for the world: development mode, its PLC.
    ///
    /// # Panics
    ///
    /// Never: the URL is well-formed.
    #[must_use]
    pub fn identity_config(&self) -> IdentityConfig {
        IdentityConfig::new(url::Url::parse(&self.url("plc.test", "")).expect("url"))
            .with_mode(atlogin_core::identity::Mode::Development)
    }
}

fn a_records() -> HashMap<&'static str, Ipv4Addr> {
    HashMap::from([
        ("pds.test", Ipv4Addr::LOCALHOST),
        ("plc.test", Ipv4Addr::LOCALHOST),
        ("alice.test", Ipv4Addr::LOCALHOST),
        ("loopback.test", Ipv4Addr::LOCALHOST),
        // A non-public address that no packet can reach even if an adapter broke
        // and connected: 0.0.0.0/8 never leaves the host. The same check refuses
        // 10.0.0.0/8 and the other private ranges (core's netpolicy tests).
        ("private.test", Ipv4Addr::new(0, 1, 2, 3)),
    ])
}

async fn serve_dns(socket: tokio::net::UdpSocket) {
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::rdata::{A, TXT};
    use hickory_proto::rr::{RData, Record, RecordType};
    let mut buffer = vec![0u8; 4096];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buffer[..len]) else {
            continue;
        };
        let mut answer = Message::response(query.metadata.id, query.metadata.op_code);
        answer.metadata.recursion_desired = query.metadata.recursion_desired;
        answer.metadata.recursion_available = true;
        answer.metadata.authoritative = true;
        let mut found = false;
        for question in &query.queries {
            answer.add_query(question.clone());
            let name = question
                .name()
                .to_ascii()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            let known = a_records().contains_key(name.as_str())
                || name == "_atproto.alice.test"
                || name == "_atproto.down.test";
            found |= known;
            match question.query_type() {
                RecordType::A => {
                    if let Some(ip) = a_records().get(name.as_str()) {
                        answer.add_answer(Record::from_rdata(
                            question.name().clone(),
                            60,
                            RData::A(A(*ip)),
                        ));
                    }
                }
                RecordType::TXT if name == "_atproto.alice.test" => {
                    let records = [format!("did={ALICE_DID}"), "v=not-atproto".to_owned()];
                    for text in records {
                        answer.add_answer(Record::from_rdata(
                            question.name().clone(),
                            60,
                            RData::TXT(TXT::new(vec![text])),
                        ));
                    }
                }
                RecordType::TXT if name == "_atproto.down.test" => {
                    answer.add_answer(Record::from_rdata(
                        question.name().clone(),
                        60,
                        RData::TXT(TXT::new(vec![format!("did={DOWN_DID}")])),
                    ));
                }
                _ => {}
            }
        }
        if !found {
            answer.metadata.response_code = ResponseCode::NXDomain;
        }
        if let Ok(bytes) = answer.to_vec() {
            let _ = socket.send_to(&bytes, peer).await;
        }
    }
}

async fn serve_silent(listener: tokio::net::TcpListener) {
    let mut held = Vec::new();
    while let Ok((stream, _)) = listener.accept().await {
        // Accept, then never read or answer.
        held.push(stream);
    }
}

/// A test CA and, signed by it, a server certificate for `pds.test`: the CA's DER
/// and the server's TLS configuration.
fn test_pki() -> (Vec<u8>, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
    let server_key = KeyPair::generate().expect("key");
    let server = CertificateParams::new(vec!["pds.test".to_owned()])
        .expect("params")
        .signed_by(&server_key, &ca)
        .expect("certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![server.der().clone()], key)
    .expect("server config");
    (ca.der().to_vec(), Arc::new(config))
}

async fn serve_https(
    listener: tokio::net::TcpListener,
    port: u16,
    tls: Arc<rustls::ServerConfig>,
    seen: Seen,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let state = Arc::new(tokio::sync::Mutex::new(ServerState {
        seen,
        ..ServerState::default()
    }));
    while let Ok((stream, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            // A client that refuses the certificate ends the handshake here.
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(route(request, port, &state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

async fn serve_http(listener: tokio::net::TcpListener, port: u16, seen: Seen) {
    let state = Arc::new(tokio::sync::Mutex::new(ServerState {
        seen,
        ..ServerState::default()
    }));
    while let Ok((stream, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(route(request, port, &state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[derive(Default)]
struct ServerState {
    nonce_counter: u32,
    /// The `redirect_uri` and `state` of the last pushed request, for the
    /// authorization endpoint to send the browser back with.
    pushed: Option<(String, String)>,
    /// What tests may read back.
    seen: Seen,
}

fn full(status: u16, body: impl Into<Bytes>, headers: &[(&str, String)]) -> http::Response<Body> {
    let mut response = http::Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = http::StatusCode::from_u16(status).expect("status");
    for (name, value) in headers {
        response.headers_mut().insert(
            http::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            http::HeaderValue::from_str(value).expect("value"),
        );
    }
    response
}

fn json_body(
    status: u16,
    value: &serde_json::Value,
    nonce: Option<String>,
) -> http::Response<Body> {
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if let Some(nonce) = nonce {
        headers.push(("dpop-nonce", nonce));
    }
    full(status, value.to_string(), &headers)
}

#[expect(clippy::too_many_lines, reason = "one match arm per scripted route")]
async fn route(
    request: hyper::Request<hyper::body::Incoming>,
    port: u16,
    state: &tokio::sync::Mutex<ServerState>,
) -> http::Response<Body> {
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default().to_owned();
    let path = request.uri().path().to_owned();
    let origin = format!("http://pds.test:{port}");
    let has_dpop_nonce = request
        .headers()
        .get("dpop")
        .and_then(|v| v.to_str().ok())
        .and_then(|proof| proof.split('.').nth(1).map(str::to_owned))
        .and_then(|payload| atlogin_core::base64url::decode(&payload).ok())
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|claims| claims.get("nonce").is_some());
    let credentials: Vec<&str> = ["authorization", "dpop"]
        .into_iter()
        .filter(|name| request.headers().contains_key(*name))
        .collect();
    let credentials = if credentials.is_empty() {
        "none".to_owned()
    } else {
        credentials.join(",")
    };
    let body = request
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    match (host.as_str(), path.as_str()) {
        (_, "/ok") => full(200, "ok", &[]),
        (_, "/big") => full(200, vec![b'x'; 200 * 1024], &[]),
        (_, "/drip") => {
            let chunks = futures_util::stream::unfold(0u32, |i| async move {
                if i >= 30 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                Some((
                    Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(b"."))),
                    i + 1,
                ))
            });
            http::Response::new(BodyExt::boxed(StreamBody::new(chunks)))
        }
        (_, "/credentials") => full(200, credentials, &[]),
        ("pds.test", "/redirect-same-origin") => {
            full(302, "", &[("location", "/credentials".to_owned())])
        }
        ("pds.test", "/redirect-cross-origin") => full(
            302,
            "",
            &[("location", format!("http://plc.test:{port}/credentials"))],
        ),
        (_, "/redirect-with-big-body") => full(
            302,
            vec![b'r'; 16 * 1024],
            &[("location", "/ok".to_owned())],
        ),
        (_, "/redirect-private") => full(
            302,
            "",
            &[("location", format!("http://127.0.0.2:{port}/ok"))],
        ),
        (_, p) if p.starts_with("/redirect/") => {
            let n: u32 = p.trim_start_matches("/redirect/").parse().unwrap_or(0);
            let next = if n == 0 {
                "/ok".to_owned()
            } else {
                format!("/redirect/{}", n - 1)
            };
            full(302, "", &[("location", next)])
        }
        ("plc.test", p) if p == format!("/{ALICE_DID}") => json_body(
            200,
            &json!({
                "id": ALICE_DID,
                "alsoKnownAs": [format!("at://{ALICE_HANDLE}")],
                "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": origin}],
            }),
            None,
        ),
        ("plc.test", p) if p == format!("/{DOWN_DID}") => json_body(
            200,
            &json!({
                "id": DOWN_DID,
                "alsoKnownAs": [format!("at://{DOWN_HANDLE}")],
                // Port 1 (tcpmux): nothing listens there on a test machine.
                "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "http://127.0.0.1:1"}],
            }),
            None,
        ),
        ("alice.test", "/.well-known/atproto-did") => full(200, ALICE_DID, &[]),
        ("pds.test", "/.well-known/oauth-protected-resource") => json_body(
            200,
            &json!({"resource": origin, "authorization_servers": [origin]}),
            None,
        ),
        ("pds.test", "/.well-known/oauth-authorization-server") => json_body(
            200,
            &json!({
                "issuer": origin,
                "authorization_endpoint": format!("{origin}/oauth/authorize"),
                "token_endpoint": format!("{origin}/oauth/token"),
                "pushed_authorization_request_endpoint": format!("{origin}/oauth/par"),
                "revocation_endpoint": format!("{origin}/oauth/revoke"),
                "require_pushed_authorization_requests": true,
                "scopes_supported": ["atproto"],
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
                "dpop_signing_alg_values_supported": ["ES256"],
                "client_id_metadata_document_supported": true,
                "authorization_response_iss_parameter_supported": true,
            }),
            None,
        ),
        ("pds.test", "/oauth/par" | "/oauth/token") => {
            let nonce = {
                let mut state = state.lock().await;
                state.nonce_counter += 1;
                format!("nonce-{}", state.nonce_counter)
            };
            if !has_dpop_nonce {
                return json_body(400, &json!({"error": "use_dpop_nonce"}), Some(nonce));
            }
            if path == "/oauth/par" {
                let form: HashMap<String, String> = url::form_urlencoded::parse(&body)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                if let (Some(redirect_uri), Some(pushed_state)) =
                    (form.get("redirect_uri"), form.get("state"))
                {
                    let mut state = state.lock().await;
                    state.pushed = Some((redirect_uri.clone(), pushed_state.clone()));
                    state
                        .seen
                        .pushed
                        .lock()
                        .expect("pushed requests")
                        .push(form.clone());
                }
                json_body(
                    201,
                    &json!({"request_uri": "urn:ietf:params:oauth:request_uri:req-1", "expires_in": 299}),
                    Some(nonce),
                )
            } else {
                json_body(
                    200,
                    &json!({"access_token": "at", "token_type": "DPoP", "scope": "atproto", "sub": ALICE_DID, "expires_in": 300}),
                    Some(nonce),
                )
            }
        }
        ("pds.test", "/oauth/revoke") => {
            let token = url::form_urlencoded::parse(&body)
                .find(|(name, _)| name == "token")
                .map(|(_, value)| value.into_owned());
            if let Some(token) = token {
                let state = state.lock().await;
                state
                    .seen
                    .revoked
                    .lock()
                    .expect("revocation list")
                    .push(token);
            }
            full(200, "", &[])
        }
        ("pds.test", "/xrpc/com.atproto.repo.getRecord") => json_body(
            200,
            &json!({
                "uri": format!("at://{ALICE_DID}/app.bsky.actor.profile/self"),
                "cid": "bafyreidfcs7ojcnnhcyxm2o5kutw4ctmwqmnmwcpkm3nlqo4lfmi4m7bqe",
                "value": {"$type": "app.bsky.actor.profile", "displayName": "Alice Test"},
            }),
            None,
        ),
        // The user approves at once: back to the client with a code.
        ("pds.test", "/oauth/authorize") => match state
            .lock()
            .await
            .pushed
            .clone()
            .and_then(|(uri, pushed_state)| Some((url::Url::parse(&uri).ok()?, pushed_state)))
        {
            Some((mut back, pushed_state)) => {
                back.query_pairs_mut()
                    .append_pair("code", "code-1")
                    .append_pair("state", &pushed_state)
                    .append_pair("iss", &origin);
                full(302, "", &[("location", back.to_string())])
            }
            None => full(400, "no pushed request", &[]),
        },
        _ => full(404, "not found", &[]),
    }
}

/// A GET fetch of `url` with these limits.
///
/// # Panics
///
/// When `url` is not a valid URI (a bug in the test).
#[must_use]
pub fn get(url: &str, max_body_len: usize, max_redirects: u8) -> Fetch {
    let mut request = http::Request::new(Vec::new());
    *request.uri_mut() = url.parse().expect("uri");
    Fetch::new(
        atlogin_core::transport::RequestId::new(1),
        request,
        atlogin_core::transport::FetchLimits::new(max_body_len, max_redirects),
    )
}

/// Expands to the conformance tests for the adapter `$adapter` (an expression
/// of a type implementing [`Adapter`]).
#[macro_export]
macro_rules! conformance_tests {
    ($adapter:expr) => {
        mod conformance {
            #[allow(unused_imports, reason = "brings the adapter's type into scope")]
            use super::*;
            use std::sync::Arc;
            use std::time::Duration;

            use atlogin_core::client::{CallbackParams, ClientConfig, LoginRequest};
            use atlogin_core::identity::{AtIdentifier, Mode};
            use atlogin_core::netpolicy::NetPolicy;
            use atlogin_core::transport::{TransportError, TxtAnswer};
            use $crate::{ALICE_DID, ALICE_HANDLE, Adapter, Setup, World, get};

            fn adapter() -> impl Adapter {
                $adapter
            }

            #[test]
            fn resolves_an_identity_through_dns_and_plc() {
                let world = World::start();
                let identifier =
                    AtIdentifier::parse(ALICE_HANDLE, Mode::Development).expect("handle");
                let identity = adapter()
                    .resolve_identity(&world.setup(), identifier, &world.identity_config())
                    .expect("resolves");
                assert_eq!(identity.did.as_str(), ALICE_DID);
                assert_eq!(
                    identity.handle.map(|h| h.to_string()).as_deref(),
                    Some(ALICE_HANDLE)
                );
                assert_eq!(identity.pds.as_str(), world.url("pds.test", "/"));
            }

            #[test]
            fn runs_a_whole_login_with_nonce_retries() {
                let world = World::start();
                let client = Arc::new(
                    ClientConfig::loopback("http://127.0.0.1:9411/callback".parse().expect("url"))
                        .expect("config")
                        .with_identity(world.identity_config()),
                );
                let request =
                    LoginRequest::parse(ALICE_HANDLE, Mode::Development).expect("request");
                let started = adapter()
                    .start_login(&world.setup(), request, client.clone())
                    .expect("login starts");
                assert!(
                    started
                        .redirect_url
                        .as_str()
                        .starts_with(&world.url("pds.test", "/oauth/authorize?client_id="))
                );
                let query = format!(
                    "code=code-1&state={}&iss={}",
                    started.pending.state.secret(),
                    url::form_urlencoded::byte_serialize(world.url("pds.test", "").as_bytes())
                        .collect::<String>()
                );
                let callback = CallbackParams::parse(&query).expect("callback");
                let verified = adapter()
                    .complete_login(&world.setup(), started.pending, &callback, client)
                    .expect("login completes");
                assert_eq!(verified.did.as_str(), ALICE_DID);
                assert_eq!(
                    verified.handle.map(|h| h.to_string()).as_deref(),
                    Some(ALICE_HANDLE)
                );
            }

            #[test]
            fn looks_up_txt_records() {
                let world = World::start();
                match adapter().lookup_txt(&world.setup(), "_atproto.alice.test") {
                    TxtAnswer::Records(records) => {
                        assert!(records.contains(&format!("did={ALICE_DID}")), "{records:?}")
                    }
                    other => panic!("expected records, got {other:?}"),
                }
                assert_eq!(
                    adapter().lookup_txt(&world.setup(), "_atproto.nobody.test"),
                    TxtAnswer::NoRecords
                );
            }

            #[test]
            fn fetches_within_the_policy() {
                let world = World::start();
                let response = adapter()
                    .fetch(&world.setup(), get(&world.url("pds.test", "/ok"), 1024, 0))
                    .expect("fetches");
                assert_eq!(response.status(), 200);
                assert_eq!(response.body(), b"ok");
            }

            #[test]
            fn refuses_plain_http_unless_allowed() {
                let world = World::start();
                let mut setup = world.setup();
                setup.policy =
                    NetPolicy::strict().with_allowed(std::net::Ipv4Addr::LOCALHOST.into());
                let result = adapter().fetch(&setup, get(&world.url("pds.test", "/ok"), 1024, 0));
                assert!(
                    matches!(result, Err(TransportError::Blocked(_))),
                    "{result:?}"
                );
            }

            #[test]
            fn refuses_a_name_that_resolves_to_loopback_unless_allowed() {
                let world = World::start();
                let mut setup = world.setup();
                setup.policy = NetPolicy::strict().with_http();
                let result =
                    adapter().fetch(&setup, get(&world.url("loopback.test", "/ok"), 1024, 0));
                assert!(
                    matches!(result, Err(TransportError::Blocked(_))),
                    "{result:?}"
                );
                let literal = adapter().fetch(
                    &setup,
                    get(
                        &format!("http://127.0.0.1:{}/ok", world.http.port()),
                        1024,
                        0,
                    ),
                );
                assert!(
                    matches!(literal, Err(TransportError::Blocked(_))),
                    "{literal:?}"
                );
            }

            #[test]
            fn refuses_a_name_that_resolves_to_a_private_address() {
                let world = World::start();
                // Refused before connecting; 0.1.2.3 could not be reached anyway.
                let result = adapter().fetch(
                    &world.setup(),
                    get(&world.url("private.test", "/ok"), 1024, 0),
                );
                assert!(
                    matches!(result, Err(TransportError::Blocked(_))),
                    "{result:?}"
                );
            }

            #[test]
            fn refuses_a_redirect_to_a_private_address() {
                let world = World::start();
                let result = adapter().fetch(
                    &world.setup(),
                    get(&world.url("pds.test", "/redirect-private"), 1024, 3),
                );
                assert!(
                    matches!(result, Err(TransportError::Blocked(_))),
                    "{result:?}"
                );
            }

            #[test]
            fn follows_redirects_only_within_the_budget() {
                let world = World::start();
                let none = adapter()
                    .fetch(
                        &world.setup(),
                        get(&world.url("pds.test", "/redirect/0"), 1024, 0),
                    )
                    .expect("answer");
                assert_eq!(
                    none.status(),
                    302,
                    "no redirect followed when the machine allows none"
                );
                let two = adapter()
                    .fetch(
                        &world.setup(),
                        get(&world.url("pds.test", "/redirect/1"), 1024, 2),
                    )
                    .expect("answer");
                assert_eq!(two.status(), 200);
                let many = adapter().fetch(
                    &world.setup(),
                    get(&world.url("pds.test", "/redirect/5"), 1024, 2),
                );
                assert_eq!(many.err(), Some(TransportError::TooManyRedirects));
            }

            #[test]
            fn follows_a_redirect_without_reading_its_body() {
                let world = World::start();
                let response = adapter()
                    .fetch(
                        &world.setup(),
                        get(&world.url("pds.test", "/redirect-with-big-body"), 1024, 1),
                    )
                    .expect("the redirect's body is not the answer");
                assert_eq!(response.body(), b"ok");
            }

            #[test]
            fn keeps_credentials_only_on_same_origin_redirects() {
                let world = World::start();
                let with_credentials = |path: &str| {
                    let mut fetch = get(&world.url("pds.test", path), 1024, 1);
                    let headers = fetch.request.headers_mut();
                    headers.insert("authorization", "DPoP token".parse().expect("value"));
                    headers.insert("dpop", "proof".parse().expect("value"));
                    fetch
                };
                let same = adapter()
                    .fetch(&world.setup(), with_credentials("/redirect-same-origin"))
                    .expect("answer");
                assert_eq!(same.body(), b"authorization,dpop");
                let cross = adapter()
                    .fetch(&world.setup(), with_credentials("/redirect-cross-origin"))
                    .expect("answer");
                assert_eq!(cross.body(), b"none");
            }

            #[test]
            fn fetches_over_tls_checking_the_certificate() {
                let world = World::start();
                let port = world.https.port();
                let ok = adapter()
                    .fetch(
                        &world.tls_setup(),
                        get(&format!("https://pds.test:{port}/ok"), 1024, 0),
                    )
                    .expect("the test CA is trusted and the name matches");
                assert_eq!(ok.body(), b"ok");
                // The certificate is for pds.test, not for another name of the host.
                let wrong_name = adapter().fetch(
                    &world.tls_setup(),
                    get(&format!("https://loopback.test:{port}/ok"), 1024, 0),
                );
                assert!(
                    matches!(wrong_name, Err(TransportError::Connect(_))),
                    "{wrong_name:?}"
                );
                // Without the test CA the chain does not verify.
                let untrusted = Setup {
                    root_certificates: Vec::new(),
                    ..world.tls_setup()
                };
                let unknown_ca = adapter().fetch(
                    &untrusted,
                    get(&format!("https://pds.test:{port}/ok"), 1024, 0),
                );
                assert!(
                    matches!(unknown_ca, Err(TransportError::Connect(_))),
                    "{unknown_ca:?}"
                );
            }

            #[test]
            fn caps_bodies() {
                let world = World::start();
                let result = adapter().fetch(
                    &world.setup(),
                    get(&world.url("pds.test", "/big"), 64 * 1024, 0),
                );
                assert_eq!(result.err(), Some(TransportError::BodyTooLarge(64 * 1024)));
                // The adapter's own cap applies even when a machine allows more.
                let mut setup = world.setup();
                setup.max_body_len = 1024;
                let result =
                    adapter().fetch(&setup, get(&world.url("pds.test", "/big"), 1024 * 1024, 0));
                assert_eq!(result.err(), Some(TransportError::BodyTooLarge(1024)));
            }

            #[test]
            fn times_out_on_a_server_that_never_answers() {
                let world = World::start();
                let mut setup = world.setup();
                setup.total_timeout = Duration::from_millis(800);
                let url = format!("http://127.0.0.1:{}/ok", world.silent.port());
                assert_eq!(
                    adapter().fetch(&setup, get(&url, 1024, 0)).err(),
                    Some(TransportError::Timeout)
                );
            }

            #[test]
            fn times_out_on_a_slow_drip() {
                let world = World::start();
                let mut setup = world.setup();
                setup.total_timeout = Duration::from_millis(1500);
                assert_eq!(
                    adapter()
                        .fetch(&setup, get(&world.url("pds.test", "/drip"), 1024, 0))
                        .err(),
                    Some(TransportError::Timeout)
                );
            }
        }
    };
}
