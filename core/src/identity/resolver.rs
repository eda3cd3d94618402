//! The identity resolution machine: handle or DID in, verified DID, handle and PDS out.
//!
//! From a handle: DNS TXT `_atproto.<handle>` and HTTPS
//! `https://<handle>/.well-known/atproto-did` are asked for at once (or, when a
//! resolver service is configured, its `com.atproto.identity.resolveHandle`
//! instead). **DNS wins**: a DID from DNS is taken as soon as it arrives; the
//! well-known answer is used only when DNS has none. TXT records that name
//! different DIDs fail the resolution outright. Then the DID document is fetched
//! and must claim the handle back, or the resolution fails: a handle that points
//! at a DID which does not claim it is not that DID's handle.
//!
//! From a DID: the document is fetched; if it claims a handle, that handle is
//! resolved, and it is reported only if it points back to the same DID.
//! Otherwise the identity has no verified handle (`handle` is `None`).
//!
//! Requests go out through the [`Machine`] loop; see [`crate::transport`].

use std::fmt;

use serde_json::Value;
use url::Url;

use super::document::{DidDocument, DidDocumentError, MAX_DID_DOCUMENT_LEN};
use super::syntax::{AtIdentifier, Did, DidMethod, Handle, Mode};
use crate::transport::{
    Action, FetchLimits, Machine, Outbox, RequestId, Response, TransportError, TxtAnswer,
};

/// The largest `/.well-known/atproto-did` body read.
const MAX_WELL_KNOWN_LEN: usize = 4 * 1024;

/// Redirects followed for `/.well-known/atproto-did` (the spec allows a bounded number).
const WELL_KNOWN_REDIRECTS: u8 = 3;

/// The largest `resolveHandle` answer read.
const MAX_XRPC_LEN: usize = 16 * 1024;

/// Where and how identities are resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdentityConfig {
    /// Production or development rules.
    pub mode: Mode,
    /// The PLC directory that resolves `did:plc`.
    pub plc_directory: Url,
    /// A service to resolve handles with `com.atproto.identity.resolveHandle`
    /// instead of DNS and HTTPS. Off by default; its answers are checked against
    /// the DID document like any other.
    pub handle_resolver: Option<Url>,
}

impl IdentityConfig {
    /// Production rules with the public PLC directory and no resolver service.
    #[must_use]
    pub fn new(plc_directory: Url) -> Self {
        Self {
            mode: Mode::Production,
            plc_directory,
            handle_resolver: None,
        }
    }

    /// Sets production or development rules.
    #[must_use]
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Resolves handles through this service's `com.atproto.identity.resolveHandle`.
    #[must_use]
    pub fn with_handle_resolver(mut self, service: Url) -> Self {
        self.handle_resolver = Some(service);
        self
    }
}

impl Default for IdentityConfig {
    fn default() -> Self {
        // A constant URL that always parses.
        Self::new(Url::parse("https://plc.directory").unwrap_or_else(|_| unreachable!()))
    }
}

/// A resolved identity.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolvedIdentity {
    /// The account's DID: the stable identifier.
    pub did: Did,
    /// The handle, only if it was verified in both directions.
    pub handle: Option<Handle>,
    /// The origin of the account's PDS.
    pub pds: Url,
}

/// Why an identity could not be resolved; the message says what to look at.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The DNS TXT records name several different DIDs.
    #[error("the DNS TXT records of _atproto.{0} name several different DIDs")]
    ConflictingDnsRecords(Handle),
    /// The DID document could not be fetched.
    #[error("could not fetch the DID document of {did}: {detail}")]
    DidNotFound {
        /// The DID.
        did: Did,
        /// What went wrong.
        detail: String,
    },
    /// The handle resolved to a DID whose document does not claim it.
    #[error("{handle} points to {did}, but the DID document of {did} does not claim {handle}")]
    HandleMismatch {
        /// The handle that was typed.
        handle: Handle,
        /// The DID it resolved to.
        did: Did,
    },
    /// No method found a DID for the handle.
    #[error("{0}")]
    HandleNotFound(HandleNotFound),
    /// The DID document is not acceptable.
    #[error("the DID document of {did} is invalid: {error}")]
    InvalidDidDocument {
        /// The DID.
        did: Did,
        /// What is wrong with it.
        error: DidDocumentError,
    },
    /// The DID document names no PDS.
    #[error("the DID document of {0} names no atproto PDS")]
    NoPds(Did),
}

