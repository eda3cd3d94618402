//! Authorization server discovery: from a PDS (or a PDS or entryway URL a person
//! typed) to the checked metadata of its authorization server.
//!
//! 1. `GET <pds>/.well-known/oauth-protected-resource` ([RFC 9728]): HTTP 200,
//!    JSON, `resource` equal to the PDS origin, and exactly one entry in
//!    `authorization_servers`, a bare https origin.
//! 2. `GET <issuer>/.well-known/oauth-authorization-server` ([RFC 8414]): HTTP
//!    200, JSON, `issuer` equal to the origin it was fetched from, and every
//!    requirement the atproto OAuth profile puts on an authorization server (see
//!    [`AuthServerMetadata::parse`]).
//!
//! Starting from a URL a person typed, step 1 is tried on that origin; when it
//! answers 404, the origin is taken to be the authorization server itself (an
//! entryway) and step 2 runs there.
//!
//! [RFC 9728]: https://www.rfc-editor.org/rfc/rfc9728
//! [RFC 8414]: https://www.rfc-editor.org/rfc/rfc8414

use std::fmt;

use serde_json::{Map, Value};
use url::Url;

use crate::identity::Mode;
use crate::origin::{parse_origin, parse_server_url};
use crate::transport::{
    Action, FetchLimits, Machine, Outbox, RequestId, Response, TransportError, TxtAnswer, excerpt,
    is_json,
};

/// The largest metadata document accepted, in bytes.
pub const MAX_METADATA_LEN: usize = 64 * 1024;

const PROTECTED_RESOURCE_PATH: &str = "/.well-known/oauth-protected-resource";
const AUTHORIZATION_SERVER_PATH: &str = "/.well-known/oauth-authorization-server";

