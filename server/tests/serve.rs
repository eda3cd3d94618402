//! `atlogin serve` over real HTTP on loopback: every endpoint and error page,
//! the sign-in through the scripted PDS of the conformance world, restart in
//! the middle of a sign-in, two replicas on one PostgreSQL, key rotation, rate
//! limits. The full sign-in against a real PDS and Synapse is issue 8's.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use atlogin_conformance::{ALICE_DID, ALICE_HANDLE, World};
use atlogin_core::jose::crypto::DefaultProvider;
use atlogin_core::jose::{JwkSet, Verifier};
use atlogin_core::pkce::PkceVerifier;
use atlogin_core::provider::{ClientAuth, ClientSecret, RegisteredClient, StoredSecret};
use atlogin_server::serve::{self, Server};
use atlogin_server::settings::{Settings, StoreSettings};
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

const RP_REDIRECT: &str = "https://mas.example.com/upstream/callback";
const RP_SECRET: &str = "mas-secret-0123456789abcdef";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Settings that reach the world's PLC, DNS and PDS, with one relying party.
fn settings(world: &World, state_dir: &Path) -> Settings {
    let mut settings = Settings::defaults(state_dir.to_owned());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.upstream.development = true;
    settings.upstream.plc_url = Some(Url::parse(&world.url("plc.test", "")).unwrap());
    settings.upstream.nameservers = vec![world.dns];
    settings.clients = vec![RegisteredClient::new(
        "mas",
        vec![RP_REDIRECT.to_owned()],
        ClientAuth::ClientSecretBasic(StoredSecret::Plain(ClientSecret::new(RP_SECRET))),
    )];
    settings
}

async fn start(settings: &Settings) -> Server {
    serve::start(settings, std::future::pending())
        .await
        .unwrap()
}

/// A browser: no redirects followed, one cookie jar slot, `pds.test` on loopback.
struct Browser {
    http: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> String {
        self.headers
            .get("location")
            .unwrap_or_else(|| panic!("no location; {} {}", self.status, self.body))
            .to_str()
            .unwrap()
            .to_owned()
    }

    fn hidden(&self, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&needle).unwrap() + needle.len();
        let end = start + self.body[start..].find('"').unwrap();
        self.body[start..end].to_owned()
    }

    fn alert(&self) -> String {
        let start = self.body.find("role=\"alert\">").unwrap() + "role=\"alert\">".len();
        let end = start + self.body[start..].find("</p>").unwrap();
        self.body[start..end].to_owned()
    }
}

