//! Runs [`atlogin_core`]'s machines on tokio: identity resolution and the whole
//! atproto OAuth login, each one `await` away.
//!
//! The adapter holds no protocol logic. It performs the HTTP requests and DNS TXT
//! lookups the machines hand out, with a hardened client:
//!
//! - https only, unless [`DriverConfig::policy`] allows http (development);
//! - every address a name resolves to is checked against the policy (no private,
//!   loopback, link-local, unique-local, multicast or unspecified address unless
//!   allowed), and the connection goes to the checked addresses only: the check
//!   sits in the resolver reqwest connects with, so no second DNS answer can
//!   slip in between; IP-literal URLs are checked before connecting;
//! - redirects only where the machine allows them, each hop checked again;
//! - bodies read chunk by chunk and cut off at the cap;
//! - connect and total timeouts, and a `User-Agent` naming atlogin.
//!
//! HTTP goes through `reqwest` with rustls (the *ring* provider, which core's RS256
//! already uses) and the webpki root store; DNS through `hickory-resolver`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use atlogin_core::client::{CallbackParams, ClientConfig, LoginRequest};
//! use atlogin_core::identity::Mode;
//! use atlogin_tokio::{Driver, DriverConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let driver = Driver::new(DriverConfig::default())?;
//! let client = Arc::new(ClientConfig::loopback("http://127.0.0.1:9411/callback".parse()?)?);
//! let started = driver.start_login(LoginRequest::parse("alice.bsky.social", Mode::Production)?, client.clone()).await?;
//! println!("open {}", started.redirect_url);
//! // ... the browser comes back to the callback with a query string ...
//! # let query = "";
//! let verified = driver.complete_login(started.pending, &CallbackParams::parse(query)?, client).await?;
//! println!("{} is {:?} at {}", verified.did, verified.handle, verified.pds);
//! # Ok(()) }
//! ```

mod fetch;

pub use atlogin_driver::{DriverConfig, DriverError, Transport};
pub use fetch::Fetcher;

/// Drives core machines on tokio: [`Driver::new`](atlogin_driver::Driver::new)
/// with a [`DriverConfig`], then one `await` per flow (`resolve_identity`,
/// `start_login`, `complete_login`, `refresh`, `revoke`, `fetch_profile`,
/// `fetch_email`; see [`atlogin_driver::Driver`]).
pub type Driver = atlogin_driver::Driver<Fetcher>;
