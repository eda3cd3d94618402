//! The real peers of atlogin's end-to-end tests, and a browser to walk through
//! them at the HTTP level.
//!
//! [`RealWorld`] runs `e2e/world/world.mjs` (a real `@atproto/pds` with its
//! OAuth authorization server and an in-memory PLC directory, on loopback) from
//! the install `scripts/e2e-install` made; [`Browser`] keeps cookies per
//! origin and sends the headers a browser sends, so it can sign in at the PDS
//! through the same requests its sign-in page makes.
//!
//! The tests need `ATLOGIN_E2E_NODE` and `ATLOGIN_E2E_WORLD`, which
//! `scripts/e2e-install` prints and `scripts/test` sets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

pub mod dns;
pub mod front;
pub mod rp;
pub mod synapse;

/// Runs `script` of the world's install with Node, in its folder (so its
/// packages resolve); returns what it printed, or why it failed.
#[expect(
    clippy::print_stderr,
    reason = "the script's progress is shown with the test"
)]
pub fn node_script(script: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(env_path("ATLOGIN_E2E_NODE"))
        .arg(script)
        .args(args)
        .current_dir(env_path("ATLOGIN_E2E_WORLD"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("node: {e}"))?;
    // What the script said along the way belongs with the test's output.
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "{script} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Settings for an atlogin in `state_dir` that reaches `world` as the loopback
/// client (development rules; handles resolved by the PDS, which alone knows
/// the `.test` names), listening on any free loopback port.
///
/// # Panics
///
/// Never for a started world: its URLs parse.
#[must_use]
pub fn atlogin_settings(world: &RealWorld, state_dir: &Path) -> atlogin_server::settings::Settings {
    let mut settings = atlogin_server::settings::Settings::defaults(state_dir.to_owned());
    settings.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    settings.upstream.development = true;
    settings.upstream.plc_url = Some(Url::parse(&world.state.plc_url).expect("PLC URL"));
    settings.upstream.handle_resolver = Some(Url::parse(&world.state.pds_url).expect("PDS URL"));
    settings
}

/// A hidden form field's value on `page`.
///
/// # Panics
///
/// When the page has no such field.
#[must_use]
pub fn hidden(page: &Page, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let start = page
        .body
        .find(&needle)
        .unwrap_or_else(|| panic!("no field {name} in {}", page.body))
        + needle.len();
    let end = page.body[start..].find('"').expect("a closing quote");
    page.body[start..start + end].to_owned()
}

/// A test account on the PDS.
#[derive(Clone, Debug, Deserialize)]
pub struct Account {
    /// Its handle.
    pub handle: String,
    /// Its DID.
    pub did: String,
    /// Its password (a test value).
    pub password: String,
    /// The profile's display name, if it has one.
    pub display_name: Option<String>,
}

/// What `world.mjs` wrote once it was up.
#[derive(Clone, Debug, Deserialize)]
pub struct WorldState {
    /// The PLC directory.
    pub plc_url: String,
    /// The PDS, which is also the authorization server.
    pub pds_url: String,
    /// The accounts.
    pub accounts: Vec<Account>,
    /// An identity at the PLC whose PDS is down.
    pub unreachable: Identity,
}

/// A handle and the DID it names.
#[derive(Clone, Debug, Deserialize)]
pub struct Identity {
    /// The handle.
    pub handle: String,
    /// The DID.
    pub did: String,
}

/// A running PLC and PDS; stopped when dropped.
#[derive(Debug)]
pub struct RealWorld {
    child: Child,
    /// Where the run keeps its data and log.
    pub dir: tempfile::TempDir,
    /// URLs and accounts.
    pub state: WorldState,
}

/// The runtime every end-to-end test runs its async steps on: two workers, as
/// the machines have two cores.
///
/// # Panics
///
/// When the runtime cannot be built.
#[must_use]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A free port on 127.0.0.1 (free when asked; taken again at once by the caller).
///
/// # Panics
///
/// When no loopback port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port")
        .port()
}

pub(crate) fn env_path(name: &str) -> PathBuf {
    let Some(value) = std::env::var_os(name) else {
        panic!("{name} is not set: run scripts/test, or eval \"$(scripts/e2e-install)\" first");
    };
    PathBuf::from(value)
}

impl RealWorld {
    /// Starts the PLC and the PDS and waits until the accounts exist.
    ///
    /// # Panics
    ///
    /// When the install is missing or the world does not come up within a
    /// minute; its log is in the panic message.
    #[must_use]
    pub fn start() -> Self {
        Self::start_trusting(None)
    }

    /// [`RealWorld::start`], with the PDS trusting the certificate authority
    /// `ca_pem` besides Node's own roots (to fetch a client metadata document
    /// served behind a test front).
    ///
    /// # Panics
    ///
    /// As [`RealWorld::start`].
    #[must_use]
    pub fn start_trusting(ca_pem: Option<&Path>) -> Self {
        let node = env_path("ATLOGIN_E2E_NODE");
        let world = env_path("ATLOGIN_E2E_WORLD");
        let dir = tempfile::tempdir().expect("a run folder");
        let log = std::fs::File::create(dir.path().join("world.log")).expect("a log file");
        let mut command = Command::new(&node);
        if let Some(ca) = ca_pem {
            command.env("NODE_EXTRA_CA_CERTS", ca);
        }
        let child = command
            .arg(world.join("world.mjs"))
            .arg(dir.path())
            .arg(free_port().to_string())
            .arg(free_port().to_string())
            .current_dir(&world)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("node starts");
        let mut world = Self {
            child,
            state: WorldState {
                plc_url: String::new(),
                pds_url: String::new(),
                accounts: Vec::new(),
                unreachable: Identity {
                    handle: String::new(),
                    did: String::new(),
                },
            },
            dir,
        };
        let state_file = world.dir.path().join("state.json");
        // A test harness may read the clock; only core may not.
        #[expect(clippy::disallowed_methods, reason = "a test harness's deadline")]
        let started = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&state_file) {
                world.state = serde_json::from_str(&text).expect("state.json parses");
                return world;
            }
            let exited = world.child.try_wait().expect("wait");
            assert!(
                exited.is_none() && started.elapsed() < Duration::from_secs(90),
                "the PDS world did not come up ({exited:?}):\n{}",
                world.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The world's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("world.log")).unwrap_or_default()
    }

    /// The account with this handle.
    ///
    /// # Panics
    ///
    /// When there is none.
    #[must_use]
    pub fn account(&self, handle: &str) -> &Account {
        self.state
            .accounts
            .iter()
            .find(|a| a.handle == handle)
            .unwrap_or_else(|| panic!("no account {handle}"))
    }

    /// The run folder.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RealWorld {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// Stops a child with SIGTERM, then SIGKILL after ten seconds.
pub(crate) fn terminate(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id())
        && let Some(pid) = rustix::process::Pid::from_raw(pid)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    #[expect(clippy::disallowed_methods, reason = "a test harness's deadline")]
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Page {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: String,
}

impl Page {
    /// The text of atlogin's alert on the page (`role="alert"`), if any.
    #[must_use]
    pub fn alert(&self) -> Option<String> {
        let start = self.body.find("role=\"alert\">")? + "role=\"alert\">".len();
        let end = start + self.body[start..].find("</p>")?;
        Some(self.body[start..end].to_owned())
    }

    /// The `Location` header.
    ///
    /// # Panics
    ///
    /// When there is none.
    #[must_use]
    pub fn location(&self) -> String {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no location: {} {}", self.status, self.body))
            .to_owned()
    }
}

/// A browser at the HTTP level: cookies per origin (all attributes but the
/// name and value ignored, as a browser on a loopback origin would), no
/// redirects followed, and the `Sec-Fetch-*` headers the PDS checks.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, Vec<(String, String)>>,
}

/// How a request is made, for its `Sec-Fetch-*` headers.
#[derive(Clone, Copy, Debug)]
enum Fetch {
    /// A top-level navigation from another site (a link, a redirect, a form).
    Navigate,
    /// A top-level navigation a page makes within its own origin.
    NavigateWithin,
    /// A script's request to its own origin.
    SameOrigin,
}

fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

/// An HTTP client for the tests' own requests (a relying party's token
/// request, say): rustls with the workspace's roots, no redirects, no proxy.
///
/// # Panics
///
/// When the client cannot be built.
#[must_use]
pub fn http_client() -> reqwest::Client {
    http_client_trusting(&[])
}

/// [`http_client`], trusting the extra roots `ca_der` too.
///
/// # Panics
///
/// When a root does not parse or the client cannot be built.
#[must_use]
pub fn http_client_trusting(ca_der: &[Vec<u8>]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(atlogin_driver::hardening::tls_config(ca_der).expect("tls"))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

impl Browser {
    /// A browser with no cookies.
    #[must_use]
    pub fn new() -> Self {
        Self::trusting(&[])
    }

    /// A browser with no cookies that trusts the extra roots `ca_der`.
    #[must_use]
    pub fn trusting(ca_der: &[Vec<u8>]) -> Self {
        Self {
            http: http_client_trusting(ca_der),
            cookies: HashMap::new(),
        }
    }

    async fn send(
        &mut self,
        method: reqwest::Method,
        url: &str,
        fetch: Fetch,
        extra: &[(&str, String)],
        body: Option<(&str, String)>,
    ) -> Page {
        let parsed = Url::parse(url).unwrap_or_else(|_| panic!("not a URL: {url}"));
        let origin = origin_of(&parsed);
        let mut request = self.http.request(method, url);
        let (mode, dest, site) = match fetch {
            Fetch::Navigate => ("navigate", "document", "cross-site"),
            Fetch::NavigateWithin => ("navigate", "document", "same-origin"),
            Fetch::SameOrigin => ("same-origin", "empty", "same-origin"),
        };
        request = request
            .header("sec-fetch-mode", mode)
            .header("sec-fetch-dest", dest)
            .header("sec-fetch-site", site)
            .header("user-agent", "atlogin-e2e");
        if let Some(cookies) = self.cookies.get(&origin) {
            let header: Vec<String> = cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
            request = request.header("cookie", header.join("; "));
        }
        for (name, value) in extra {
            request = request.header(*name, value.as_str());
        }
        if let Some((content_type, body)) = body {
            request = request.header("content-type", content_type).body(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let jar = self.cookies.entry(origin).or_default();
        for set in headers.get_all("set-cookie") {
            let Some((name, value)) = set
                .to_str()
                .ok()
                .and_then(|s| s.split(';').next())
                .and_then(|pair| pair.split_once('='))
            else {
                continue;
            };
            jar.retain(|(n, _)| n != name.trim());
            jar.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    /// Follows a relying party's `authorize_url` to atlogin's form, types
    /// `handle` into it, and returns where atlogin sends the browser: the PDS's
    /// authorization page.
    ///
    /// # Panics
    ///
    /// When atlogin does not show its form or does not send the browser on.
    pub async fn through_atlogin_form(&mut self, authorize_url: &str, handle: &str) -> String {
        let form = self.get(authorize_url).await;
        assert_eq!(form.status, 200, "{}", form.body);
        let url = Url::parse(authorize_url).expect("a URL");
        let action = format!("{}/authorize", origin_of(&url));
        let next = self
            .post_form(
                &action,
                &[
                    ("request", &hidden(&form, "request")),
                    ("csrf", &hidden(&form, "csrf")),
                    ("handle", handle),
                ],
            )
            .await;
        assert_eq!(next.status, 303, "{}", next.body);
        next.location()
    }

    /// Navigates to `url`.
    pub async fn get(&mut self, url: &str) -> Page {
        self.send(reqwest::Method::GET, url, Fetch::Navigate, &[], None)
            .await
    }

    /// Submits a form to `url`.
    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(
            reqwest::Method::POST,
            url,
            Fetch::Navigate,
            &[],
            Some(("application/x-www-form-urlencoded", body)),
        )
        .await
    }

    /// The value of cookie `name` for `url`'s origin.
    #[must_use]
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let origin = origin_of(&Url::parse(url).ok()?);
        self.cookies
            .get(&origin)?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// Signs in at the PDS's authorization page `authorize_url` as `handle`
    /// with `password`, then approves (or, with `approve` false, declines)
    /// the request, the way the page's own script does. Returns where the PDS
    /// sends the browser next (the client's redirect URI with the answer), or
    /// the PDS's error text.
    pub async fn sign_in_at_pds(
        &mut self,
        authorize_url: &str,
        handle: &str,
        password: &str,
        approve: bool,
    ) -> Result<String, String> {
        let page = self.get(authorize_url).await;
        if page.status != 200 {
            return Err(format!(
                "the authorization page answered {}: {}",
                page.status, page.body
            ));
        }
        let url = Url::parse(authorize_url).map_err(|e| e.to_string())?;
        let origin = origin_of(&url);
        let csrf = self
            .cookie(authorize_url, "csrf-token")
            .ok_or("the authorization page set no csrf-token cookie")?;
        let api = |path: &str| format!("{origin}/@atproto/oauth-provider/~api/{path}");
        let headers = vec![
            ("origin", origin.clone()),
            ("referer", authorize_url.to_owned()),
            ("x-csrf-token", csrf),
        ];
        let sign_in = serde_json::json!({
            "locale": "en",
            "username": handle,
            "password": password,
            "remember": false,
        });
        let signed_in = self
            .send(
                reqwest::Method::POST,
                &api("sign-in"),
                Fetch::SameOrigin,
                &headers,
                Some(("application/json", sign_in.to_string())),
            )
            .await;
        let answer: serde_json::Value =
            serde_json::from_str(&signed_in.body).map_err(|_| signed_in.body.clone())?;
        if signed_in.status != 200 {
            let why = answer["error_description"].as_str().unwrap_or_default();
            return Err(format!("sign-in refused: {why}"));
        }
        let account = &answer["account"];
        // Provider 0.22 (the pinned one) names the account "did".
        let id = account["did"]
            .as_str()
            .or(account["sub"].as_str())
            .unwrap_or_default();
        let mut with_token = headers.clone();
        if let Some(token) = answer["ephemeralToken"].as_str() {
            with_token.push(("authorization", format!("Bearer {token}")));
        }
        let (path, body) = if approve {
            ("consent", serde_json::json!({ "did": id }))
        } else {
            ("reject", serde_json::json!({}))
        };
        let decided = self
            .send(
                reqwest::Method::POST,
                &api(path),
                Fetch::SameOrigin,
                &with_token,
                Some(("application/json", body.to_string())),
            )
            .await;
        let answer: serde_json::Value =
            serde_json::from_str(&decided.body).map_err(|_| decided.body.clone())?;
        let next = answer["url"]
            .as_str()
            .ok_or_else(|| format!("{path} answered {}: {}", decided.status, decided.body))?
            .to_owned();
        let back = self
            .send(
                reqwest::Method::GET,
                &next,
                Fetch::NavigateWithin,
                &[("referer", authorize_url.to_owned())],
                None,
            )
            .await;
        if !(300..400).contains(&back.status) {
            return Err(format!(
                "the redirect page answered {}: {}",
                back.status, back.body
            ));
        }
        Ok(back.location())
    }
}
