//! The conformance suite against atlogin-async-std, twice: on async-std's
//! executor, and under smol's `block_on` (async-io's, which smol re-exports), the
//! way a smol application would call it.

use std::sync::Arc;

use atlogin_async_std::{Driver, DriverConfig};
use atlogin_conformance::{Adapter, Setup, conformance_tests};
use atlogin_core::client::{
    CallbackParams, ClientConfig, ClientError, LoginRequest, LoginStarted, PendingLogin,
    VerifiedLogin,
};
use atlogin_core::identity::{AtIdentifier, IdentityConfig, IdentityError, ResolvedIdentity};
use atlogin_core::transport::{Fetch, Response, TransportError, TxtAnswer};

/// The adapter, polled by one executor or the other.
#[derive(Clone, Copy)]
enum AsyncStd {
    AsyncStd,
    Smol,
}

impl AsyncStd {
    fn block_on<F: Future>(self, future: F) -> F::Output {
        match self {
            Self::AsyncStd => async_std::task::block_on(future),
            Self::Smol => async_io::block_on(future),
        }
    }
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

impl Adapter for AsyncStd {
    fn fetch(&self, setup: &Setup, fetch: Fetch) -> Result<Response, TransportError> {
        self.block_on(async { driver(setup).fetcher().fetch(fetch).await })
    }

    fn lookup_txt(&self, setup: &Setup, name: &str) -> TxtAnswer {
        self.block_on(async { driver(setup).fetcher().lookup_txt(name).await })
    }

    fn resolve_identity(
        &self,
        setup: &Setup,
        identifier: AtIdentifier,
        config: &IdentityConfig,
    ) -> Result<ResolvedIdentity, IdentityError> {
        self.block_on(async { driver(setup).resolve_identity(identifier, config).await })
    }

    fn start_login(
        &self,
        setup: &Setup,
        request: LoginRequest,
        client: Arc<ClientConfig>,
    ) -> Result<LoginStarted, ClientError> {
        self.block_on(async { driver(setup).start_login(request, client).await })
    }

    fn complete_login(
        &self,
        setup: &Setup,
        pending: PendingLogin,
        callback: &CallbackParams,
        client: Arc<ClientConfig>,
    ) -> Result<VerifiedLogin, ClientError> {
        self.block_on(async {
            driver(setup)
                .complete_login(pending, callback, client)
                .await
        })
    }
}

mod on_async_std {
    use super::*;
    conformance_tests!(AsyncStd::AsyncStd);
}

mod on_smol {
    use super::*;
    conformance_tests!(AsyncStd::Smol);
}