/// Why a handle did not resolve, method by method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandleNotFound {
    /// The handle.
    pub handle: Handle,
    /// What each method that was tried found, in words.
    pub attempts: Vec<(HandleMethod, String)>,
    /// Whether every method found plainly nothing (no record, HTTP 404), rather
    /// than failing or finding something unusable.
    pub absent: bool,
}

impl fmt::Display for HandleNotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let handle = &self.handle;
        if self
            .attempts
            .iter()
            .all(|(m, _)| *m == HandleMethod::ResolverService)
        {
            write!(f, "the handle resolver service found no DID for {handle}")?;
        } else if self.absent {
            write!(f, "no DNS TXT record and no well-known file for {handle}")?;
        } else {
            write!(f, "could not resolve the handle {handle}")?;
        }
        let details: Vec<String> = self
            .attempts
            .iter()
            .map(|(m, why)| format!("{m}: {why}"))
            .collect();
        write!(f, " ({})", details.join("; "))
    }
}

/// A way of resolving a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleMethod {
    /// DNS TXT `_atproto.<handle>`.
    Dns,
    /// A configured `com.atproto.identity.resolveHandle` service.
    ResolverService,
    /// HTTPS `/.well-known/atproto-did`.
    WellKnown,
}

impl fmt::Display for HandleMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dns => "DNS",
            Self::ResolverService => "resolver service",
            Self::WellKnown => "HTTPS",
        })
    }
}

/// What one method found.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Conflict,
    Found(Did),
    /// Nothing usable; `absent` when there was plainly nothing there.
    NotFound {
        why: String,
        absent: bool,
    },
}

impl Outcome {
    fn absent(why: &str) -> Self {
        Self::NotFound {
            why: why.to_owned(),
            absent: true,
        }
    }

    fn failed(why: impl Into<String>) -> Self {
        Self::NotFound {
            why: why.into(),
            absent: false,
        }
    }
}

/// One method's request and, once answered, its outcome.
#[derive(Debug)]
struct Attempt {
    id: RequestId,
    method: HandleMethod,
    outcome: Option<Outcome>,
}

/// Resolving one handle with one or more methods.
#[derive(Debug)]
struct HandleLookup {
    handle: Handle,
    attempts: Vec<Attempt>,
}

impl HandleLookup {
    /// The decision, once there is enough to decide (DNS wins).
    fn decide(&self) -> Option<Result<Did, IdentityError>> {
        if let Some(dns) = self.attempts.iter().find(|a| a.method == HandleMethod::Dns) {
            match &dns.outcome {
                None => return None,
                Some(Outcome::Found(did)) => return Some(Ok(did.clone())),
                Some(Outcome::Conflict) => {
                    return Some(Err(IdentityError::ConflictingDnsRecords(
                        self.handle.clone(),
                    )));
                }
                Some(Outcome::NotFound { .. }) => {}
            }
        }
        let mut attempts = Vec::new();
        let mut absent = true;
        for attempt in &self.attempts {
            match &attempt.outcome {
                None => return None,
                Some(Outcome::Found(did)) => return Some(Ok(did.clone())),
                Some(Outcome::NotFound {
                    why,
                    absent: nothing,
                }) => {
                    absent &= *nothing;
                    attempts.push((attempt.method, why.clone()));
                }
                Some(Outcome::Conflict) => {
                    absent = false;
                    attempts.push((attempt.method, "conflicting answers".into()));
                }
            }
        }
        let handle = self.handle.clone();
        Some(Err(IdentityError::HandleNotFound(HandleNotFound {
            handle,
            attempts,
            absent,
        })))
    }

