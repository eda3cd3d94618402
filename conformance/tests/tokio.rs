//! The conformance suite against atlogin-tokio.

use std::sync::Arc;

use atlogin_conformance::{Adapter, Setup, conformance_tests};
use atlogin_core::client::{
    CallbackParams, ClientConfig, ClientError, LoginRequest, LoginStarted, PendingLogin,
    VerifiedLogin,
};
use atlogin_core::identity::{AtIdentifier, IdentityConfig, IdentityError, ResolvedIdentity};
use atlogin_core::transport::{Fetch, Response, TransportError, TxtAnswer};
use atlogin_tokio::{Driver, DriverConfig};

struct Tokio;

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

fn driver(setup: &Setup) -> Driver {
    let mut config = DriverConfig::default()
        .with_policy(setup.policy.clone())
        .with_nameservers(vec![setup.nameserver])
        .with_timeouts(setup.connect_timeout, setup.total_timeout)
        .with_max_body_len(setup.max_body_len);
    for root in &setup.root_certificates {
        config = config.with_root_certificate(root.clone());
    }
    Driver::new(config).expect("driver")
}

impl Adapter for Tokio {
    fn fetch(&self, setup: &Setup, fetch: Fetch) -> Result<Response, TransportError> {
        block_on(async { driver(setup).fetcher().fetch(fetch).await })
    }

    fn lookup_txt(&self, setup: &Setup, name: &str) -> TxtAnswer {
        block_on(async { driver(setup).fetcher().lookup_txt(name).await })
    }

    fn resolve_identity(
        &self,
        setup: &Setup,
        identifier: AtIdentifier,
        config: &IdentityConfig,
    ) -> Result<ResolvedIdentity, IdentityError> {
        block_on(async { driver(setup).resolve_identity(identifier, config).await })
    }

    fn start_login(
        &self,
        setup: &Setup,
        request: LoginRequest,
        client: Arc<ClientConfig>,
    ) -> Result<LoginStarted, ClientError> {
        block_on(async { driver(setup).start_login(request, client).await })
    }

    fn complete_login(
        &self,
        setup: &Setup,
        pending: PendingLogin,
        callback: &CallbackParams,
        client: Arc<ClientConfig>,
    ) -> Result<VerifiedLogin, ClientError> {
        block_on(async {
            driver(setup)
                .complete_login(pending, callback, client)
                .await
        })
    }
}

conformance_tests!(Tokio);
