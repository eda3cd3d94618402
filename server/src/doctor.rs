//! `atlogin doctor`: checks a running deployment from the outside, as a relying
//! party and an atproto authorization server would see it.
//!
//! - The discovery document: served with 200 and JSON, its `issuer` exactly the
//!   URL it was fetched under, https, `code` with S256, RS256 offered, every
//!   endpoint on the issuer's origin, the JWKS readable with a key per algorithm.
//! - The atproto client metadata document (with an https URL): 200 and JSON,
//!   `client_id` equal to its own URL, the callback among the redirect URIs,
//!   `private_key_jwt` with ES256, DPoP-bound tokens, a JWKS with an ES256 key.
//! - Given what a relying party is configured with (its expected issuer, its ID
//!   token algorithm), whether those match.
//!
//! The checks on each document are pure functions, so they can be tested on
//! documents without a network.

use std::time::Duration;

use atlogin_core::jose::{Algorithm, JwkSet};
use serde_json::Value;
use url::Url;

/// The largest document read.
const MAX_DOCUMENT_LEN: usize = 1024 * 1024;

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// Whether it passed.
    pub ok: bool,
    /// What was checked.
    pub check: String,
    /// What was found.
    pub detail: String,
}

impl Finding {
    fn new(ok: bool, check: &str, detail: impl Into<String>) -> Self {
        Self {
            ok,
            check: check.to_owned(),
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = if self.ok { "ok  " } else { "FAIL" };
        write!(f, "{mark} {}: {}", self.check, self.detail)
    }
}

/// What a relying party expects of the deployment.
#[derive(Clone, Debug, Default)]
pub struct Expectations {
    /// The issuer configured at the relying party, compared byte for byte.
    pub issuer: Option<String>,
    /// The ID-token algorithm the relying party accepts.
    pub alg: Option<Algorithm>,
}

/// A fetched document.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

fn is_json(fetched: &Fetched) -> bool {
    fetched
        .content_type
        .as_deref()
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether `url` is https, or plain http on a loopback address.
fn secure_or_local(url: &Url) -> bool {
    url.scheme() == "https"
        || (url.scheme() == "http"
            && match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(name)) => name == "localhost",
                None => false,
            })
}

/// The JSON object of a document that should be one, with findings for the
/// status and content type.
fn json_object(
    what: &str,
    fetched: &Fetched,
    findings: &mut Vec<Finding>,
) -> Option<serde_json::Map<String, Value>> {
    findings.push(Finding::new(
        fetched.status == 200,
        &format!("{what} status"),
        format!("HTTP {}", fetched.status),
    ));
    findings.push(Finding::new(
        is_json(fetched),
        &format!("{what} content type"),
        fetched
            .content_type
            .clone()
            .unwrap_or_else(|| "none".to_owned()),
    ));
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&fetched.body) {
        Some(map)
    } else {
        findings.push(Finding::new(
            false,
            &format!("{what} body"),
            "not a JSON object",
        ));
        None
    }
}

fn strings<'a>(doc: &'a serde_json::Map<String, Value>, name: &str) -> Vec<&'a str> {
    doc.get(name)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Checks the discovery document fetched from `issuer_url`'s well-known path.
