//! The configuration check, on text and through `atlogin check-config`.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use atlogin_server::config::{self, Problem, Surroundings};

fn env(name: &str) -> Option<String> {
    (name == "MAS_SECRET").then(|| "an-env-secret-of-enough-length".to_owned())
}

fn read_file(path: &Path) -> std::io::Result<String> {
    match path.to_str() {
        Some("/run/secrets/db") => Ok("postgres://atlogin@db/atlogin\n".to_owned()),
        Some("/run/secrets/short") => Ok("short\n".to_owned()),
        Some("/etc/atlogin/private-ca.pem") => Ok(
            "-----BEGIN CERTIFICATE-----\nMIIBfTCCASOgAwIBAgIUSm9rZQ==\n-----END CERTIFICATE-----\n"
                .to_owned(),
        ),
        _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
    }
}

fn check(text: &str, file_is_shared: bool) -> Vec<Problem> {
    config::check(
        text,
        &Surroundings {
            file_is_shared,
            env: &env,
            read_file: &read_file,
        },
    )
}

fn lines(problems: &[Problem]) -> Vec<(Option<usize>, &str)> {
    problems
        .iter()
        .map(|p| (p.line, p.message.as_str()))
        .collect()
}

const GOOD: &str = r#"
public_url = "https://login.example.com"
listen = "0.0.0.0:9411"
trusted_proxies = ["127.0.0.1", "::1"]

[store]
kind = "postgres"
url_file = "/run/secrets/db"

[log]
format = "json"

[lifetimes]
code = 60
access_token = 300

[[clients]]
client_id = "mas"
redirect_uris = ["https://mas.example.com/upstream/callback/01H8PKNWKKRPCBW4YGH1RWV279"]
secret_env = "MAS_SECRET"
id_token_alg = "ES256"

[[clients]]
client_id = "synapse"
redirect_uris = ["https://matrix.example.com/_synapse/client/oidc/callback"]
auth = "client_secret_post"
secret = "an-inline-secret-of-enough-length"
scope = "openid profile"
backchannel_logout_uri = "https://matrix.example.com/_synapse/client/oidc/backchannel_logout"

[upstream]
plc_url = "https://plc.example.com"
nameservers = ["192.0.2.53:53"]
ca_certificates = ["/etc/atlogin/private-ca.pem"]

[rate_limits]
logins_per_minute = 10
tokens_per_minute = 100
"#;

#[test]
fn a_complete_configuration_passes() {
    assert_eq!(check(GOOD, false), []);
    assert_eq!(check("", false), [], "no file content means the defaults");
}

#[test]
fn every_problem_is_named_with_its_line() {
    let text = r#"public_url = "http://login.example.com"
listen = "somewhere"
trusted_proxies = ["10.0.0.0/8"]

[store]
kind = "postgres"

[log]
format = "yaml"

[lifetimes]
code = 3600
id_token = 0

[[clients]]
client_id = "mas"
redirect_uris = ["https://mas.example.com/cb#frag"]
secret_file = "/run/secrets/short"

[[clients]]
client_id = "mas"
redirect_uris = []
auth = "none"
secret_env = "MAS_SECRET"
id_token_alg = "HS256"
"#;
    let problems = check(text, false);
    let found = lines(&problems);
    let expect_at = |line: usize, needle: &str| {
        assert!(
            found
                .iter()
                .any(|(l, m)| *l == Some(line) && m.contains(needle)),
            "no problem at line {line} containing {needle:?} in {found:#?}"
        );
    };
    expect_at(1, "public_url must be https");
    expect_at(2, "listen must be an address");
    expect_at(3, "trusted_proxies holds IP addresses");
    expect_at(6, "give one of `url_file`, `url_env` or `url`");
    expect_at(9, "log.format");
    expect_at(12, "lifetimes.code must be at most 600");
    expect_at(13, "lifetimes.id_token must be at least one second");
    expect_at(17, "redirect URI must have no fragment");
    expect_at(18, "at least 16 bytes");
    expect_at(21, "registered twice");
    expect_at(22, "at least one redirect URI");
    expect_at(23, "public clients are not supported");
    expect_at(25, "id_token_alg");
    assert_eq!(problems.len(), 13, "{found:#?}");
}

#[test]
fn the_upstream_limits_scope_and_logout_sections_are_checked() {
    let text = r#"[upstream]
plc_url = "http://plc.example.com"
nameservers = ["localhost"]

[rate_limits]
logins_per_minute = 0

[[clients]]
client_id = "mas"
redirect_uris = ["https://mas.example.com/cb"]
secret_env = "MAS_SECRET"
scope = "profile"
backchannel_logout_uri = "https://elsewhere.example.com/logout"

[[clients]]
client_id = "other"
redirect_uris = ["https://other.example.com/cb"]
secret_env = "MAS_SECRET"
scope = "openid groups"
"#;
    let problems = check(text, false);
    let found = lines(&problems);
    for (line, needle) in [
        (2, "plc_url must be https unless upstream.development"),
        (3, "nameservers holds addresses with ports"),
        (6, "at least 1 per minute"),
        (12, "scope must be a space-separated list that holds openid"),
        (13, "Back-Channel Logout §2.2"),
        (19, "scope groups is not one atlogin offers"),
    ] {
        assert!(
            found
                .iter()
                .any(|(l, m)| *l == Some(line) && m.contains(needle)),
            "no problem at line {line} containing {needle:?} in {found:#?}"
        );
    }
    assert_eq!(problems.len(), 6, "{found:#?}");
    assert_eq!(
        lines(&check(
            "[upstream]\nca_certificates = [\n  \"/etc/atlogin/missing.pem\",\n  \"/run/secrets/db\",\n]\n",
            false
        )),
        [
            (
                Some(3),
                "upstream.ca_certificates: /etc/atlogin/missing.pem cannot be read: entity not found"
            ),
            (
                Some(4),
                "upstream.ca_certificates: /run/secrets/db: holds no PEM certificate"
            ),
        ]
    );
    assert_eq!(
        lines(&check(
            "[upstream]\nhandle_resolver = \"http://pds.example.com\"\n",
            false
        )),
        [(
            Some(2),
            "upstream.handle_resolver is an https URL (http only with upstream.development)"
        )]
    );
    // Development mode allows a plain-http PLC (a local one, in tests).
    assert_eq!(
        check(
            "[upstream]\ndevelopment = true\nplc_url = \"http://127.0.0.1:2582\"\n",
            false
        ),
        []
    );
}

