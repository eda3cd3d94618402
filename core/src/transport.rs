//! What a sans-IO machine asks of the outside world, and how the answers come back.
//!
//! A machine is driven in a loop:
//!
//! 1. call [`Machine::poll`] until it returns `None`, carrying out every
//!    [`Action::Fetch`] and [`Action::LookupTxt`] it hands out (they are
//!    independent of each other and may run at the same time);
//! 2. feed each answer back with [`Machine::handle_response`] or
//!    [`Machine::handle_txt`], in any order, naming the [`RequestId`] it answers;
//! 3. repeat until `poll` returns [`Action::Done`]. After that it returns `None`
//!    and late answers are ignored.
//!
//! The caller performs fetches with the hardened client: it honours the
//! [`FetchLimits`] of each fetch (body size cap, redirect budget), refuses
//! private and loopback destinations unless configured otherwise, and times out.
//! Protocol rules stay here in core: status codes, content types and bodies are
//! judged by the machine, not by the caller.

use std::collections::VecDeque;
use std::fmt;

/// Names one outstanding request of one machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(pub(crate) u32);

/// An HTTP request to carry out.
#[derive(Debug)]
#[non_exhaustive]
pub struct Fetch {
    /// Which answer this is; pass it back with the response.
    pub id: RequestId,
    /// The request. Bodies are small and complete.
    pub request: http::Request<Vec<u8>>,
    /// What the response may be.
    pub limits: FetchLimits,
}

impl Fetch {
    /// A fetch built outside a machine, for testing a runtime adapter's client.
    #[must_use]
    pub fn new(id: RequestId, request: http::Request<Vec<u8>>, limits: FetchLimits) -> Self {
        Self {
            id,
            request,
            limits,
        }
    }
}

impl RequestId {
    /// An id for a fetch built outside a machine.
    #[must_use]
    pub fn new(id: u32) -> Self {
        Self(id)
    }
}

/// Limits the caller's HTTP client enforces for one fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchLimits {
    /// The largest response body accepted, in bytes; a longer one is a
    /// [`TransportError::BodyTooLarge`].
    pub max_body_len: usize,
    /// How many redirects to follow; `0` means a redirect is handed back as the
    /// response.
    pub max_redirects: u8,
}

impl FetchLimits {
    /// Limits with this body cap and redirect budget.
    #[must_use]
    pub fn new(max_body_len: usize, max_redirects: u8) -> Self {
        Self {
            max_body_len,
            max_redirects,
        }
    }
}

/// A DNS TXT lookup to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TxtLookup {
    /// Which answer this is; pass it back with the records.
    pub id: RequestId,
    /// The fully qualified name to look up, without a trailing dot.
    pub name: String,
}

/// The outcome of a DNS TXT lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxtAnswer {
    /// The lookup failed (timeout, SERVFAIL, no resolver).
    Failed(String),
    /// The name has no TXT records (NXDOMAIN or no data).
    NoRecords,
    /// The TXT records, each with its character-strings joined.
    Records(Vec<String>),
}

/// Why an HTTP request produced no response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The body was larger than [`FetchLimits::max_body_len`].
    #[error("the response was larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The destination is not allowed (private address, plain http, bad port).
    #[error("the destination is not allowed: {0}")]
    Blocked(String),
    /// Connecting failed: no address, refused, TLS failed.
    #[error("could not connect: {0}")]
    Connect(String),
    /// More redirects than [`FetchLimits::max_redirects`].
    #[error("too many redirects")]
    TooManyRedirects,
    /// No complete response in time.
    #[error("timed out")]
    Timeout,
}

/// An HTTP response as the machine needs it.
pub type Response = http::Response<Vec<u8>>;

/// What a machine needs next.
#[derive(Debug)]
#[must_use]
#[expect(
    clippy::large_enum_variant,
    reason = "actions are few and short-lived; boxing would allocate for every request"
)]
pub enum Action<T> {
    /// The machine has finished with this result.
    Done(T),
    /// Carry out this HTTP request.
    Fetch(Fetch),
    /// Look up these TXT records.
    LookupTxt(TxtLookup),
}

/// A protocol flow driven from outside; see the [module docs](self) for the loop.
pub trait Machine {
    /// The result the flow ends with.
    type Output;

    /// The next thing to do, or `None` while waiting for answers.
    fn poll(&mut self) -> Option<Action<Self::Output>>;

