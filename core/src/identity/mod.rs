//! AT Protocol identity: handle and DID syntax, DID documents, and resolution of
//! a typed handle or DID to a verified DID, handle and PDS.

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