/// What is wrong with a protected resource metadata document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceMetadataError {
    /// The entry of `authorization_servers` is not a bare https origin.
    #[error("its authorization server {value} is unusable: {reason}")]
    InvalidAuthorizationServer {
        /// The entry (cut to 200 characters).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not a JSON object with unique keys, or a member of the wrong type.
    #[error("it is not well-formed ({0})")]
    Malformed(&'static str),
    /// `authorization_servers` is missing or empty.
    #[error("it names no authorization server")]
    NoAuthorizationServer,
    /// `resource` is not the origin the document was fetched from.
    #[error("it names the resource {found}, not {expected}")]
    ResourceMismatch {
        /// The origin fetched from.
        expected: String,
        /// The `resource` it names (cut to 200 characters).
        found: String,
    },
    /// `authorization_servers` has more than one entry.
    #[error("it names more than one authorization server")]
    SeveralAuthorizationServers,
}

/// What is wrong with authorization server metadata.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerMetadataError {
    /// An endpoint is not an acceptable URL.
    #[error("its {field} is unusable: {reason}")]
    Endpoint {
        /// The metadata member.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A member the atproto profile requires to be `true` is not.
    #[error("it does not set {0} to true")]
    NotTrue(&'static str),
    /// `issuer` is not the origin the metadata was fetched from.
    #[error("its issuer {found} does not match {expected}")]
    IssuerMismatch {
        /// The origin fetched from.
        expected: String,
        /// The `issuer` it names (cut to 200 characters).
        found: String,
    },
    /// A list lacks a value the atproto profile requires.
    #[error("its {field} does not include {value}")]
    Lacks {
        /// The metadata member.
        field: &'static str,
        /// The value it should list.
        value: &'static str,
    },
    /// Not a JSON object with unique keys, or a member of the wrong type.
    #[error("it is not well-formed ({0})")]
    Malformed(&'static str),
    /// `none` appears among signing algorithms.
    #[error("its {0} includes none")]
    NoneAlgorithm(&'static str),
    /// `require_request_uri_registration` is `false`.
    #[error("it sets require_request_uri_registration to false")]
    RequestUriRegistration,
}

/// Why discovery failed; the message says which server and what to look at.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The authorization server metadata breaks a rule.
    #[error("the authorization server metadata of {issuer} is not acceptable: {error}")]
    AuthorizationServer {
        /// The issuer whose metadata it is.
        issuer: String,
        /// The rule it breaks.
        error: ServerMetadataError,
    },
    /// The PDS or service URL to start from is not acceptable.
    #[error("cannot discover an authorization server from {url}: {reason}")]
    InvalidServiceUrl {
        /// The URL (cut to 200 characters).
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A response was not JSON.
    #[error("{url} did not answer with JSON")]
    NotJson {
        /// The URL fetched.
        url: String,
    },
    /// The protected resource metadata breaks a rule.
    #[error("the protected resource metadata of {resource} is not acceptable: {error}")]
    ProtectedResource {
        /// The PDS origin.
        resource: String,
        /// The rule it breaks.
        error: ResourceMetadataError,
    },
    /// A response had another status than 200.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL fetched.
        url: String,
        /// The status code.
        status: u16,
    },
    /// No response came.
    #[error("could not fetch {url}: {error}")]
    Transport {
        /// The URL fetched.
        url: String,
        /// Why there was no response.
        error: TransportError,
    },
}

/// The metadata of an authorization server, checked against the atproto profile.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthServerMetadata {
    /// The issuer identifier, exactly as the metadata writes it.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: Url,
    /// `token_endpoint`.
    pub token_endpoint: Url,
    /// `pushed_authorization_request_endpoint`.
    pub pushed_authorization_request_endpoint: Url,
    /// `revocation_endpoint`, if any.
    pub revocation_endpoint: Option<Url>,
    /// `scopes_supported`.
    pub scopes_supported: Vec<String>,
    /// `dpop_signing_alg_values_supported`.
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// `token_endpoint_auth_signing_alg_values_supported`.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
}

/// The result of discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthorizationServer {
    /// The protected resource (the PDS origin) the server was found through;
    /// `None` when the typed URL was the authorization server itself.
    pub resource: Option<Url>,
    /// The checked metadata.
    pub metadata: AuthServerMetadata,
}

/// Parses protected resource metadata fetched from `resource` (a PDS origin) and
/// returns the issuer it names.
pub fn parse_protected_resource(
    bytes: &[u8],
    resource: &Url,
    mode: Mode,
) -> Result<Url, ResourceMetadataError> {
    use ResourceMetadataError as E;
    if bytes.len() > MAX_METADATA_LEN {
        return Err(E::Malformed("larger than 64 KiB"));
    }
    let map = crate::json::parse_object(bytes).map_err(|_| E::Malformed("not a JSON object"))?;
    let expected = resource.origin().ascii_serialization();
    let found = map
        .get("resource")
        .and_then(Value::as_str)
        .ok_or(E::Malformed("no resource"))?;
    let same = Url::parse(found).is_ok_and(|url| {
        url.origin() == resource.origin()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
    });
    if !same {
        return Err(E::ResourceMismatch {
            expected,
            found: excerpt(found),
        });
    }
    let servers = match map.get("authorization_servers") {
        None => return Err(E::NoAuthorizationServer),
        Some(Value::Array(servers)) => servers,
        Some(_) => return Err(E::Malformed("authorization_servers is not an array")),
    };
    let server = match servers.as_slice() {
        [] => return Err(E::NoAuthorizationServer),
        [one] => one
            .as_str()
            .ok_or(E::Malformed("authorization_servers holds a non-string"))?,
        _ => return Err(E::SeveralAuthorizationServers),
    };
    parse_origin(server, mode, true).map_err(|reason| E::InvalidAuthorizationServer {
        value: excerpt(server),
        reason,
    })
}

impl AuthServerMetadata {
    /// Parses and checks authorization server metadata fetched from the origin
    /// `issuer` (written as a bare origin, as `authorization_servers` names it).
    ///
    /// Checked, in this order: `issuer` equals the origin fetched;
    /// `response_types_supported` has `code`; `grant_types_supported` has
    /// `authorization_code` and `refresh_token`; `code_challenge_methods_supported`
    /// has `S256`; `token_endpoint_auth_methods_supported` has `none` and
    /// `private_key_jwt`; `token_endpoint_auth_signing_alg_values_supported` has
    /// `ES256` and not `none`; `scopes_supported` has `atproto`;
    /// `authorization_response_iss_parameter_supported`,
    /// `require_pushed_authorization_requests` and
    /// `client_id_metadata_document_supported` are `true`;
    /// `dpop_signing_alg_values_supported` has `ES256`;
    /// `require_request_uri_registration` is not `false`; the authorization, token,
    /// PAR and (if present) revocation endpoints are https URLs (http in
    /// development) without a fragment.
    pub fn parse(bytes: &[u8], issuer: &str, mode: Mode) -> Result<Self, ServerMetadataError> {
        use ServerMetadataError as E;
        if bytes.len() > MAX_METADATA_LEN {
            return Err(E::Malformed("larger than 64 KiB"));
        }
        let map =
            crate::json::parse_object(bytes).map_err(|_| E::Malformed("not a JSON object"))?;
        let found = map
            .get("issuer")
            .and_then(Value::as_str)
            .ok_or(E::Malformed("no issuer"))?;
        if found != issuer {
            return Err(E::IssuerMismatch {
                expected: issuer.to_owned(),
                found: excerpt(found),
            });
        }
        require(&map, "response_types_supported", "code")?;
        require(&map, "grant_types_supported", "authorization_code")?;
        require(&map, "grant_types_supported", "refresh_token")?;
        require(&map, "code_challenge_methods_supported", "S256")?;
        require(&map, "token_endpoint_auth_methods_supported", "none")?;
        require(
            &map,
            "token_endpoint_auth_methods_supported",
            "private_key_jwt",
        )?;
        let client_algs = require(
            &map,
            "token_endpoint_auth_signing_alg_values_supported",
            "ES256",
        )?;
        if client_algs.iter().any(|alg| alg == "none") {
            return Err(E::NoneAlgorithm(
                "token_endpoint_auth_signing_alg_values_supported",
            ));
        }
        let scopes = require(&map, "scopes_supported", "atproto")?;
        require_true(&map, "authorization_response_iss_parameter_supported")?;
        require_true(&map, "require_pushed_authorization_requests")?;
        let dpop_algs = require(&map, "dpop_signing_alg_values_supported", "ES256")?;
        require_true(&map, "client_id_metadata_document_supported")?;
        match map.get("require_request_uri_registration") {
            None | Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => return Err(E::RequestUriRegistration),
            Some(_) => {
                return Err(E::Malformed(
                    "require_request_uri_registration is not a boolean",
                ));
            }
        }
        Ok(Self {
            issuer: found.to_owned(),
            authorization_endpoint: endpoint(&map, "authorization_endpoint", mode)?.ok_or(
                E::Endpoint {
                    field: "authorization_endpoint",
                    reason: "missing",
                },
            )?,
            token_endpoint: endpoint(&map, "token_endpoint", mode)?.ok_or(E::Endpoint {
                field: "token_endpoint",
                reason: "missing",
            })?,
            pushed_authorization_request_endpoint: endpoint(
                &map,
                "pushed_authorization_request_endpoint",
                mode,
            )?
            .ok_or(E::Endpoint {
                field: "pushed_authorization_request_endpoint",
                reason: "missing",
            })?,
            revocation_endpoint: endpoint(&map, "revocation_endpoint", mode)?,
            scopes_supported: scopes,
            dpop_signing_alg_values_supported: dpop_algs,
            token_endpoint_auth_signing_alg_values_supported: client_algs,
        })
    }
}

/// A list of strings that must include `value`; the whole list is returned.
fn require(
    map: &Map<String, Value>,
    field: &'static str,
    value: &'static str,
) -> Result<Vec<String>, ServerMetadataError> {
    let list = match map.get(field) {
        None => return Err(ServerMetadataError::Lacks { field, value }),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(ServerMetadataError::Malformed(
                "a supported-values member is not an array",
            ));
        }
    };
    let list: Vec<String> = list
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or(ServerMetadataError::Malformed(
            "a supported-values list holds a non-string",
        ))?;
    if list.iter().any(|v| v == value) {
        Ok(list)
    } else {
        Err(ServerMetadataError::Lacks { field, value })
    }
}