/// Returns the findings and the `jwks_uri`, if usable.
pub fn check_discovery(
    issuer_url: &str,
    fetched: &Fetched,
    expect: &Expectations,
) -> (Vec<Finding>, Option<Url>) {
    let mut findings = Vec::new();
    let Some(doc) = json_object("discovery", fetched, &mut findings) else {
        return (findings, None);
    };
    let issuer = doc
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or_default();
    findings.push(Finding::new(
        issuer == issuer_url,
        "issuer is the URL it is served under",
        format!("{issuer:?} (fetched under {issuer_url:?})"),
    ));
    let parsed = Url::parse(issuer).ok();
    let https = parsed.as_ref().is_some_and(|u| u.scheme() == "https");
    let local = parsed.as_ref().is_some_and(secure_or_local);
    findings.push(Finding::new(
        local,
        "issuer uses https",
        if https {
            "yes".to_owned()
        } else if local {
            "http on loopback: fine for development, not for production".to_owned()
        } else {
            format!("{issuer:?} is not https")
        },
    ));
    if let Some(expected) = &expect.issuer {
        findings.push(Finding::new(
            expected == issuer,
            "relying party's issuer matches",
            if expected == issuer {
                format!("{expected:?}")
            } else {
                format!("the relying party expects {expected:?} but atlogin says {issuer:?}; they must match byte for byte (mind trailing slashes)")
            },
        ));
    }
    let algs = strings(&doc, "id_token_signing_alg_values_supported");
    findings.push(Finding::new(
        algs.contains(&"RS256"),
        "RS256 offered for ID tokens",
        format!("{algs:?}"),
    ));
    if let Some(alg) = expect.alg {
        findings.push(Finding::new(
            algs.contains(&alg.as_str()),
            "relying party's ID-token algorithm offered",
            format!("{} in {algs:?}", alg.as_str()),
        ));
    }
    findings.push(Finding::new(
        strings(&doc, "response_types_supported").contains(&"code"),
        "authorization code flow",
        format!("{:?}", strings(&doc, "response_types_supported")),
    ));
    findings.push(Finding::new(
        strings(&doc, "code_challenge_methods_supported").contains(&"S256"),
        "PKCE S256",
        format!("{:?}", strings(&doc, "code_challenge_methods_supported")),
    ));
    let mut jwks_uri = None;
    for name in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
    ] {
        let value = doc.get(name).and_then(Value::as_str).unwrap_or_default();
        let url = Url::parse(value).ok();
        let same_origin = match (&url, &parsed) {
            (Some(url), Some(issuer)) => url.origin() == issuer.origin(),
            _ => false,
        };
        findings.push(Finding::new(
            same_origin,
            &format!("{name} on the issuer's origin"),
            format!("{value:?}"),
        ));
        if name == "jwks_uri" && same_origin {
            jwks_uri = url;
        }
    }
    (findings, jwks_uri)
}

/// Checks a JWKS for a key per algorithm in `algs`.
pub fn check_jwks(what: &str, fetched: &Fetched, algs: &[Algorithm]) -> Vec<Finding> {
    let mut findings = vec![Finding::new(
        fetched.status == 200,
        &format!("{what} status"),
        format!("HTTP {}", fetched.status),
    )];
    match JwkSet::from_json(&fetched.body) {
        Ok(set) => {
            for alg in algs {
                let has = set.keys().iter().any(|k| k.can_verify(*alg));
                findings.push(Finding::new(
                    has,
                    &format!("{what} has an {} key", alg.as_str()),
                    format!("{} key(s) in all", set.keys().len()),
                ));
            }
        }
        Err(error) => findings.push(Finding::new(
            false,
            &format!("{what} parses"),
            error.to_string(),
        )),
    }
    findings
}