fn client(world: &World) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(atlogin_driver::hardening::tls_config(&[]).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .resolve("pds.test", world.http)
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

impl Browser {
    fn new(world: &World) -> Self {
        Self {
            http: client(world),
            cookie: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(set) = headers.get("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            self.cookie = Some(pair);
        }
        let body = response.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let request = self.http.get(url);
        self.send(request).await
    }

    async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }
}

/// A relying party's authorization request to `base`.
fn authorize_url(base: &str, verifier: &PkceVerifier, extra: &[(&str, &str)]) -> String {
    let mut url = Url::parse(&format!("{base}/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "mas")
        .append_pair("redirect_uri", RP_REDIRECT)
        .append_pair("scope", "openid profile")
        .append_pair("state", "rp-state")
        .append_pair("nonce", "rp-nonce")
        .append_pair("code_challenge", verifier.challenge().as_str())
        .append_pair("code_challenge_method", "S256")
        .extend_pairs(extra);
    url.to_string()
}

async fn json(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

async fn post_handle(
    browser: &mut Browser,
    base: &str,
    handle: &str,
    csrf: &str,
    request: &str,
) -> Page {
    browser
        .post_form(
            &format!("{base}/authorize"),
            &[("request", request), ("csrf", csrf), ("handle", handle)],
        )
        .await
}

fn verifier() -> PkceVerifier {
    PkceVerifier::parse("a-test-verifier-that-is-long-enough-0123456789").unwrap()
}

fn base(server: &Server) -> String {
    format!("http://{}", server.address)
}

/// The query parameters of the relying party's redirect.
fn params(url: &str) -> std::collections::HashMap<String, String> {
    let url = Url::parse(url).unwrap();
    assert!(url.as_str().starts_with(RP_REDIRECT), "{url}");
    url.query_pairs().into_owned().collect()
}

/// Runs the sign-in through the form up to the PDS: returns the PDS URL.
async fn to_pds(browser: &mut Browser, base: &str) -> String {
    let form = browser.get(&authorize_url(base, &verifier(), &[])).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let to_pds = browser
        .post_form(
            &format!("{base}/authorize"),
            &[
                ("request", &form.hidden("request")),
                ("csrf", &form.hidden("csrf")),
                ("handle", ALICE_HANDLE),
            ],
        )
        .await;
    assert_eq!(to_pds.status, StatusCode::SEE_OTHER, "{}", to_pds.body);
    to_pds.location()
}

/// From the PDS to the relying party's redirect URI, through `callback_base`
/// (the PDS sends the browser to the issuer's callback; a test may send that
/// request to another replica).
async fn from_pds(browser: &mut Browser, pds_url: &str, callback_base: &str) -> String {
    let back = browser.get(pds_url).await;
    assert_eq!(back.status, StatusCode::FOUND, "{}", back.body);
    let callback = Url::parse(&back.location()).unwrap();
    let target = format!(
        "{callback_base}{}?{}",
        callback.path(),
        callback.query().unwrap_or_default()
    );
    let done = browser.get(&target).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    done.location()
}

/// The token request for `code`.
async fn redeem(
    http: &reqwest::Client,
    base: &str,
    code: &str,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", RP_REDIRECT)
        .append_pair("code_verifier", verifier().secret())
        .finish();
    let response = http
        .post(format!("{base}/token"))
        .basic_auth("mas", Some(RP_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, json(response).await, headers)
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one sign-in walked through every endpoint in order"
)]
fn a_whole_sign_in_then_every_oidc_endpoint() {
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let server = start(&settings(&world, state.path())).await;
        let base = base(&server);
        let http = client(&world);

        let discovery: Value = json(
            http.get(format!("{base}/.well-known/openid-configuration"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(discovery["issuer"], server.issuer);
        assert_eq!(
            discovery["token_endpoint"],
            format!("{}/token", server.issuer)
        );

        let mut browser = Browser::new(&world);
        let pds = to_pds(&mut browser, &base).await;
        assert!(
            pds.starts_with(&world.url("pds.test", "/oauth/authorize")),
            "{pds}"
        );
        let back = params(&from_pds(&mut browser, &pds, &base).await);
        assert_eq!(back["state"], "rp-state");
        assert_eq!(back["iss"], server.issuer);

        let (status, tokens, headers) = redeem(&http, &base, &back["code"]).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(headers["cache-control"], "no-store");
        let jwks = http
            .get(format!("{base}/jwks"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let jwks = JwkSet::from_json(&jwks).unwrap();
        let id_token = Verifier::new(DefaultProvider::get())
            .verify(tokens["id_token"].as_str().unwrap(), &jwks)
            .unwrap();
        let claims = id_token.claims();
        assert_eq!(claims["iss"], server.issuer);
        assert_eq!(claims["aud"], "mas");
        assert_eq!(claims["sub"], ALICE_DID);
        assert_eq!(claims["nonce"], "rp-nonce");
        assert_eq!(claims["preferred_username"], ALICE_HANDLE);
        assert_eq!(
            claims["name"], "Alice Test",
            "the display name from the profile"
        );

        let access = tokens["access_token"].as_str().unwrap();
        let userinfo = http
            .get(format!("{base}/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(userinfo.status(), StatusCode::OK);
        assert_eq!(userinfo.headers()["cache-control"], "no-store");
        let userinfo: Value = json(userinfo).await;
        assert_eq!(userinfo["sub"], ALICE_DID);
        assert_eq!(userinfo["name"], "Alice Test");

        // The code is single-use; its replay also ends the tokens it gave.
        let (status, error, _) = redeem(&http, &base, &back["code"]).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        let after = http
            .get(format!("{base}/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
        assert!(
            after.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );

        // The upstream tokens were revoked once the identity was known.
        for _ in 0..50 {
            if !world.revoked().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(world.revoked(), vec!["at".to_owned()]);

        let metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("atlogin_logins_started_total 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("atlogin_logins_completed_total 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("atlogin_token_requests_total{outcome=\"ok\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("atlogin_token_requests_total{outcome=\"invalid_grant\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("atlogin_upstream_request_seconds_count{step=\"complete\"} 1"),
            "{metrics}"
        );

        server.stop().await.unwrap();
    });
}

#[test]
fn revocation_and_token_endpoint_refusals() {
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let server = start(&settings(&world, state.path())).await;
        let base = base(&server);
        let http = client(&world);
        let mut browser = Browser::new(&world);
        let pds = to_pds(&mut browser, &base).await;
        let back = params(&from_pds(&mut browser, &pds, &base).await);
        let (_, tokens, _) = redeem(&http, &base, &back["code"]).await;
        let access = tokens["access_token"].as_str().unwrap();

        let revoke = |auth: Option<(&str, &str)>| {
            let mut request = http
                .post(format!("{base}/revoke"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token={access}"));
            if let Some((id, secret)) = auth {
                request = request.basic_auth(id, Some(secret));
            }
            request.send()
        };
        let refused = revoke(Some(("mas", "a-wrong-secret-0123456789")))
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert!(
            refused.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        let ok = revoke(Some(("mas", RP_SECRET))).await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        let gone = http
            .get(format!("{base}/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);

        // The token endpoint's error shapes.
        let post = |body: &'static str, content_type: &'static str| {
            http.post(format!("{base}/token"))
                .basic_auth("mas", Some(RP_SECRET))
                .header("content-type", content_type)
                .body(body)
                .send()
        };
        let cases = [
            (
                "grant_type=password",
                "application/x-www-form-urlencoded",
                400,
                "unsupported_grant_type",
            ),
            (
                "grant_type=authorization_code&code=nope&redirect_uri=x",
                "application/x-www-form-urlencoded",
                400,
                "invalid_grant",
            ),
            (
                "code=x",
                "application/x-www-form-urlencoded",
                400,
                "invalid_request",
            ),
            (
                "{\"grant_type\":\"authorization_code\"}",
                "application/json",
                400,
                "invalid_request",
            ),
        ];
        for (body, content_type, status, error) in cases {
            let response = post(body, content_type).await.unwrap();
            assert_eq!(response.status().as_u16(), status, "{body}");
            assert_eq!(response.headers()["cache-control"], "no-store");
            let json: Value = json(response).await;
            assert_eq!(json["error"], error, "{body}");
        }
        // A body over the limit is refused before it is read in full.
        let big = http
            .post(format!("{base}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'a'; 200 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let no_token = http.get(format!("{base}/userinfo")).send().await.unwrap();
        assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(no_token.headers()["www-authenticate"], "Bearer");
        server.stop().await.unwrap();
    });
}

#[test]
fn pages_carry_the_security_headers_and_explain_errors() {
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let server = start(&settings(&world, state.path())).await;
        let base = base(&server);
        let mut browser = Browser::new(&world);

        let form = browser.get(&authorize_url(&base, &verifier(), &[])).await;
        for (name, value) in [
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("x-content-type-options", "nosniff"),
            ("cache-control", "no-store"),
        ] {
            assert_eq!(form.headers[name], value, "{name}");
        }
        let csp = form.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(form.headers.contains_key("x-request-id"));
        let cookie = form.headers["set-cookie"].to_str().unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(form.body.contains("<label for=\"handle\">"), "an accessible label");

        // Unknown client: shown to the person, never redirected.
        let unknown = browser
            .get(&format!("{base}/authorize?response_type=code&client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2F"))
            .await;
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
        assert!(unknown.alert().contains("not valid"), "{}", unknown.body);
        // A bad scope from a known client goes back to the client.
        let bad_scope = browser
            .get(&authorize_url(&base, &verifier(), &[]).replace("scope=openid+profile", "scope=profile"))
            .await;
        assert_eq!(bad_scope.status, StatusCode::SEE_OTHER);
        assert!(bad_scope.location().starts_with(RP_REDIRECT));

        // Not a handle; no such account: the form again, saying so.
        let (csrf, request) = (form.hidden("csrf"), form.hidden("request"));
        let not_handle = post_handle(&mut browser, &base, "not a handle!", &csrf, &request).await;
        assert_eq!(not_handle.status, StatusCode::BAD_REQUEST);
        assert!(not_handle.alert().contains("is not a handle or a DID"), "{}", not_handle.alert());
        assert!(not_handle.body.contains("aria-invalid=\"true\""));
        let nobody = post_handle(&mut browser, &base, "nobody.test", &csrf, &request).await;
        assert_eq!(nobody.status, StatusCode::BAD_REQUEST);
        assert!(nobody.alert().contains("No account was found for “nobody.test”"), "{}", nobody.alert());

        // A forged form: wrong CSRF token, or another browser.
        let forged = post_handle(&mut browser, &base, ALICE_HANDLE, "forged", &request).await;
        assert_eq!(forged.status, StatusCode::BAD_REQUEST);
        assert!(forged.alert().contains("not the one atlogin sent"));
        let mut stranger = Browser::new(&world);
        let elsewhere = post_handle(&mut stranger, &base, ALICE_HANDLE, &csrf, &request).await;
        assert_eq!(elsewhere.status, StatusCode::BAD_REQUEST);
        assert!(elsewhere.alert().contains("another browser"));

        // A tampered or replayed state at the callback.
        let tampered = browser
            .get(&format!("{base}/atproto/callback?code=c&state=tampered&iss=x"))
            .await;
        assert_eq!(tampered.status, StatusCode::BAD_REQUEST);
        assert!(tampered.alert().contains("unknown"), "{}", tampered.body);
        let pds = to_pds(&mut browser, &base).await;
        let back = browser.get(&pds).await;
        let callback = back.location();
        // Someone else's browser following the callback link gets nothing.
        let mut thief = Browser::new(&world);
        let stolen = thief.get(&callback).await;
        assert_eq!(stolen.status, StatusCode::BAD_REQUEST);
        assert!(stolen.alert().contains("another browser"));

        let missing = browser.get(&format!("{base}/no-such-page")).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        server.stop().await.unwrap();
    });
}

#[test]
fn login_hint_goes_straight_to_the_pds_and_a_denial_reaches_the_client() {
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let server = start(&settings(&world, state.path())).await;
        let base = base(&server);
        let mut browser = Browser::new(&world);
        let first = browser
            .get(&authorize_url(
                &base,
                &verifier(),
                &[("login_hint", ALICE_HANDLE)],
            ))
            .await;
        assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
        let pds = first.location();
        assert!(
            pds.starts_with(&world.url("pds.test", "/oauth/authorize")),
            "{pds}"
        );
        // The PDS answers the callback with access_denied instead of a code.
        let back = browser.get(&pds).await;
        let callback = Url::parse(&back.location()).unwrap();
        let state = callback
            .query_pairs()
            .find(|(n, _)| n == "state")
            .unwrap()
            .1
            .into_owned();
        let iss = callback
            .query_pairs()
            .find(|(n, _)| n == "iss")
            .unwrap()
            .1
            .into_owned();
        let mut denied = callback.clone();
        denied
            .query_pairs_mut()
            .clear()
            .append_pair("error", "access_denied")
            .append_pair("state", &state)
            .append_pair("iss", &iss);
        let answer = browser.get(denied.as_str()).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let back = params(&answer.location());
        assert_eq!(back["error"], "access_denied");
        assert_eq!(back["state"], "rp-state");
        assert_eq!(back["iss"], server.issuer);
        server.stop().await.unwrap();
    });
}

#[test]
fn a_sign_in_survives_a_restart_between_the_pds_and_the_callback() {
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut settings = settings(&world, state.path());
        let first = start(&settings).await;
        let base = base(&first);
        let mut browser = Browser::new(&world);
        let pds = to_pds(&mut browser, &base).await;
        // The loopback client's redirect URI names the port: come back on it.
        settings.listen = first.address;
        first.stop().await.unwrap();
        let second = start(&settings).await;
        let back = params(&from_pds(&mut browser, &pds, &base).await);
        let (status, tokens, _) = redeem(&client(&world), &base, &back["code"]).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        second.stop().await.unwrap();
    });
}

#[test]
fn two_replicas_on_one_postgresql_share_every_step() {
    let url = std::env::var("ATLOGIN_TEST_POSTGRES_URL")
        .expect("ATLOGIN_TEST_POSTGRES_URL is not set: run scripts/test, which starts PostgreSQL");
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        let name = format!("atlogin_replicas_{}", std::process::id());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        let database = format!("{}/{name}", url.rsplit_once('/').unwrap().0);

        // Both replicas sit behind one public URL (here the first one's own
        // address) and share the keys and the database.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut settings = settings(&world, state.path());
        settings.store = StoreSettings::Postgres(database.into());
        settings.public_url = Some(Url::parse(&format!("http://127.0.0.1:{port}")).unwrap());
        let two = start(&settings).await;
        settings.listen = SocketAddr::from(([127, 0, 0, 1], port));
        let one = start(&settings).await;
        assert_eq!(one.issuer, two.issuer);
        assert_ne!(one.address, two.address);
        let (a, b) = (base(&one), base(&two));

        let http = client(&world);
        for round in 0..3 {
            let mut browser = Browser::new(&world);
            // Alternate the replica each step lands on.
            let (first, second) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
            let form = browser.get(&authorize_url(first, &verifier(), &[])).await;
            let pds = browser
                .post_form(
                    &format!("{second}/authorize"),
                    &[
                        ("request", &form.hidden("request")),
                        ("csrf", &form.hidden("csrf")),
                        ("handle", ALICE_HANDLE),
                    ],
                )
                .await
                .location();
            let back = params(&from_pds(&mut browser, &pds, first).await);
            let (status, tokens, _) = redeem(&http, second, &back["code"]).await;
            assert_eq!(status, StatusCode::OK, "round {round}: {tokens}");
            let info = http
                .get(format!("{first}/userinfo"))
                .bearer_auth(tokens["access_token"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(info.status(), StatusCode::OK, "round {round}");
        }
        one.stop().await.unwrap();
        two.stop().await.unwrap();
    });
}

#[test]
fn rate_limits_answer_429_per_address() {
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut settings = settings(&world, state.path());
        settings.rate_limits.logins_per_minute = 2;
        settings.rate_limits.tokens_per_minute = 3;
        let server = start(&settings).await;
        let base = base(&server);
        let mut browser = Browser::new(&world);
        let form = browser.get(&authorize_url(&base, &verifier(), &[])).await;
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let page = browser
                .post_form(
                    &format!("{base}/authorize"),
                    &[
                        ("request", &form.hidden("request")),
                        ("csrf", &form.hidden("csrf")),
                        ("handle", "nobody.test"),
                    ],
                )
                .await;
            statuses.push(page.status.as_u16());
            if page.status == StatusCode::TOO_MANY_REQUESTS {
                assert_eq!(page.headers["retry-after"], "60");
            }
        }
        assert_eq!(statuses, [400, 400, 429]);

        let http = client(&world);
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let (status, _, _) = redeem(&http, &base, "unknown-code").await;
            statuses.push(status.as_u16());
        }
        assert_eq!(statuses, [400, 400, 400, 429]);
        server.stop().await.unwrap();
    });
}

#[test]
fn a_running_server_picks_up_rotated_and_retired_keys() {
    use atlogin_server::keys::{KeySet, KeyStore};
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let server = start(&settings(&world, state.path())).await;
        let base = base(&server);
        let http = client(&world);
        let kid_of = |token: &str| -> String {
            let header = token.split('.').next().unwrap();
            let header: Value =
                serde_json::from_slice(&atlogin_core::base64url::decode(header).unwrap()).unwrap();
            header["kid"].as_str().unwrap().to_owned()
        };
        let id_token_kid = || async {
            let mut browser = Browser::new(&world);
            let pds = to_pds(&mut browser, &base).await;
            let back = params(&from_pds(&mut browser, &pds, &base).await);
            let (_, tokens, _) = redeem(&http, &base, &back["code"]).await;
            kid_of(tokens["id_token"].as_str().unwrap())
        };
        let published = || async {
            let jwks = json(http.get(format!("{base}/jwks")).send().await.unwrap()).await;
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        let rotate = |grace: u64| {
            KeyStore::open(state.path(), DefaultProvider::get())
                .unwrap()
                .rotate(
                    KeySet::IdToken,
                    atlogin_server::app::now(),
                    Duration::from_secs(grace),
                    &mut rand_core::UnwrapErr(getrandom::SysRng),
                )
                .unwrap()
        };

        let first = id_token_kid().await;
        assert!(!server.app.reload_keys().unwrap(), "nothing changed yet");
        rotate(3600);
        // What the sweeper does every minute.
        assert!(server.app.reload_keys().unwrap());
        let second = id_token_kid().await;
        assert_ne!(
            first, second,
            "the new key signs at once, without a restart"
        );
        let keys = published().await;
        assert!(keys.contains(&first) && keys.contains(&second), "{keys:?}");

        // A rotation with no grace retires the key it replaces at once: it
        // leaves the JWKS, while the first stays until its own retirement.
        rotate(0);
        assert!(server.app.reload_keys().unwrap());
        let keys = published().await;
        assert!(!keys.contains(&second), "{second} retired, yet in {keys:?}");
        assert!(
            keys.contains(&first),
            "{first} retires in an hour: {keys:?}"
        );
        assert_ne!(id_token_kid().await, second);
        server.stop().await.unwrap();
    });
}

#[test]
fn the_demo_runs_a_whole_code_flow_against_the_server() {
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let server = start(&settings(&world, state.path())).await;
        let base = base(&server);
        let mut browser = Browser::new(&world);
        let page = browser.get(&format!("{base}/demo")).await;
        assert!(page.body.contains("/demo/start"));
        let authorize = browser.get(&format!("{base}/demo/start")).await.location();
        let form = browser.get(&authorize).await;
        let pds = browser
            .post_form(
                &format!("{base}/authorize"),
                &[
                    ("request", &form.hidden("request")),
                    ("csrf", &form.hidden("csrf")),
                    ("handle", ALICE_HANDLE),
                ],
            )
            .await
            .location();
        let back = browser.get(&pds).await.location();
        let to_demo = browser.get(&back).await.location();
        assert!(
            to_demo.starts_with(&format!("{}/demo/callback?", server.issuer)),
            "{to_demo}"
        );
        let result = browser.get(&to_demo).await;
        assert_eq!(result.status, StatusCode::OK, "{}", result.body);
        assert!(result.body.contains("Signed in"));
        assert!(result.body.contains(ALICE_DID));
        assert!(result.body.contains("Alice Test"));
        server.stop().await.unwrap();
    });
}

#[test]
fn health_readiness_and_graceful_stop() {
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let server = start(&settings(&world, state.path())).await;
        let base = base(&server);
        let http = client(&world);
        assert_eq!(
            http.get(format!("{base}/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            http.get(format!("{base}/readyz"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
        assert!(
            metrics.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        // Without a public https URL there is no client metadata document.
        let metadata = http
            .get(format!("{base}/oauth-client-metadata.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(metadata.status(), StatusCode::NOT_FOUND);
        server.stop().await.unwrap();
        assert!(
            http.get(format!("{base}/healthz")).send().await.is_err(),
            "stopped"
        );
    });
}

/// A relying party's back-channel logout endpoint: records each logout token.
async fn logout_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let sink = received.clone();
    let router = axum::Router::new().route(
        "/logout",
        axum::routing::post(move |body: String| {
            let token = url::form_urlencoded::parse(body.as_bytes())
                .find(|(name, _)| name == "logout_token")
                .map(|(_, value)| value.into_owned());
            sink.lock().unwrap().extend(token);
            async { "" }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{address}/logout"), received)
}

async fn wait_for(received: &std::sync::Mutex<Vec<String>>, count: usize) -> Vec<String> {
    for _ in 0..100 {
        if received.lock().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    received.lock().unwrap().clone()
}

#[test]
fn replays_and_atlogin_logout_send_back_channel_logout_tokens() {
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let (uri, received) = logout_receiver().await;
        let mut settings = settings(&world, state.path());
        // The logout URI must share the origin of a redirect URI.
        let rp_origin = uri.trim_end_matches("/logout").to_owned();
        settings.clients = vec![RegisteredClient::new(
            "mas",
            vec![RP_REDIRECT.to_owned(), format!("{rp_origin}/callback")],
            ClientAuth::ClientSecretBasic(StoredSecret::Plain(ClientSecret::new(RP_SECRET))),
        )
        .with_backchannel_logout_uri(Url::parse(&uri).unwrap())];
        let server = start(&settings).await;
        let base = base(&server);
        let http = client(&world);

        // A replayed code ends the session it started: the relying party is told.
        let mut browser = Browser::new(&world);
        let pds = to_pds(&mut browser, &base).await;
        let back = params(&from_pds(&mut browser, &pds, &base).await);
        let (status, first, _) = redeem(&http, &base, &back["code"]).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = redeem(&http, &base, &back["code"]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let first_sid = {
            let payload = first["id_token"].as_str().unwrap().split('.').nth(1).unwrap();
            let claims: Value =
                serde_json::from_slice(&atlogin_core::base64url::decode(payload).unwrap()).unwrap();
            claims["sid"].as_str().unwrap().to_owned()
        };
        let tokens = wait_for(&received, 1).await;
        assert_eq!(tokens.len(), 1);
        let jwks = JwkSet::from_json(&http.get(format!("{base}/jwks")).send().await.unwrap().bytes().await.unwrap()).unwrap();
        let logout = Verifier::new(DefaultProvider::get())
            .with_typ("logout+jwt")
            .verify(&tokens[0], &jwks)
            .unwrap();
        let claims = logout.claims();
        assert_eq!(claims["iss"], server.issuer);
        assert_eq!(claims["aud"], "mas");
        assert_eq!(claims["sub"], ALICE_DID);
        assert!(claims["events"].get("http://schemas.openid.net/event/backchannel-logout").is_some());
        assert!(claims.get("nonce").is_none(), "a logout token never carries a nonce");
        assert_eq!(claims["sid"], first_sid.as_str(), "the session of the replayed code");

        // `atlogin logout <did>` ends every session of the person.
        let mut browser = Browser::new(&world);
        let pds = to_pds(&mut browser, &base).await;
        let back = params(&from_pds(&mut browser, &pds, &base).await);
        let (_, fresh, _) = redeem(&http, &base, &back["code"]).await;
        let access = fresh["access_token"].as_str().unwrap().to_owned();
        let config = state.path().join("atlogin.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"{}\"\n[upstream]\ndevelopment = true\n\n[[clients]]\nclient_id = \"mas\"\nredirect_uris = [\"{RP_REDIRECT}\", \"{rp_origin}/callback\"]\nsecret = \"{RP_SECRET}\"\nbackchannel_logout_uri = \"{uri}\"\n",
                server.address
            ),
        )
        .unwrap();
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let state_dir = state.path().to_owned();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_atlogin"))
                .arg("--state-dir")
                .arg(&state_dir)
                .args(["logout", ALICE_DID, "--config"])
                .arg(&config)
                .env_remove("ATLOGIN_PUBLIC_URL")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout.contains("1 session(s) ended"), "{stdout}");
        assert!(stdout.contains("mas: logout token delivered"), "{stdout}");
        assert_eq!(received.lock().unwrap().len(), 2);
        let gone = http.get(format!("{base}/userinfo")).bearer_auth(&access).send().await.unwrap();
        assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
        server.stop().await.unwrap();
    });
}

#[test]
fn doctor_checks_a_running_deployment_and_names_a_mismatched_issuer() {
    use atlogin_core::jose::Algorithm;
    use atlogin_server::doctor::{self, Expectations};
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let server = start(&settings(&world, state.path())).await;
        let url = Url::parse(&server.issuer).unwrap();
        let healthy = doctor::run(
            &url,
            &Expectations {
                issuer: Some(server.issuer.clone()),
                alg: Some(Algorithm::Es256),
            },
        )
        .await;
        assert!(healthy.iter().all(|f| f.ok), "{healthy:#?}");
        assert!(healthy.iter().any(|f| f.check == "jwks has an ES256 key"));

        let slash = format!("{}/", server.issuer);
        let mismatched = doctor::run(
            &url,
            &Expectations {
                issuer: Some(slash.clone()),
                alg: None,
            },
        )
        .await;
        let failed: Vec<_> = mismatched.iter().filter(|f| !f.ok).collect();
        assert_eq!(failed.len(), 1, "{failed:#?}");
        assert_eq!(failed[0].check, "relying party's issuer matches");
        assert!(failed[0].detail.contains("trailing slash"));

        let base = server.issuer.clone();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_atlogin"))
                .args(["doctor", &base, "--issuer", &slash, "--alg", "RS256"])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!output.status.success(), "{stdout}");
        assert!(
            stdout.contains("FAIL relying party's issuer matches"),
            "{stdout}"
        );
        assert!(
            stdout.contains("ok   RS256 offered for ID tokens"),
            "{stdout}"
        );
        server.stop().await.unwrap();
    });
}

#[test]
fn doctor_reads_a_confidential_clients_metadata_document() {
    use atlogin_core::client::ClientConfig;
    use atlogin_core::jose::{EcPrivateKey, JwsSigningKey};
    use atlogin_server::doctor::{Fetched, check_client_metadata};
    let url = "https://login.example.com/oauth-client-metadata.json";
    let secret = EcPrivateKey::generate(&mut rand_core::UnwrapErr(getrandom::SysRng));
    let key =
        JwsSigningKey::new(DefaultProvider::get().load_es256(&secret).unwrap()).with_kid("k1");
    let client = ClientConfig::confidential(
        Url::parse(url).unwrap(),
        vec![Url::parse("https://login.example.com/atproto/callback").unwrap()],
        vec![key],
    )
    .unwrap();
    let document = client.metadata_document().unwrap();
    let served = |body: &Value, content_type: &str| Fetched {
        status: 200,
        content_type: Some(content_type.to_owned()),
        body: body.to_string().into_bytes(),
    };
    let (findings, jwks_uri) = check_client_metadata(url, &served(&document, "application/json"));
    assert!(findings.iter().all(|f| f.ok), "{findings:#?}");
    assert!(
        findings
            .iter()
            .any(|f| f.check == "client jwks has an ES256 key")
    );
    assert_eq!(jwks_uri, None, "keys inline");

    let mut wrong = document.clone();
    wrong["client_id"] = "https://login.example.com/".into();
    let (findings, _) = check_client_metadata(url, &served(&wrong, "text/html"));
    let failed: Vec<&str> = findings
        .iter()
        .filter(|f| !f.ok)
        .map(|f| f.check.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "client metadata content type",
            "client_id is the document's URL"
        ]
    );
}

#[test]
fn prompt_login_and_max_age_ask_the_pds_for_a_fresh_sign_in() {
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let server = start(&settings(&world, state.path())).await;
        let base = base(&server);
        for (extra, fresh) in [
            (&[][..], false),
            (&[("prompt", "login")][..], true),
            (&[("max_age", "300")][..], true),
        ] {
            let mut with_hint = vec![("login_hint", ALICE_HANDLE)];
            with_hint.extend_from_slice(extra);
            let mut browser = Browser::new(&world);
            let page = browser
                .get(&authorize_url(&base, &verifier(), &with_hint))
                .await;
            assert_eq!(
                page.status,
                StatusCode::SEE_OTHER,
                "{extra:?}: {}",
                page.body
            );
            let pushed = world.pushed();
            let last = pushed.last().unwrap();
            assert_eq!(
                last.get("prompt").map(String::as_str),
                fresh.then_some("login"),
                "{extra:?}"
            );
            // And the sign-in still completes, with a fresh auth_time.
            let back = params(&from_pds(&mut browser, &page.location(), &base).await);
            assert!(back.contains_key("code"), "{extra:?}: {back:?}");
        }
        server.stop().await.unwrap();
    });
}

#[test]
fn a_failure_after_the_pds_explains_itself_and_can_tell_the_client() {
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let server = start(&settings(&world, state.path())).await;
        let base = base(&server);
        let mut browser = Browser::new(&world);
        let pds = to_pds(&mut browser, &base).await;
        let callback = Url::parse(&browser.get(&pds).await.location()).unwrap();
        // The callback claims another issuer than the one the login went to.
        let mut forged = callback.clone();
        forged
            .query_pairs_mut()
            .clear()
            .extend_pairs(callback.query_pairs().map(|(k, v)| {
                (
                    k.clone(),
                    if k == "iss" {
                        "https://evil.example".into()
                    } else {
                        v
                    },
                )
            }));
        let page = browser.get(forged.as_str()).await;
        assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.body);
        assert!(
            page.alert().contains("not the one your account names"),
            "{}",
            page.alert()
        );
        let start = page.body.find("<a href=\"").unwrap() + "<a href=\"".len();
        let back =
            page.body[start..start + page.body[start..].find('"').unwrap()].replace("&amp;", "&");
        let back = params(&back);
        assert_eq!(back["error"], "access_denied");
        assert_eq!(back["state"], "rp-state");
        server.stop().await.unwrap();
    });
}

#[test]
fn forwarded_addresses_from_trusted_proxies_pick_the_rate_limit_bucket() {
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut settings = settings(&world, state.path());
        settings.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        settings.rate_limits.tokens_per_minute = 1;
        let server = start(&settings).await;
        let base = base(&server);
        let http = client(&world);
        let token_from = |forwarded: &'static str| {
            http.post(format!("{base}/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-forwarded-for", forwarded)
                .body("grant_type=authorization_code&code=x&client_id=mas&client_secret=y")
                .send()
        };
        let mut statuses = Vec::new();
        for forwarded in [
            "2001:db8::1",
            "2001:db8::2",     // the same /64: the same bucket
            "2001:db8:0:1::1", // another /64
            "198.51.100.7",
            "198.51.100.7, 127.0.0.1", // a trusted hop after the client
            "garbage, 203.0.113.9",    // the nearest untrusted hop is the one that counts
        ] {
            statuses.push(token_from(forwarded).await.unwrap().status().as_u16());
        }
        // 401: the secret is wrong; 429: that address's minute is used up.
        assert_eq!(statuses, [401, 429, 401, 401, 429, 401]);
        server.stop().await.unwrap();
    });
}