    /// The answer to a [`Fetch`]: a response, or why there is none.
    fn handle_response(&mut self, id: RequestId, response: Result<Response, TransportError>);

    /// The answer to a [`TxtLookup`].
    fn handle_txt(&mut self, id: RequestId, answer: TxtAnswer);

    /// The current time, given before each answer by callers that have a clock.
    /// Machines that sign proofs or assertions stamp them with it; others ignore it.
    fn handle_time(&mut self, now: crate::time::UnixTime) {
        let _ = now;
    }
}

/// The actions a machine has queued, and the request ids it hands out.
#[derive(Debug)]
pub(crate) struct Outbox<T> {
    last_id: u32,
    queue: VecDeque<Action<T>>,
}

impl<T> Outbox<T> {
    pub(crate) fn new() -> Self {
        Self::after(0)
    }

    /// An outbox whose ids continue after `last_id`, so that a machine started
    /// inside another never reuses an id an earlier stage handed out.
    pub(crate) fn after(last_id: u32) -> Self {
        Self {
            last_id,
            queue: VecDeque::new(),
        }
    }

    /// The last id handed out.
    pub(crate) fn last_id(&self) -> u32 {
        self.last_id
    }

    fn next_id(&mut self) -> RequestId {
        self.last_id = self.last_id.wrapping_add(1);
        RequestId(self.last_id)
    }

    /// Queues a GET; `None` when `url` cannot be a request target.
    pub(crate) fn fetch(
        &mut self,
        url: &url::Url,
        accept: &'static str,
        limits: FetchLimits,
    ) -> Option<RequestId> {
        let request = get(url, accept)?;
        let id = self.next_id();
        self.queue.push_back(Action::Fetch(Fetch {
            id,
            request,
            limits,
        }));
        Some(id)
    }

    /// Queues a request built elsewhere.
    pub(crate) fn push_fetch(
        &mut self,
        request: http::Request<Vec<u8>>,
        limits: FetchLimits,
    ) -> RequestId {
        let id = self.next_id();
        self.queue.push_back(Action::Fetch(Fetch {
            id,
            request,
            limits,
        }));
        id
    }

    /// Queues a TXT lookup.
    pub(crate) fn lookup_txt(&mut self, name: String) -> RequestId {
        let id = self.next_id();
        self.queue
            .push_back(Action::LookupTxt(TxtLookup { id, name }));
        id
    }

    /// Drops queued requests the caller has not taken yet, when `unneeded` says so.
    pub(crate) fn cancel(&mut self, unneeded: impl Fn(RequestId) -> bool) {
        self.queue.retain(|action| match action {
            Action::Fetch(fetch) => !unneeded(fetch.id),
            Action::LookupTxt(lookup) => !unneeded(lookup.id),
            Action::Done(_) => true,
        });
    }

    /// Queues the result, dropping requests not yet taken: they are no longer needed.
    pub(crate) fn finish(&mut self, result: T) {
        self.cancel(|_| true);
        self.queue.push_back(Action::Done(result));
    }

    pub(crate) fn pop(&mut self) -> Option<Action<T>> {
        self.queue.pop_front()
    }
}

/// Splits an inner machine's action: a request to hand on, or its result.
pub(crate) fn split<T, U>(action: Action<T>) -> Result<Action<U>, T> {
    match action {
        Action::Done(result) => Err(result),
        Action::Fetch(fetch) => Ok(Action::Fetch(fetch)),
        Action::LookupTxt(lookup) => Ok(Action::LookupTxt(lookup)),
    }
}

/// A value from a remote document, fit for an error message: at most 200
/// characters, control characters escaped.
pub(crate) fn excerpt(text: &str) -> String {
    text.chars()
        .take(200)
        .flat_map(char::escape_debug)
        .collect()
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Whether a `Content-Type` header names `application/json` (parameters ignored).
pub(crate) fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// A GET request with an `Accept` header; `None` if `url` is no valid request target.
fn get(url: &url::Url, accept: &'static str) -> Option<http::Request<Vec<u8>>> {
    let uri: http::Uri = url.as_str().parse().ok()?;
    let mut request = http::Request::new(Vec::new());
    *request.uri_mut() = uri;
    request
        .headers_mut()
        .insert(http::header::ACCEPT, http::HeaderValue::from_static(accept));
    Some(request)
}