fn require_true(map: &Map<String, Value>, field: &'static str) -> Result<(), ServerMetadataError> {
    match map.get(field) {
        Some(Value::Bool(true)) => Ok(()),
        _ => Err(ServerMetadataError::NotTrue(field)),
    }
}

fn endpoint(
    map: &Map<String, Value>,
    field: &'static str,
    mode: Mode,
) -> Result<Option<Url>, ServerMetadataError> {
    let Some(value) = map.get(field) else {
        return Ok(None);
    };
    let text = value.as_str().ok_or(ServerMetadataError::Endpoint {
        field,
        reason: "not a string",
    })?;
    parse_server_url(text, mode)
        .map(Some)
        .map_err(|reason| ServerMetadataError::Endpoint { field, reason })
}

#[derive(Debug)]
enum State {
    /// Fetching protected resource metadata from `resource`.
    Resource {
        id: RequestId,
        resource: Url,
        url: String,
        entryway_fallback: bool,
    },
    /// Fetching authorization server metadata for `issuer`.
    Server {
        id: RequestId,
        issuer: Url,
        url: String,
        resource: Option<Url>,
    },
    Finished,
}

/// Finds and checks a PDS's authorization server; drive it as a [`Machine`].
#[derive(Debug)]
pub struct AuthServerDiscovery {
    mode: Mode,
    outbox: Outbox<Result<AuthorizationServer, DiscoveryError>>,
    state: State,
}