#[test]
fn authorization_requests_are_limited_and_the_cookie_is_renewed() {
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut settings = settings(&world, state.path());
        settings.rate_limits.logins_per_minute = 1;
        let server = start(&settings).await;
        let base = base(&server);
        let mut browser = Browser::new(&world);
        let mut statuses = Vec::new();
        let mut cookies = Vec::new();
        for _ in 0..5 {
            let page = browser.get(&authorize_url(&base, &verifier(), &[])).await;
            statuses.push(page.status.as_u16());
            if let Some(cookie) = page.headers.get("set-cookie") {
                cookies.push(
                    cookie
                        .to_str()
                        .unwrap()
                        .split(';')
                        .next()
                        .unwrap()
                        .to_owned(),
                );
            }
        }
        assert_eq!(
            statuses,
            [200, 200, 200, 200, 429],
            "four requests per sign-in allowed"
        );
        assert_eq!(cookies.len(), 4, "set again on every form");
        assert!(
            cookies.iter().all(|c| *c == cookies[0]),
            "with the same value"
        );

        // A request id from outside is not believed.
        let answer = client(&world)
            .get(format!("{base}/healthz"))
            .header("x-request-id", "chosen-by-the-client")
            .send()
            .await
            .unwrap();
        assert_ne!(answer.headers()["x-request-id"], "chosen-by-the-client");
        // A form that is not a form gets the error page, not a bare rejection.
        let odd = client(&world)
            .post(format!("{base}/authorize"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(odd.status(), StatusCode::BAD_REQUEST);
        assert!(odd.text().await.unwrap().contains("role=\"alert\""));
        server.stop().await.unwrap();
    });
}

