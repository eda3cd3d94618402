//! AT Protocol identity: handle and DID syntax, DID documents, and resolution of
//! a typed handle or DID to a verified DID, handle and PDS. The resolver always
//! resolves afresh; [`IdentityCache`] keeps answers for less than ten minutes for
//! callers that want to reuse them, as the atproto OAuth profile asks.
//!
//! # Not supported
//!
//! - `did:web` with a path, and DID methods other than `plc` and `web`.
//! - In production, servers on ports other than 443: the specs allow a PDS on
//!   another port, atlogin does not outside development.

pub mod cache;
pub mod document;
pub mod resolver;
pub mod syntax;

pub use cache::IdentityCache;
pub use document::{DidDocument, DidDocumentError};
pub use resolver::{
    HandleMethod, HandleNotFound, IdentityConfig, IdentityError, IdentityResolver, ResolvedIdentity,
};
pub use syntax::{
    AtIdentifier, AtIdentifierError, Did, DidError, DidMethod, Handle, HandleError, Mode,
};
