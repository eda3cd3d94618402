//! Runs [`atlogin_core`]'s machines on async-std — or smol, or any executor
//! that polls `futures-io` types: identity resolution and the whole atproto OAuth
//! login, each one `await` away.
//!
//! The adapter holds no protocol logic. It performs the HTTP requests and DNS TXT
//! lookups the machines hand out, with the same hardened client as
//! `atlogin-tokio`:
//!
//! - https only, unless [`DriverConfig::policy`] allows http (development);
//! - the host is resolved first, every address checked against the policy (no
//!   private, loopback, link-local, unique-local, multicast or unspecified
//!   address unless allowed), and the socket is opened to a checked address
//!   itself, so no second DNS answer can slip in; IP-literal URLs are checked the
//!   same way;
//! - redirects only where the machine allows them, each hop checked again;
//! - bodies read frame by frame and cut off at the cap;
//! - connect and total timeouts, and a `User-Agent` naming atlogin.
//!
//! # Why these parts
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052), so the adapter leans
//! on it as little as it can. Sockets and timers come from `async-io`, the reactor
//! async-std and smol both run on; HTTP/1.1 is `hyper`'s connection-level client
//! (no pool, no executor: the connection is driven inside the request's own
//! future) over `futures-rustls`, bridged by `smol-hyper`'s `futures-io` adapter;
//! DNS is `hickory-resolver` on a small runtime provider over `async-io`. The only
//! thing taken from async-std itself is its global executor, for the
//! background task hickory keeps per name-server connection. The same code
//! therefore runs unchanged under smol (`smol::block_on(driver.start_login(..))`):
//! async-std's executor starts its own threads when first used.
//!
//! ```no_run
//! use std::sync::Arc;
//! use atlogin_core::client::{CallbackParams, ClientConfig, LoginRequest};
//! use atlogin_core::identity::Mode;
//! use atlogin_async_std::{Driver, DriverConfig};
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

mod dns;
mod fetch;

pub use atlogin_driver::{DriverConfig, DriverError, Transport};
pub use fetch::Fetcher;

/// Drives core machines on async-std or smol:
/// [`Driver::new`](atlogin_driver::Driver::new) with a [`DriverConfig`], then one
/// `await` per flow (`resolve_identity`, `start_login`, `complete_login`,
/// `refresh`, `revoke`, `fetch_profile`, `fetch_email`; see
/// [`atlogin_driver::Driver`]).
pub type Driver = atlogin_driver::Driver<Fetcher>;