#[test]
fn a_pds_that_is_down_is_named_on_the_form() {
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let server = start(&settings(&world, state.path())).await;
        let base = base(&server);
        let mut browser = Browser::new(&world);
        let form = browser.get(&authorize_url(&base, &verifier(), &[])).await;
        let page = post_handle(
            &mut browser,
            &base,
            atlogin_conformance::DOWN_HANDLE,
            &form.hidden("csrf"),
            &form.hidden("request"),
        )
        .await;
        assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.body);
        assert!(
            page.alert().contains("could not be reached"),
            "{}",
            page.alert()
        );
        assert!(
            page.alert().contains("your PDS may be down"),
            "{}",
            page.alert()
        );
        assert!(
            page.body.contains("value=\"down.test\""),
            "what was typed stays in the field"
        );
        let metrics = client(&world)
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("atlogin_logins_failed_total{reason=\"discovery\"} 1"),
            "{metrics}"
        );
        server.stop().await.unwrap();
    });
}

#[test]
fn with_an_https_public_url_the_client_metadata_is_served() {
    use atlogin_server::doctor::{Fetched, check_client_metadata};
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut settings = settings(&world, state.path());
        settings.public_url = Some(Url::parse("https://login.example.org").unwrap());
        let server = start(&settings).await;
        assert_eq!(server.issuer, "https://login.example.org");
        let base = base(&server);
        let http = client(&world);

        let metadata = http
            .get(format!("{base}/oauth-client-metadata.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(metadata.status(), StatusCode::OK);
        let fetched = Fetched {
            status: 200,
            content_type: metadata
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned()),
            body: metadata.bytes().await.unwrap().to_vec(),
        };
        let url = "https://login.example.org/oauth-client-metadata.json";
        let (findings, _) = check_client_metadata(url, &fetched);
        assert!(findings.iter().all(|f| f.ok), "{findings:#?}");
        let document: Value = serde_json::from_slice(&fetched.body).unwrap();
        assert_eq!(document["client_id"], url);
        assert_eq!(document["client_uri"], "https://login.example.org/");

        let jwks = json(
            http.get(format!("{base}/oauth/jwks.json"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(jwks["keys"][0]["kty"], "EC");
        assert!(jwks["keys"][0].get("d").is_none(), "public keys only");

        let discovery = json(
            http.get(format!("{base}/.well-known/openid-configuration"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(discovery["issuer"], "https://login.example.org");
        assert_eq!(discovery["jwks_uri"], "https://login.example.org/jwks");

        // Behind https the browser cookie is __Host- and Secure.
        let mut browser = Browser::new(&world);
        let form = browser.get(&authorize_url(&base, &verifier(), &[])).await;
        let cookie = form.headers["set-cookie"].to_str().unwrap();
        assert!(
            cookie.starts_with("__Host-atlogin_browser=") && cookie.contains("; Secure"),
            "{cookie}"
        );
        server.stop().await.unwrap();
    });
}

/// The `atlogin` binary, as an operator runs it: JSON logs, a whole sign-in,
/// SIGTERM. The log names each request with an id and the finished sign-in
/// with its DID, handle, issuer, client and duration, and carries no secret.
#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one run of the binary, start to stop"
)]
fn the_binary_logs_json_without_secrets_and_stops_on_sigterm() {
    use std::io::Read as _;
    let world = World::start();
    let state = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = state.path().join("atlogin.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\n\n[log]\nformat = \"json\"\nlevel = \"info\"\n\n\
             [upstream]\ndevelopment = true\nplc_url = \"{}\"\nnameservers = [\"{}\"]\n\n\
             [[clients]]\nclient_id = \"mas\"\nredirect_uris = [\"{RP_REDIRECT}\"]\nsecret = \"{RP_SECRET}\"\n",
            world.url("plc.test", ""),
            world.dns,
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_atlogin"))
        .arg("--state-dir")
        .arg(state.path())
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("ATLOGIN_LOG")
        .env_remove("ATLOGIN_PUBLIC_URL")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let secrets = runtime().block_on(async {
        let http = client(&world);
        for _ in 0..100 {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut browser = Browser::new(&world);
        let form = browser.get(&authorize_url(&base, &verifier(), &[])).await;
        let csrf = form.hidden("csrf");
        let pds = post_handle(
            &mut browser,
            &base,
            ALICE_HANDLE,
            &csrf,
            &form.hidden("request"),
        )
        .await
        .location();
        let back = params(&from_pds(&mut browser, &pds, &base).await);
        let (status, tokens, _) = redeem(&http, &base, &back["code"]).await;
        assert_eq!(status, StatusCode::OK);
        let cookie = browser.cookie.clone().unwrap();
        vec![
            back["code"].clone(),
            tokens["access_token"].as_str().unwrap().to_owned(),
            tokens["id_token"].as_str().unwrap().to_owned(),
            csrf,
            cookie.split_once('=').unwrap().1.to_owned(),
            RP_SECRET.to_owned(),
            verifier().secret().to_owned(),
        ]
    });
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "a graceful stop exits 0: {status:?}");
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();

    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let finished = lines
        .iter()
        .find(|l| l["message"] == "sign-in finished")
        .unwrap_or_else(|| panic!("no sign-in line in {log}"));
    assert_eq!(finished["did"], ALICE_DID);
    assert_eq!(finished["handle"], ALICE_HANDLE);
    assert_eq!(finished["issuer"], world.url("pds.test", ""));
    assert_eq!(finished["client"], "mas");
    assert!(finished["seconds"].is_u64());
    assert!(
        finished["span"]["id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "the request's span and id: {finished}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "stopping: finishing the requests in flight")
    );
    for secret in secrets {
        assert!(!log.contains(&secret), "a secret in the log: {secret}");
    }
}