/// Checks the atproto client metadata document fetched from `url`. Returns
/// the findings and, when the keys are published apart, the `jwks_uri`.
pub fn check_client_metadata(url: &str, fetched: &Fetched) -> (Vec<Finding>, Option<Url>) {
    let mut findings = Vec::new();
    let Some(doc) = json_object("client metadata", fetched, &mut findings) else {
        return (findings, None);
    };
    let text = |name: &str| doc.get(name).and_then(Value::as_str).unwrap_or_default();
    findings.push(Finding::new(
        text("client_id") == url,
        "client_id is the document's URL",
        format!("{:?}", text("client_id")),
    ));
    let callback = url.replace("/oauth-client-metadata.json", "/atproto/callback");
    findings.push(Finding::new(
        strings(&doc, "redirect_uris").contains(&callback.as_str()),
        "the callback is a redirect URI",
        format!("{:?}", strings(&doc, "redirect_uris")),
    ));
    findings.push(Finding::new(
        text("token_endpoint_auth_method") == "private_key_jwt"
            && text("token_endpoint_auth_signing_alg") == "ES256",
        "private_key_jwt with ES256",
        format!(
            "{:?} / {:?}",
            text("token_endpoint_auth_method"),
            text("token_endpoint_auth_signing_alg")
        ),
    ));
    findings.push(Finding::new(
        doc.get("dpop_bound_access_tokens") == Some(&Value::Bool(true)),
        "DPoP-bound access tokens",
        format!("{:?}", doc.get("dpop_bound_access_tokens")),
    ));
    findings.push(Finding::new(
        text("scope").split(' ').any(|s| s == "atproto"),
        "scope holds atproto",
        format!("{:?}", text("scope")),
    ));
    let mut jwks_uri = None;
    if let Some(jwks) = doc.get("jwks") {
        let inline = Fetched {
            status: 200,
            content_type: None,
            body: jwks.to_string().into_bytes(),
        };
        findings.extend(
            check_jwks("client jwks", &inline, &[Algorithm::Es256])
                .into_iter()
                .skip(1),
        );
    } else if let Ok(uri) = Url::parse(text("jwks_uri")) {
        jwks_uri = Some(uri);
    } else {
        findings.push(Finding::new(
            false,
            "client keys",
            "neither jwks nor jwks_uri",
        ));
    }
    (findings, jwks_uri)
}

/// Fetches `url` with a size cap and no redirects.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<Fetched, String> {
    let mut response = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_DOCUMENT_LEN {
            return Err(format!("larger than {MAX_DOCUMENT_LEN} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        status,
        content_type,
        body,
    })
}

/// Runs every check against the deployment at `base` (its public URL).
pub async fn run(base: &Url, expect: &Expectations) -> Vec<Finding> {
    let issuer = base.as_str().trim_end_matches('/').to_owned();
    let tls = match atlogin_driver::hardening::tls_config(&[]) {
        Ok(tls) => tls,
        Err(error) => return vec![Finding::new(false, "TLS set-up", error.to_string())],
    };
    let http = match reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(atlogin_driver::hardening::USER_AGENT)
        .build()
    {
        Ok(http) => http,
        Err(error) => return vec![Finding::new(false, "HTTP set-up", error.to_string())],
    };
    let mut findings = Vec::new();
    let discovery_url = format!("{issuer}/.well-known/openid-configuration");
    match fetch(&http, &discovery_url).await {
        Ok(fetched) => {
            let (found, jwks_uri) = check_discovery(&issuer, &fetched, expect);
            findings.extend(found);
            if let Some(jwks_uri) = jwks_uri {
                let mut algs = vec![Algorithm::Rs256];
                algs.extend(expect.alg.filter(|a| *a != Algorithm::Rs256));
                match fetch(&http, jwks_uri.as_str()).await {
                    Ok(fetched) => findings.extend(check_jwks("jwks", &fetched, &algs)),
                    Err(error) => findings.push(Finding::new(false, "jwks fetched", error)),
                }
            }
        }
        Err(error) => findings.push(Finding::new(
            false,
            "discovery fetched",
            format!("{discovery_url}: {error}"),
        )),
    }
    let metadata_url = format!("{issuer}/oauth-client-metadata.json");
    if base.scheme() == "https" {
        match fetch(&http, &metadata_url).await {
            Ok(fetched) => {
                let (found, jwks_uri) = check_client_metadata(&metadata_url, &fetched);
                findings.extend(found);
                if let Some(jwks_uri) = jwks_uri {
                    match fetch(&http, jwks_uri.as_str()).await {
                        Ok(fetched) => findings.extend(check_jwks(
                            "client jwks",
                            &fetched,
                            &[Algorithm::Es256],
                        )),
                        Err(error) => {
                            findings.push(Finding::new(false, "client jwks fetched", error));
                        }
                    }
                }
            }
            Err(error) => findings.push(Finding::new(
                false,
                "client metadata fetched",
                format!("{metadata_url}: {error}"),
            )),
        }
    } else {
        findings.push(Finding::new(
            true,
            "client metadata",
            "an http URL means the atproto loopback client: no metadata document is published",
        ));
    }
    findings
}
