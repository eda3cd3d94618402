//! What atlogin reads from the person's PDS once they are signed in: the public
//! profile record (display name and avatar), and, when the email scope was
//! granted, the account's email and whether it is confirmed.

use std::sync::Arc;

use chacha20::ChaCha20Rng;
use http::header::{ACCEPT, AUTHORIZATION};
use http::{HeaderValue, Method};
use rand_core::{CryptoRng, SeedableRng};
use serde_json::Value;
use url::Url;

use super::config::ClientConfig;
use super::error::ClientError;
use super::flow::{LIMITS, ServerSession, server_error};
use crate::dpop::is_nonce_challenge;
use crate::identity::Did;
use crate::secret::AccessToken;
use crate::time::UnixTime;
use crate::transport::{
    Action, Machine, Outbox, RequestId, Response, TransportError, TxtAnswer, is_json,
};

/// The longest display name kept, in characters (the lexicon allows 64 graphemes).
const MAX_DISPLAY_NAME_CHARS: usize = 640;

/// The public profile, as far as atlogin uses it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Profile {
    /// `displayName`, trimmed; `None` when absent or empty.
    pub display_name: Option<String>,
    /// The avatar blob's URL on the PDS (`com.atproto.sync.getBlob`), if there is one.
    pub avatar: Option<Url>,
}

/// Reads `app.bsky.actor.profile/self` with `com.atproto.repo.getRecord`, no
/// authentication; drive it as a [`Machine`]. A missing record is an empty profile.
#[derive(Debug)]
pub struct FetchProfile {
    did: Did,
    pds: Url,
    url: Url,
    id: Option<RequestId>,
    outbox: Outbox<Result<Profile, ClientError>>,
}

impl FetchProfile {
    /// Starts reading the profile of `did` from its PDS.
    #[must_use]
    pub fn new(did: &Did, pds: &Url) -> Self {
        let mut url = pds.clone();
        url.set_path("/xrpc/com.atproto.repo.getRecord");
        url.query_pairs_mut()
            .clear()
            .append_pair("repo", did.as_str())
            .append_pair("collection", "app.bsky.actor.profile")
            .append_pair("rkey", "self");
        let mut outbox = Outbox::new();
        let id = outbox.fetch(&url, "application/json", LIMITS);
        let mut fetch = Self {
            did: did.clone(),
            pds: pds.clone(),
            url,
            id,
            outbox,
        };
        if fetch.id.is_none() {
            let url = fetch.url.to_string();
            fetch.outbox.finish(Err(ClientError::Transport {
                url,
                error: TransportError::Blocked("the URL cannot be requested".into()),
            }));
        }
        fetch
    }

    fn read(&self, response: &Response) -> Result<Profile, ClientError> {
        let status = response.status().as_u16();
        if status == 404 || (status == 400 && record_not_found(response.body())) {
            return Ok(Profile::default());
        }
        if status != 200 {
            return Err(server_error(
                "getRecord",
                &self.url,
                status,
                response.body(),
            ));
        }
        let invalid = |problem: &str| ClientError::InvalidResponse {
            endpoint: "getRecord",
            problem: problem.into(),
        };
        if !is_json(response) {
            return Err(invalid("it is not JSON"));
        }
        let body = crate::json::parse_object(response.body())
            .map_err(|_| invalid("it is not a JSON object"))?;
        let value = body
            .get("value")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("it has no record value"))?;
        let display_name = value
            .get("displayName")
            .and_then(Value::as_str)
            .map(|name| {
                name.trim()
                    .chars()
                    .take(MAX_DISPLAY_NAME_CHARS)
                    .collect::<String>()
            })
            .filter(|name| !name.is_empty());
        let avatar = value
            .get("avatar")
            .and_then(|blob| blob.get("ref"))
            .and_then(|reference| reference.get("$link"))
            .and_then(Value::as_str)
            .filter(|cid| is_cid(cid))
            .map(|cid| {
                let mut url = self.pds.clone();
                url.set_path("/xrpc/com.atproto.sync.getBlob");
                url.query_pairs_mut()
                    .clear()
                    .append_pair("did", self.did.as_str())
                    .append_pair("cid", cid);
                url
            });
        Ok(Profile {
            display_name,
            avatar,
        })
    }
}

/// A CID in atproto's string form: base32 multibase (`b…`), lower case, bounded.
fn is_cid(text: &str) -> bool {
    text.len() <= 128
        && text.strip_prefix('b').is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        })
}

fn record_not_found(body: &[u8]) -> bool {
    crate::json::parse_object(body)
        .is_ok_and(|map| map.get("error").and_then(Value::as_str) == Some("RecordNotFound"))
}

impl Machine for FetchProfile {
    type Output = Result<Profile, ClientError>;

    fn poll(&mut self) -> Option<Action<Self::Output>> {
        self.outbox.pop()
    }

    fn handle_response(&mut self, id: RequestId, response: Result<Response, TransportError>) {
        if self.id != Some(id) {
            return;
        }
        self.id = None;
        let result = match response {
            Ok(response) => self.read(&response),
            Err(error) => Err(ClientError::Transport {
                url: self.url.to_string(),
                error,
            }),
        };
        self.outbox.finish(result);
    }

