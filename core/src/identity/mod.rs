//! AT Protocol identity: handle and DID syntax, DID documents, and resolution of
//! a typed handle or DID to a verified DID, handle and PDS.
//!
//! # Not supported
//!
//! - Caching. Core resolves afresh every time; a caller that caches resolved
//!   identities should keep them for less than ten minutes during sign-in, as the
//!   atproto OAuth profile asks.
//! - `did:web` with a path, and DID methods other than `plc` and `web`.
//! - In production, servers on ports other than 443: the specs allow a PDS on
//!   another port, atlogin does not outside development.

pub mod document;
pub mod resolver;
pub mod syntax;

pub use document::{DidDocument, DidDocumentError};
pub use resolver::{
    HandleMethod, HandleNotFound, IdentityConfig, IdentityError, IdentityResolver, ResolvedIdentity,
};
pub use syntax::{
    AtIdentifier, AtIdentifierError, Did, DidError, DidMethod, Handle, HandleError, Mode,
};