    fn owns(&self, id: RequestId) -> bool {
        self.attempts.iter().any(|a| a.id == id)
    }
}

#[derive(Debug)]
enum State {
    /// Resolving the handle that was typed.
    TypedHandle(HandleLookup),
    /// Fetching the DID document; `typed` is the handle it must claim, if any.
    Document {
        did: Did,
        id: RequestId,
        typed: Option<Handle>,
    },
    /// Checking that the handle a document claims points back to it.
    ClaimedHandle {
        lookup: HandleLookup,
        did: Did,
        pds: Url,
    },
    Finished,
}

/// Resolves a handle or DID to a [`ResolvedIdentity`]; drive it as a [`Machine`].
#[derive(Debug)]
pub struct IdentityResolver {
    config: IdentityConfig,
    outbox: Outbox<Result<ResolvedIdentity, IdentityError>>,
    state: State,
}

impl IdentityResolver {
    /// Starts resolving `identifier`.
    #[must_use]
    pub fn new(identifier: AtIdentifier, config: IdentityConfig) -> Self {
        Self::after(identifier, config, 0)
    }

    /// Starts resolving, with request ids after `last_id` (for use inside another machine).
    pub(crate) fn after(identifier: AtIdentifier, config: IdentityConfig, last_id: u32) -> Self {
        let mut resolver = Self {
            config,
            outbox: Outbox::after(last_id),
            state: State::Finished,
        };
        match identifier {
            AtIdentifier::Handle(handle) => {
                resolver.state = State::TypedHandle(resolver.start_lookup(handle));
                resolver.try_decide();
            }
            AtIdentifier::Did(did) => resolver.start_document(did, None),
        }
        resolver
    }

    fn start_lookup(&mut self, handle: Handle) -> HandleLookup {
        let mut attempts = Vec::new();
        let mut fetch =
            |outbox: &mut Outbox<_>, method, url: Result<Url, _>, accept, limits| match url
                .ok()
                .and_then(|url| outbox.fetch(&url, accept, limits))
            {
                Some(id) => attempts.push(Attempt {
                    id,
                    method,
                    outcome: None,
                }),
                None => attempts.push(Attempt {
                    id: RequestId(0),
                    method,
                    outcome: Some(Outcome::failed("the URL cannot be requested")),
                }),
            };
        if let Some(service) = &self.config.handle_resolver {
            let mut url = service.clone();
            url.set_path("/xrpc/com.atproto.identity.resolveHandle");
            url.query_pairs_mut()
                .clear()
                .append_pair("handle", handle.as_str());
            let limits = FetchLimits {
                max_body_len: MAX_XRPC_LEN,
                max_redirects: 0,
            };
            fetch(
                &mut self.outbox,
                HandleMethod::ResolverService,
                Ok(url),
                "application/json",
                limits,
            );
        } else {
            let id = self.outbox.lookup_txt(format!("_atproto.{handle}"));
            let url = Url::parse(&format!("https://{handle}/.well-known/atproto-did"));
            let limits = FetchLimits {
                max_body_len: MAX_WELL_KNOWN_LEN,
                max_redirects: WELL_KNOWN_REDIRECTS,
            };
            fetch(
                &mut self.outbox,
                HandleMethod::WellKnown,
                url,
                "text/plain",
                limits,
            );
            attempts.insert(
                0,
                Attempt {
                    id,
                    method: HandleMethod::Dns,
                    outcome: None,
                },
            );
        }
        HandleLookup { handle, attempts }
    }

