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

use std::collections::VecDeque;
use std::fmt;

use serde_json::Value;
use url::Url;

use super::document::{DidDocument, DidDocumentError, MAX_DID_DOCUMENT_LEN};
use super::syntax::{AtIdentifier, Did, DidMethod, Handle, Mode};
use crate::transport::{
    Action, Fetch, FetchLimits, Machine, RequestId, RequestIds, Response, TransportError,
    TxtAnswer, TxtLookup,
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
}

impl fmt::Display for HandleNotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resolver_only = self
            .attempts
            .iter()
            .all(|(m, _)| *m == HandleMethod::ResolverService);
        if resolver_only {
            write!(
                f,
                "the handle resolver service found no DID for {}",
                self.handle
            )?;
        } else {
            write!(
                f,
                "no DNS TXT record and no well-known file for {}",
                self.handle
            )?;
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
    NotFound(String),
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
                Some(Outcome::NotFound(_)) => {}
            }
        }
        let mut attempts = Vec::new();
        for attempt in &self.attempts {
            match &attempt.outcome {
                None => return None,
                Some(Outcome::Found(did)) => return Some(Ok(did.clone())),
                Some(Outcome::NotFound(why)) => attempts.push((attempt.method, why.clone())),
                Some(Outcome::Conflict) => {
                    attempts.push((attempt.method, "conflicting answers".into()));
                }
            }
        }
        Some(Err(IdentityError::HandleNotFound(HandleNotFound {
            handle: self.handle.clone(),
            attempts,
        })))
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
    ids: RequestIds,
    queue: VecDeque<Action<Result<ResolvedIdentity, IdentityError>>>,
    state: State,
}

impl IdentityResolver {
    /// Starts resolving `identifier`.
    #[must_use]
    pub fn new(identifier: AtIdentifier, config: IdentityConfig) -> Self {
        let mut resolver = Self {
            config,
            ids: RequestIds::default(),
            queue: VecDeque::new(),
            state: State::Finished,
        };
        resolver.state = match identifier {
            AtIdentifier::Handle(handle) => State::TypedHandle(resolver.start_lookup(handle)),
            AtIdentifier::Did(did) => resolver.start_document(did, None),
        };
        resolver
    }

    fn start_lookup(&mut self, handle: Handle) -> HandleLookup {
        let mut attempts = Vec::new();
        if let Some(service) = self.config.handle_resolver.clone() {
            let id = self.ids.next();
            let mut url = service;
            url.set_path("/xrpc/com.atproto.identity.resolveHandle");
            url.query_pairs_mut()
                .clear()
                .append_pair("handle", handle.as_str());
            let outcome = self.fetch(id, &url, "application/json", MAX_XRPC_LEN, 0);
            attempts.push(Attempt {
                id,
                method: HandleMethod::ResolverService,
                outcome,
            });
        } else {
            let id = self.ids.next();
            self.queue.push_back(Action::LookupTxt(TxtLookup {
                id,
                name: format!("_atproto.{handle}"),
            }));
            attempts.push(Attempt {
                id,
                method: HandleMethod::Dns,
                outcome: None,
            });
            let id = self.ids.next();
            let outcome = match Url::parse(&format!("https://{handle}/.well-known/atproto-did")) {
                Ok(url) => self.fetch(
                    id,
                    &url,
                    "text/plain",
                    MAX_WELL_KNOWN_LEN,
                    WELL_KNOWN_REDIRECTS,
                ),
                Err(_) => Some(Outcome::NotFound(
                    "the handle is not a valid host name".into(),
                )),
            };
            attempts.push(Attempt {
                id,
                method: HandleMethod::WellKnown,
                outcome,
            });
        }
        HandleLookup { handle, attempts }
    }

    fn start_document(&mut self, did: Did, typed: Option<Handle>) -> State {
        let id = self.ids.next();
        let url = match did.method() {
            DidMethod::Plc => {
                let mut url = self.config.plc_directory.clone();
                if let Ok(mut segments) = url.path_segments_mut() {
                    segments.pop_if_empty().push(did.as_str());
                }
                Some(url)
            }
            DidMethod::Web => did.web_host().and_then(|host| {
                let local = host.starts_with("localhost") && self.config.mode == Mode::Development;
                let scheme = if local { "http" } else { "https" };
                Url::parse(&format!("{scheme}://{host}/.well-known/did.json")).ok()
            }),
        };
        let failed = match url {
            Some(url) => self.fetch(
                id,
                &url,
                "application/did+ld+json, application/json",
                MAX_DID_DOCUMENT_LEN,
                0,
            ),
            None => Some(Outcome::NotFound(String::new())),
        };
        if failed.is_some() {
            self.finish(Err(IdentityError::DidNotFound {
                did,
                detail: "its URL cannot be requested".into(),
            }));
            return State::Finished;
        }
        State::Document { did, id, typed }
    }

