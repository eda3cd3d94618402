//! A real Synapse (from the Python package index, in the install's virtualenv) with SQLite and
//! atlogin as its OIDC provider, on loopback; stopped when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{env_path, free_port};

/// The client secret Synapse and atlogin share in the tests (a test value).
pub const CLIENT_SECRET: &str = "synapse-secret-for-tests-0123456789";

/// The server name of the test homeserver: user ids are `@<localpart>:localhost`.
pub const SERVER_NAME: &str = "localhost";

/// Where Synapse sends the browser after a sign-in; on its SSO client
/// whitelist, so no confirmation page comes in between.
pub const CLIENT_REDIRECT: &str = "http://localhost/after-sso";

/// A running Synapse.
#[derive(Debug)]
pub struct Synapse {
    child: Child,
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    /// The port it listens on.
    pub port: u16,
    dir: std::path::PathBuf,
}

impl Synapse {
    /// Synapse as atlogin registers it: the client `synapse` with
    /// [`CLIENT_SECRET`] and the callback on `port`.
    #[must_use]
    pub fn registered_client(port: u16) -> atlogin_core::provider::RegisteredClient {
        use atlogin_core::provider::{ClientAuth, ClientSecret, RegisteredClient, StoredSecret};
        RegisteredClient::new(
            "synapse",
            vec![Self::oidc_callback(port)],
            ClientAuth::ClientSecretBasic(StoredSecret::Plain(ClientSecret::new(CLIENT_SECRET))),
        )
    }

    /// The callback Synapse registers with its OIDC provider.
    #[must_use]
    pub fn oidc_callback(port: u16) -> String {
        format!("http://127.0.0.1:{port}/_synapse/client/oidc/callback")
    }

    /// Starts Synapse on `port` in `dir`, trusting atlogin at `issuer` as the
    /// provider `atlogin` with the client `synapse` and `secret`.
    ///
    /// # Panics
    ///
    /// When the install is missing or Synapse does not answer within two
    /// minutes; its log is in the panic message.
    #[must_use]
    pub fn start(dir: &Path, port: u16, issuer: &str, secret: &str) -> Self {
        Self::start_trusting(dir, port, issuer, secret, None)
    }