impl AuthServerDiscovery {
    /// Discovery from a PDS origin (one an identity resolution returned).
    pub fn from_pds(pds: &Url, mode: Mode) -> Result<Self, DiscoveryError> {
        Self::from_pds_after(pds, mode, 0)
    }

    /// Discovery from a PDS, with request ids after `last_id`.
    pub(crate) fn from_pds_after(
        pds: &Url,
        mode: Mode,
        last_id: u32,
    ) -> Result<Self, DiscoveryError> {
        let origin = Self::start_origin(pds.as_str(), mode)?;
        Ok(Self::start(origin, false, mode, last_id))
    }

    /// Discovery from a URL a person typed: a PDS, or an entryway that is itself
    /// the authorization server. Only its origin is used.
    pub fn from_service_url(url: &Url, mode: Mode) -> Result<Self, DiscoveryError> {
        Self::from_service_url_after(url, mode, 0)
    }

    /// Discovery from a typed URL, with request ids after `last_id`.
    pub(crate) fn from_service_url_after(
        url: &Url,
        mode: Mode,
        last_id: u32,
    ) -> Result<Self, DiscoveryError> {
        let origin = Self::start_origin(&url.origin().ascii_serialization(), mode)?;
        Ok(Self::start(origin, true, mode, last_id))
    }

    /// The last request id handed out.
    pub(crate) fn last_request_id(&self) -> u32 {
        self.outbox.last_id()
    }

    fn start_origin(text: &str, mode: Mode) -> Result<Url, DiscoveryError> {
        parse_origin(text, mode, false).map_err(|reason| DiscoveryError::InvalidServiceUrl {
            url: excerpt(text),
            reason,
        })
    }