    fn start_document(&mut self, did: Did, typed: Option<Handle>) {
        let url = match did.method() {
            DidMethod::Plc => {
                let mut url = self.config.plc_directory.clone();
                let pushed = url.path_segments_mut().map(|mut s| {
                    s.pop_if_empty().push(did.as_str());
                });
                pushed.ok().map(|()| url)
            }
            DidMethod::Web => did.web_host().and_then(|host| {
                let local = host == "localhost" || host.starts_with("localhost:");
                let scheme = if local && self.config.mode == Mode::Development {
                    "http"
                } else {
                    "https"
                };
                Url::parse(&format!("{scheme}://{host}/.well-known/did.json")).ok()
            }),
        };
        let limits = FetchLimits {
            max_body_len: MAX_DID_DOCUMENT_LEN,
            max_redirects: 0,
        };
        let accept = "application/did+ld+json, application/json";
        if let Some(id) = url.and_then(|url| self.outbox.fetch(&url, accept, limits)) {
            self.state = State::Document { did, id, typed };
        } else {
            let detail = "its URL cannot be requested".to_owned();
            self.finish(Err(IdentityError::DidNotFound { did, detail }));
        }
    }

    /// The last request id handed out.
    pub(crate) fn last_request_id(&self) -> u32 {
        self.outbox.last_id()
    }

    fn finish(&mut self, result: Result<ResolvedIdentity, IdentityError>) {
        self.state = State::Finished;
        self.outbox.finish(result);
    }

    /// Moves on once the current handle lookup can decide.
    fn try_decide(&mut self) {
        let decision = match &self.state {
            State::TypedHandle(lookup) | State::ClaimedHandle { lookup, .. } => lookup.decide(),
            State::Document { .. } | State::Finished => None,
        };
        let Some(decision) = decision else { return };
        match std::mem::replace(&mut self.state, State::Finished) {
            State::TypedHandle(lookup) => match decision {
                Ok(did) => {
                    // The other method's request is not needed if not yet sent.
                    self.outbox.cancel(|id| lookup.owns(id));
                    self.start_document(did, Some(lookup.handle));
                }
                Err(error) => self.finish(Err(error)),
            },
            State::ClaimedHandle { lookup, did, pds } => {
                let verified = matches!(&decision, Ok(found) if *found == did);
                let handle = verified.then_some(lookup.handle);
                self.finish(Ok(ResolvedIdentity { did, handle, pds }));
            }
            State::Document { .. } | State::Finished => {}
        }
    }

    /// Records the answer to one attempt of the current lookup, then tries to decide.
    fn record(
        &mut self,
        id: RequestId,
        dns: bool,
        answer: impl FnOnce(HandleMethod, Mode) -> Outcome,
    ) {
        let mode = self.config.mode;
        let lookup = match &mut self.state {
            State::TypedHandle(lookup) | State::ClaimedHandle { lookup, .. } => lookup,
            State::Document { .. } | State::Finished => return,
        };
        let pending = lookup
            .attempts
            .iter_mut()
            .find(|a| a.id == id && a.outcome.is_none() && (a.method == HandleMethod::Dns) == dns);
        let Some(attempt) = pending else { return };
        attempt.outcome = Some(answer(attempt.method, mode));
        self.try_decide();
    }

    fn handle_document(
        &mut self,
        did: Did,
        typed: Option<Handle>,
        response: Result<Response, TransportError>,
    ) {
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                return self.finish(Err(IdentityError::DidNotFound {
                    did,
                    detail: error.to_string(),
                }));
            }
        };
        if response.status() != http::StatusCode::OK {
            let detail = match response.status().as_u16() {
                404 | 410 => format!("no such DID (HTTP {})", response.status().as_u16()),
                other => format!("the server answered HTTP {other}"),
            };
            return self.finish(Err(IdentityError::DidNotFound { did, detail }));
        }
        let document = match DidDocument::parse(response.body(), &did, self.config.mode) {
            Ok(document) => document,
            Err(error) => {
                return self.finish(Err(IdentityError::InvalidDidDocument { did, error }));
            }
        };
        let Some(pds) = document.pds else {
            return self.finish(Err(IdentityError::NoPds(did)));
        };
        match typed {
            Some(handle) if document.handle.as_ref() == Some(&handle) => {
                self.finish(Ok(ResolvedIdentity {
                    did,
                    handle: Some(handle),
                    pds,
                }));
            }
            Some(handle) => self.finish(Err(IdentityError::HandleMismatch { handle, did })),
            None => {
                // The claimed handle must pass this mode's rules before it is looked up.
                let claimed = document
                    .handle
                    .and_then(|h| Handle::parse(h.as_str(), self.config.mode).ok());
                match claimed {
                    Some(handle) => {
                        let lookup = self.start_lookup(handle);
                        self.state = State::ClaimedHandle { lookup, did, pds };
                        self.try_decide();
                    }
                    None => self.finish(Ok(ResolvedIdentity {
                        did,
                        handle: None,
                        pds,
                    })),
                }
            }
        }
    }
}