    /// [`Synapse::start`], with `roots` (a PEM bundle) as the certificate
    /// authorities Synapse trusts for its requests to atlogin.
    ///
    /// # Panics
    ///
    /// As [`Synapse::start`].
    #[must_use]
    pub fn start_trusting(
        dir: &Path,
        port: u16,
        issuer: &str,
        secret: &str,
        roots: Option<&Path>,
    ) -> Self {
        let python = env_path("ATLOGIN_E2E_SYNAPSE").join("bin/python");
        let config = dir.join("homeserver.yaml");
        let d = dir.display();
        // Every secret below is a dummy for this test homeserver only.
        std::fs::write(
            &config,
            format!(
                r#"server_name: "{SERVER_NAME}"
public_baseurl: "http://127.0.0.1:{port}/"
pid_file: "{d}/homeserver.pid"
listeners:
  - port: {port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: "{d}/homeserver.db"
media_store_path: "{d}/media"
signing_key_path: "{d}/signing.key"
report_stats: false
macaroon_secret_key: "test-only-macaroon-secret-not-for-production"
form_secret: "test-only-form-secret-not-for-production"
trusted_key_servers: []
suppress_key_server_warning: true
enable_registration: false
rc_login:
  address: {{per_second: 100, burst_count: 100}}
  account: {{per_second: 100, burst_count: 100}}
sso:
  client_whitelist: ["{CLIENT_REDIRECT}"]
oidc_providers:
  - idp_id: atlogin
    idp_name: "Bluesky"
    issuer: "{issuer}"
    client_id: "synapse"
    client_secret: "{secret}"
    client_auth_method: client_secret_basic
    scopes: ["openid", "profile"]
    pkce_method: auto
    user_mapping_provider:
      config:
        subject_template: "{{{{ user.sub }}}}"
        localpart_template: "{{{{ user.preferred_username }}}}"
        display_name_template: "{{{{ user.name }}}}"
"#
            ),
        )
        .expect("homeserver.yaml");
        let log = std::fs::File::create(dir.join("synapse.log")).expect("log");
        let generated = Command::new(&python)
            .args(["-m", "synapse.app.homeserver", "--generate-keys", "-c"])
            .arg(&config)
            .stdout(log.try_clone().expect("log"))
            .stderr(log.try_clone().expect("log"))
            .status()
            .expect("python runs");
        assert!(
            generated.success(),
            "synapse --generate-keys failed: {}",
            read(dir)
        );
        let mut command = Command::new(&python);
        if let Some(roots) = roots {
            command.env("SSL_CERT_FILE", roots);
        }
        let child = command
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(&config)
            .current_dir(dir)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("synapse starts");
        let mut synapse = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir: dir.to_owned(),
        };
        #[expect(clippy::disallowed_methods, reason = "a test harness's deadline")]
        let started = Instant::now();
        let health = format!("127.0.0.1:{port}");
        loop {
            if std::net::TcpStream::connect(&health).is_ok() {
                return synapse;
            }
            let exited = synapse.child.try_wait().expect("wait");
            assert!(
                exited.is_none() && started.elapsed() < Duration::from_secs(120),
                "Synapse did not come up ({exited:?}):\n{}",
                read(dir)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The SSO redirect a Matrix client opens to sign in with atlogin,
    /// returning to [`CLIENT_REDIRECT`].
    #[must_use]
    pub fn sso_redirect(&self) -> String {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("redirectUrl", CLIENT_REDIRECT)
            .finish();
        format!(
            "{}/_matrix/client/v3/login/sso/redirect/oidc-atlogin?{query}",
            self.url
        )
    }

    /// What a Matrix client does with the `loginToken` Synapse put on
    /// [`CLIENT_REDIRECT`] (`back`, the whole URL): `/login` with it, then
    /// `whoami` and the profile. Answers the user id and its display name.
    ///
    /// # Panics
    ///
    /// When `back` carries no login token or Synapse refuses a step; the
    /// answers are in the panic message.
    pub async fn log_in_with(&self, back: &str) -> (String, Option<String>) {
        let back = url::Url::parse(back).expect("a URL");
        assert!(back.as_str().starts_with(CLIENT_REDIRECT), "{back}");
        let token = back
            .query_pairs()
            .find(|(name, _)| name == "loginToken")
            .map_or_else(
                || panic!("no loginToken on {back}"),
                |(_, value)| value.into_owned(),
            );
        let http = crate::http_client();
        let answer = |response: reqwest::Response| async move {
            let bytes = response.bytes().await.expect("Synapse answers");
            serde_json::from_slice::<Value>(&bytes).expect("JSON from Synapse")
        };
        let login = answer(
            http.post(format!("{}/_matrix/client/v3/login", self.url))
                .header("content-type", "application/json")
                .body(json!({"type": "m.login.token", "token": token}).to_string())
                .send()
                .await
                .expect("Synapse answers"),
        )
        .await;
        let access = login["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{login}\n{}", self.log()))
            .to_owned();
        let whoami = answer(
            http.get(format!("{}/_matrix/client/v3/account/whoami", self.url))
                .bearer_auth(&access)
                .send()
                .await
                .expect("Synapse answers"),
        )
        .await;
        let user_id = whoami["user_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{whoami}"))
            .to_owned();
        let profile = answer(
            http.get(format!("{}/_matrix/client/v3/profile/{user_id}", self.url))
                .bearer_auth(&access)
                .send()
                .await
                .expect("Synapse answers"),
        )
        .await;
        let name = profile["displayname"].as_str().map(str::to_owned);
        (user_id, name)
    }

    /// A person's whole sign-in at the HTTP level: Synapse's SSO redirect, atlogin's
    /// form at `issuer`, the PDS's sign-in and consent, back through atlogin
    /// to Synapse's callback. Answers the URL Synapse finally sends the
    /// browser to (for [`Synapse::log_in_with`]).
    ///
    /// # Panics
    ///
    /// When a step goes elsewhere than it should; the logs are in the
    /// message.
    pub async fn sign_in(
        &self,
        browser: &mut crate::Browser,
        issuer: &str,
        account: &crate::Account,
        world: &crate::RealWorld,
    ) -> String {
        let to_atlogin = browser.get(&self.sso_redirect()).await;
        assert!(
            (300..400).contains(&to_atlogin.status),
            "{} {}\n{}",
            to_atlogin.status,
            to_atlogin.body,
            self.log()
        );
        let authorize = to_atlogin.location();
        assert!(
            authorize.starts_with(&format!("{issuer}/authorize?")),
            "{authorize}"
        );
        let pds = browser
            .through_atlogin_form(&authorize, &account.handle)
            .await;
        let callback = browser
            .sign_in_at_pds(&pds, &account.handle, &account.password, true)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", world.log()));
        let to_synapse = browser.get(&callback).await;
        assert_eq!(to_synapse.status, 303, "{}", to_synapse.body);
        let synapse_callback = to_synapse.location();
        assert!(
            synapse_callback.starts_with(&Self::oidc_callback(self.port)),
            "{synapse_callback}"
        );
        let done = browser.get(&synapse_callback).await;
        assert!(
            (300..400).contains(&done.status),
            "Synapse's callback answered {}: {}\n{}",
            done.status,
            done.body,
            self.log()
        );
        done.location()
    }

    /// Synapse's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        read(&self.dir)
    }

    /// A free port for a Synapse to come.
    #[must_use]
    pub fn port() -> u16 {
        free_port()
    }
}

fn read(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("synapse.log")).unwrap_or_default()
}

impl Drop for Synapse {
    fn drop(&mut self) {
        crate::terminate(&mut self.child);
    }
}