#[test]
fn the_readme_example_passes() {
    let readme = include_str!("../../README.md");
    let start = readme.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + readme[start..].find("```").expect("its end");
    let env =
        |name: &str| (name == "ATLOGIN_MAS_SECRET").then(|| "a-secret-of-enough-length".to_owned());
    let read_file = |path: &Path| {
        assert_eq!(path, Path::new("/run/secrets/atlogin-db"));
        Ok("postgres://atlogin@db/atlogin\n".to_owned())
    };
    let problems = config::check(
        &readme[start..end],
        &Surroundings {
            file_is_shared: true,
            env: &env,
            read_file: &read_file,
        },
    );
    assert_eq!(problems, []);
}

#[test]
fn public_url_is_an_origin_and_http_only_on_loopback_addresses() {
    for (url, problem) in [
        ("https://login.example.org", None),
        ("https://login.example.org/", None),
        ("http://127.0.0.1:9411", None),
        ("http://[::1]:9411", None),
        (
            "https://login.example.org/atlogin",
            Some("must have no path"),
        ),
        ("http://localhost:9411", Some("must be https")),
        ("http://login.example.org", Some("must be https")),
        (
            "https://user:pw@login.example.org",
            Some("no user name or password"),
        ),
    ] {
        let found = check(&format!("public_url = {url:?}\n"), false);
        match problem {
            None => assert_eq!(found, [], "{url}"),
            Some(needle) => assert!(
                found.len() == 1 && found[0].message.contains(needle),
                "{url}: {found:?}"
            ),
        }
    }
}

#[test]
fn syntax_errors_and_unknown_keys_have_lines() {
    let broken = check("listen = \"127.0.0.1:1\"\n\n[store\nkind = 1\n", false);
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0].line, Some(3), "{}", broken[0]);
    let unknown = check("[log]\nformat = \"text\"\ncolour = \"blue\"\n", false);
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].line, Some(3), "{}", unknown[0]);
    assert!(unknown[0].message.contains("colour"), "{}", unknown[0]);
}

#[test]
fn a_wrongly_placed_secret_is_not_echoed() {
    let problems = check("store = \"postgres://atlogin:hunter2@db/atlogin\"\n", false);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].line, Some(1));
    assert!(!problems[0].message.contains("hunter2"), "{}", problems[0]);
    let problems = check(
        "[log]\nformat = \"text\"\nlevel = [\"s3cret-value\"]\n",
        false,
    );
    assert_eq!(problems.len(), 1);
    assert!(!problems[0].message.contains("s3cret"), "{}", problems[0]);
}

#[test]
fn inline_secrets_need_a_private_file_and_sources_are_exclusive() {
    let inline = r#"
[[clients]]
client_id = "synapse"
redirect_uris = ["https://matrix.example.com/_synapse/client/oidc/callback"]
secret = "an-inline-secret-of-enough-length"
"#;
    assert_eq!(check(inline, false), []);
    let shared = check(inline, true);
    assert_eq!(lines(&shared).len(), 1);
    assert_eq!(shared[0].line, Some(5));
    assert!(shared[0].message.contains("chmod 600"), "{}", shared[0]);

    let both = format!("{inline}secret_env = \"MAS_SECRET\"\n");
    let problems = check(&both, false);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].line, Some(6));
    assert!(problems[0].message.contains("only one"), "{}", problems[0]);

    let missing_env = inline.replace(
        "secret = \"an-inline-secret-of-enough-length\"",
        "secret_env = \"NOT_SET_ANYWHERE\"",
    );
    let problems = check(&missing_env, false);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.contains("NOT_SET_ANYWHERE is not set"),
        "{}",
        problems[0]
    );
}

#[test]
fn the_command_prints_each_problem_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    fs::write(&bad, "listen = \"nowhere\"\n\n[log]\nformat = \"yaml\"\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_atlogin"))
        .arg("check-config")
        .arg(&bad)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("bad.toml: line 1: listen"), "{stdout}");
    assert!(stdout.contains("bad.toml: line 4: log.format"), "{stdout}");

    let good = dir.path().join("good.toml");
    fs::write(&good, "listen = \"127.0.0.1:9411\"\n").expect("write");
    fs::set_permissions(&good, fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = Command::new(env!("CARGO_BIN_EXE_atlogin"))
        .arg("check-config")
        .arg(&good)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
