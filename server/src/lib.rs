//! The atlogin server: the OpenID Connect provider that Matrix Authentication
//! Service or Synapse use upstream, logging people in at their own PDS.
//!
//! Built so far: the key store ([`keys`]) and the configuration check
//! ([`config`]). The HTTP service, the storage
//! backends and the sign-in flow come next (see the project's issue 7).

pub mod config;
pub mod keys;
pub mod store;