    fn start(resource: Url, entryway_fallback: bool, mode: Mode, last_id: u32) -> Self {
        let mut discovery = Self {
            mode,
            outbox: Outbox::after(last_id),
            state: State::Finished,
        };
        let mut url = resource.clone();
        url.set_path(PROTECTED_RESOURCE_PATH);
        if let Some(id) = discovery.fetch(&url) {
            discovery.state = State::Resource {
                id,
                resource,
                url: url.into(),
                entryway_fallback,
            };
        }
        discovery
    }

    fn fetch_server(&mut self, issuer: Url, resource: Option<Url>) {
        let mut url = issuer.clone();
        url.set_path(AUTHORIZATION_SERVER_PATH);
        if let Some(id) = self.fetch(&url) {
            self.state = State::Server {
                id,
                issuer,
                url: url.into(),
                resource,
            };
        }
    }

    /// Queues a GET for metadata; finishes with an error if `url` cannot be requested.
    fn fetch(&mut self, url: &Url) -> Option<RequestId> {
        let limits = FetchLimits {
            max_body_len: MAX_METADATA_LEN,
            max_redirects: 0,
        };
        let id = self.outbox.fetch(url, "application/json", limits);
        if id.is_none() {
            let reason = "the URL cannot be requested";
            self.finish(Err(DiscoveryError::InvalidServiceUrl {
                url: excerpt(url.as_str()),
                reason,
            }));
        }
        id
    }

    fn finish(&mut self, result: Result<AuthorizationServer, DiscoveryError>) {
        self.state = State::Finished;
        self.outbox.finish(result);
    }

    /// The body of a 200 JSON answer, or the error that ends discovery.
    fn body(
        url: &str,
        response: Result<Response, TransportError>,
    ) -> Result<Response, DiscoveryError> {
        let response = response.map_err(|error| DiscoveryError::Transport {
            url: url.to_owned(),
            error,
        })?;
        if response.status() != http::StatusCode::OK {
            return Err(DiscoveryError::Status {
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        if !is_json(&response) {
            return Err(DiscoveryError::NotJson {
                url: url.to_owned(),
            });
        }
        Ok(response)
    }
}

impl Machine for AuthServerDiscovery {
    type Output = Result<AuthorizationServer, DiscoveryError>;

    fn poll(&mut self) -> Option<Action<Self::Output>> {
        self.outbox.pop()
    }

    fn handle_response(&mut self, answered: RequestId, response: Result<Response, TransportError>) {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Resource {
                id,
                resource,
                url,
                entryway_fallback,
            } if id == answered => {
                let not_found =
                    matches!(&response, Ok(r) if r.status() == http::StatusCode::NOT_FOUND);
                if entryway_fallback && not_found {
                    return self.fetch_server(resource, None);
                }
                let origin = resource.origin().ascii_serialization();
                let issuer = Self::body(&url, response).and_then(|response| {
                    parse_protected_resource(response.body(), &resource, self.mode).map_err(
                        |error| DiscoveryError::ProtectedResource {
                            resource: origin,
                            error,
                        },
                    )
                });
                match issuer {
                    Ok(issuer) => self.fetch_server(issuer, Some(resource)),
                    Err(error) => self.finish(Err(error)),
                }
            }
            State::Server {
                id,
                issuer,
                url,
                resource,
            } if id == answered => {
                let issuer = issuer.origin().ascii_serialization();
                let metadata = Self::body(&url, response).and_then(|response| {
                    AuthServerMetadata::parse(response.body(), &issuer, self.mode)
                        .map_err(|error| DiscoveryError::AuthorizationServer { issuer, error })
                });
                self.finish(metadata.map(|metadata| AuthorizationServer { resource, metadata }));
            }
            state => self.state = state,
        }
    }

    fn handle_txt(&mut self, _: RequestId, _: TxtAnswer) {}
}

impl fmt::Display for AuthorizationServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metadata.issuer)
    }
}

#[cfg(test)]
mod tests;