    fn handle_txt(&mut self, _: RequestId, _: TxtAnswer) {}
}

/// The account's email, from `com.atproto.server.getSession`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccountEmail {
    /// The address, if the session shows one (it does with the email scope).
    pub email: Option<String>,
    /// Whether the PDS says the address is confirmed.
    pub confirmed: bool,
    /// The session with the PDS's nonce learned, for the next request.
    pub session: ServerSession,
}

/// Reads `com.atproto.server.getSession` with the DPoP-bound access token;
/// drive it as a [`Machine`].
#[derive(Debug)]
pub struct FetchEmail {
    config: Arc<ClientConfig>,
    session: ServerSession,
    token: AccessToken,
    did: Did,
    url: Url,
    now: UnixTime,
    rng: ChaCha20Rng,
    pending: Option<(RequestId, bool)>,
    outbox: Outbox<Result<AccountEmail, ClientError>>,
}

impl FetchEmail {
    /// Starts the read at the PDS of `did`.
    pub fn new<R: CryptoRng + ?Sized>(
        session: ServerSession,
        token: AccessToken,
        did: &Did,
        pds: &Url,
        config: Arc<ClientConfig>,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<Self, ClientError> {
        let mut url = pds.clone();
        url.set_path("/xrpc/com.atproto.server.getSession");
        url.set_query(None);
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut fetch = Self {
            config,
            session,
            token,
            did: did.clone(),
            url,
            now,
            rng: ChaCha20Rng::from_seed(seed),
            pending: None,
            outbox: Outbox::new(),
        };
        fetch.send(false)?;
        Ok(fetch)
    }

    fn send(&mut self, retried: bool) -> Result<(), ClientError> {
        let proof = self.session.dpop_header(
            &self.config,
            &Method::GET,
            &self.url,
            Some(&self.token),
            self.now,
            &mut self.rng,
        )?;
        let uri: http::Uri = self
            .url
            .as_str()
            .parse()
            .map_err(|_| ClientError::Signing("the URL is not a valid URI"))?;
        let mut request = http::Request::new(Vec::new());
        *request.method_mut() = Method::GET;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let authorization = HeaderValue::from_str(&format!("DPoP {}", self.token.secret()))
            .map_err(|_| ClientError::Signing("the access token is not a header value"))?;
        headers.insert(AUTHORIZATION, authorization);
        headers.insert("dpop", proof);
        self.pending = Some((self.outbox.push_fetch(request, LIMITS), retried));
        Ok(())
    }

    fn read(&self, response: &Response) -> Result<AccountEmail, ClientError> {
        let status = response.status().as_u16();
        if status != 200 {
            return Err(server_error(
                "getSession",
                &self.url,
                status,
                response.body(),
            ));
        }
        let invalid = |problem: &str| ClientError::InvalidResponse {
            endpoint: "getSession",
            problem: problem.into(),
        };
        if !is_json(response) {
            return Err(invalid("it is not JSON"));
        }
        let body = crate::json::parse_object(response.body())
            .map_err(|_| invalid("it is not a JSON object"))?;
        if body.get("did").and_then(Value::as_str) != Some(self.did.as_str()) {
            return Err(invalid("it is for another account"));
        }
        let email = match body.get("email") {
            None => None,
            Some(Value::String(email)) if email.len() <= 320 && email.contains('@') => {
                Some(email.clone())
            }
            Some(_) => return Err(invalid("email is malformed")),
        };
        let confirmed = match body.get("emailConfirmed") {
            None => false,
            Some(Value::Bool(confirmed)) => *confirmed,
            Some(_) => return Err(invalid("emailConfirmed is not a boolean")),
        };
        let confirmed = confirmed && email.is_some();
        Ok(AccountEmail {
            email,
            confirmed,
            session: self.session.clone(),
        })
    }
}

impl Machine for FetchEmail {
    type Output = Result<AccountEmail, ClientError>;

    fn poll(&mut self) -> Option<Action<Self::Output>> {
        self.outbox.pop()
    }

    fn handle_response(&mut self, id: RequestId, response: Result<Response, TransportError>) {
        let Some((expected, retried)) = self.pending else {
            return;
        };
        if expected != id {
            return;
        }
        self.pending = None;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                return self.outbox.finish(Err(ClientError::Transport {
                    url: self.url.to_string(),
                    error,
                }));
            }
        };
        let learned = self
            .session
            .dpop_nonces
            .handle_response(&self.url, response.headers())
            .unwrap_or(false);
        if is_nonce_challenge(response.status(), response.headers(), response.body())
            && learned
            && !retried
        {
            if let Err(error) = self.send(true) {
                self.outbox.finish(Err(error));
            }
            return;
        }
        let result = self.read(&response);
        self.outbox.finish(result);
    }

    fn handle_txt(&mut self, _: RequestId, _: TxtAnswer) {}

    fn handle_time(&mut self, now: UnixTime) {
        self.now = now;
    }
}