impl Machine for IdentityResolver {
    type Output = Result<ResolvedIdentity, IdentityError>;

    fn poll(&mut self) -> Option<Action<Self::Output>> {
        self.outbox.pop()
    }

    fn handle_response(&mut self, id: RequestId, response: Result<Response, TransportError>) {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Document {
                did,
                id: expected,
                typed,
            } if expected == id => {
                self.handle_document(did, typed, response);
            }
            state => {
                self.state = state;
                self.record(id, false, |method, mode| match method {
                    HandleMethod::ResolverService => resolver_outcome(response, mode),
                    HandleMethod::Dns | HandleMethod::WellKnown => {
                        well_known_outcome(response, mode)
                    }
                });
            }
        }
    }

    fn handle_txt(&mut self, id: RequestId, answer: TxtAnswer) {
        self.record(id, true, |_, mode| dns_outcome(answer, mode));
    }
}

/// Reads `_atproto` TXT records: only `did=` records count; two different DIDs conflict.
fn dns_outcome(answer: TxtAnswer, mode: Mode) -> Outcome {
    let records = match answer {
        TxtAnswer::Records(records) => records,
        TxtAnswer::NoRecords => return Outcome::absent("no TXT record"),
        TxtAnswer::Failed(why) => return Outcome::failed(format!("lookup failed: {why}")),
    };
    let mut found: Option<Did> = None;
    for value in records.iter().filter_map(|r| r.strip_prefix("did=")) {
        let did = match Did::parse(value.trim(), mode) {
            Ok(did) => did,
            Err(error) => return Outcome::failed(format!("the did= record is unusable: {error}")),
        };
        match &found {
            Some(existing) if *existing != did => return Outcome::Conflict,
            _ => found = Some(did),
        }
    }
    found.map_or_else(|| Outcome::absent("no did= TXT record"), Outcome::Found)
}

fn well_known_outcome(response: Result<Response, TransportError>, mode: Mode) -> Outcome {
    let response = match response {
        Ok(response) => response,
        Err(error) => return Outcome::failed(error.to_string()),
    };
    match response.status().as_u16() {
        404 => return Outcome::absent("HTTP 404"),
        200..=299 => {}
        other => return Outcome::failed(format!("HTTP {other}")),
    }
    let Ok(text) = std::str::from_utf8(response.body()) else {
        return Outcome::failed("the file is not text");
    };
    match Did::parse(text.trim(), mode) {
        Ok(did) => Outcome::Found(did),
        Err(error) => Outcome::failed(format!("the file holds no usable DID: {error}")),
    }
}

fn resolver_outcome(response: Result<Response, TransportError>, mode: Mode) -> Outcome {
    let response = match response {
        Ok(response) => response,
        Err(error) => return Outcome::failed(error.to_string()),
    };
    if response.status() != http::StatusCode::OK {
        return Outcome::failed(format!("HTTP {}", response.status().as_u16()));
    }
    let map = crate::json::parse_object(response.body()).ok();
    let text = map
        .as_ref()
        .and_then(|map| map.get("did"))
        .and_then(Value::as_str);
    let Some(text) = text else {
        return Outcome::failed("the answer holds no DID");
    };
    match Did::parse(text, mode) {
        Ok(did) => Outcome::Found(did),
        Err(error) => Outcome::failed(format!("the answer holds no usable DID: {error}")),
    }
}

#[cfg(test)]
mod tests;