    /// Queues a GET; an outcome right away if the URL cannot be a request.
    fn fetch(
        &mut self,
        id: RequestId,
        url: &Url,
        accept: &'static str,
        max_body_len: usize,
        max_redirects: u8,
    ) -> Option<Outcome> {
        let Some(request) = crate::transport::get(url, accept) else {
            return Some(Outcome::NotFound("the URL cannot be requested".into()));
        };
        let limits = FetchLimits {
            max_body_len,
            max_redirects,
        };
        self.queue.push_back(Action::Fetch(Fetch {
            id,
            request,
            limits,
        }));
        None
    }

    fn finish(&mut self, result: Result<ResolvedIdentity, IdentityError>) {
        self.state = State::Finished;
        self.queue
            .retain(|action| !matches!(action, Action::Fetch(_) | Action::LookupTxt(_)));
        self.queue.push_back(Action::Done(result));
    }

    /// Records an answer for a handle lookup and moves on if it decides.
    fn record(&mut self, id: RequestId, answer: impl FnOnce(HandleMethod, Mode) -> Outcome) {
        let mode = self.config.mode;
        let lookup = match &mut self.state {
            State::TypedHandle(lookup) | State::ClaimedHandle { lookup, .. } => lookup,
            State::Document { .. } | State::Finished => return,
        };
        let Some(attempt) = lookup
            .attempts
            .iter_mut()
            .find(|a| a.id == id && a.outcome.is_none())
        else {
            return;
        };
        attempt.outcome = Some(answer(attempt.method, mode));
        let Some(decision) = lookup.decide() else {
            return;
        };
        match std::mem::replace(&mut self.state, State::Finished) {
            State::TypedHandle(lookup) => match decision {
                Ok(did) => self.state = self.start_document(did, Some(lookup.handle)),
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
        self.queue.pop_front()
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
                self.record(id, |method, mode| match method {
                    HandleMethod::WellKnown => well_known_outcome(response, mode),
                    HandleMethod::ResolverService => resolver_outcome(response, mode),
                    HandleMethod::Dns => Outcome::NotFound("an HTTP answer to a DNS query".into()),
                });
            }
        }
    }

    fn handle_txt(&mut self, id: RequestId, answer: TxtAnswer) {
        self.record(id, |_, mode| dns_outcome(answer, mode));
    }
}

/// Reads `_atproto` TXT records: only `did=` records count; two different DIDs conflict.
fn dns_outcome(answer: TxtAnswer, mode: Mode) -> Outcome {
    let records = match answer {
        TxtAnswer::Records(records) => records,
        TxtAnswer::NoRecords => return Outcome::NotFound("no TXT record".into()),
        TxtAnswer::Failed(why) => return Outcome::NotFound(format!("lookup failed: {why}")),
    };
    let mut found: Option<Did> = None;
    for value in records.iter().filter_map(|r| r.strip_prefix("did=")) {
        let Ok(did) = Did::parse(value.trim(), mode) else {
            return Outcome::NotFound("the did= record is not a valid DID".into());
        };
        match &found {
            Some(existing) if *existing != did => return Outcome::Conflict,
            _ => found = Some(did),
        }
    }
    found.map_or_else(
        || Outcome::NotFound("no did= TXT record".into()),
        Outcome::Found,
    )
}

fn well_known_outcome(response: Result<Response, TransportError>, mode: Mode) -> Outcome {
    let response = match response {
        Ok(response) => response,
        Err(error) => return Outcome::NotFound(error.to_string()),
    };
    if !response.status().is_success() {
        return Outcome::NotFound(format!("HTTP {}", response.status().as_u16()));
    }
    let did = std::str::from_utf8(response.body())
        .ok()
        .and_then(|text| Did::parse(text.trim(), mode).ok());
    did.map_or_else(
        || Outcome::NotFound("the file does not hold a valid DID".into()),
        Outcome::Found,
    )
}

fn resolver_outcome(response: Result<Response, TransportError>, mode: Mode) -> Outcome {
    let response = match response {
        Ok(response) => response,
        Err(error) => return Outcome::NotFound(error.to_string()),
    };
    if response.status() != http::StatusCode::OK {
        return Outcome::NotFound(format!("HTTP {}", response.status().as_u16()));
    }
    let did = crate::json::parse_object(response.body())
        .ok()
        .and_then(|map| {
            map.get("did")
                .and_then(Value::as_str)
                .and_then(|d| Did::parse(d, mode).ok())
        });
    did.map_or_else(
        || Outcome::NotFound("the answer holds no valid DID".into()),
        Outcome::Found,
    )
}

#[cfg(test)]
mod tests;
