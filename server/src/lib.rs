//! The atlogin server: the OpenID Connect provider that Matrix Authentication
//! Service or Synapse use upstream, logging people in at their own PDS.
//!
//! [`serve`] assembles and runs it from [`settings`] (read from the
//! [`config`] file); [`app`] is the HTTP service, [`store`] what it keeps
//! between requests, [`keys`] its signing keys, [`metrics`] what it counts, [`logout`] how relying parties learn
//! that a session ended, [`doctor`] how a deployment looks from outside.

pub mod app;
pub mod config;
pub mod crypto;
pub mod doctor;
pub mod keys;
pub mod logout;
pub mod metrics;
pub mod serve;
pub mod settings;
pub mod store;
