//! Finding the authorization server behind an identity: resolve it, then discover.
//!
//! Used twice in a login: at the start, for what the person typed, and after the
//! token exchange, to prove that `sub` really is served by the issuer.

use url::Url;

use super::error::ClientError;
use crate::discovery::{AuthServerDiscovery, AuthorizationServer};
use crate::identity::{AtIdentifier, IdentityConfig, IdentityResolver, ResolvedIdentity};
use crate::transport::{
    Action, Machine, Outbox, RequestId, Response, TransportError, TxtAnswer, split,
};

/// What was found.
#[derive(Debug)]
pub(crate) struct Found {
    /// The identity, when the search began from a handle or DID.
    pub(crate) identity: Option<ResolvedIdentity>,
    /// Its authorization server.
    pub(crate) server: AuthorizationServer,
}

#[derive(Debug)]
enum Stage {
    Identity(Box<IdentityResolver>),
    Discovery {
        machine: Box<AuthServerDiscovery>,
        identity: Option<ResolvedIdentity>,
    },
    Finished,
}

/// Identity resolution followed by discovery, as one [`Machine`].
#[derive(Debug)]
pub(crate) struct FindIssuer {
    identity_config: IdentityConfig,
    stage: Stage,
    outbox: Outbox<Result<Found, ClientError>>,
}

impl FindIssuer {
    /// From a handle or DID; request ids start after `last_id`.
    pub(crate) fn for_identifier(
        identifier: AtIdentifier,
        config: &IdentityConfig,
        last_id: u32,
    ) -> Self {
        let machine = IdentityResolver::after(identifier, config.clone(), last_id);
        Self {
            identity_config: config.clone(),
            stage: Stage::Identity(Box::new(machine)),
            outbox: Outbox::new(),
        }
    }

    /// From a PDS or entryway URL a person typed.
    pub(crate) fn for_service(
        url: &Url,
        config: &IdentityConfig,
        last_id: u32,
    ) -> Result<Self, ClientError> {
        let machine = AuthServerDiscovery::from_service_url_after(url, config.mode, last_id)?;
        let stage = Stage::Discovery {
            machine: Box::new(machine),
            identity: None,
        };
        Ok(Self {
            identity_config: config.clone(),
            stage,
            outbox: Outbox::new(),
        })
    }

    /// The last request id handed out, so that the next stage continues after it.
    pub(crate) fn last_request_id(&self) -> u32 {
        match &self.stage {
            Stage::Identity(machine) => machine.last_request_id(),
            Stage::Discovery { machine, .. } => machine.last_request_id(),
            Stage::Finished => self.outbox.last_id(),
        }
    }

    fn finish(&mut self, last_id: u32, result: Result<Found, ClientError>) {
        self.stage = Stage::Finished;
        self.outbox = Outbox::after(last_id);
        self.outbox.finish(result);
    }
}

impl Machine for FindIssuer {
    type Output = Result<Found, ClientError>;

    fn poll(&mut self) -> Option<Action<Self::Output>> {
        loop {
            let last = self.last_request_id();
            match &mut self.stage {
                Stage::Identity(machine) => match split(machine.poll()?) {
                    Ok(action) => return Some(action),
                    Err(Ok(identity)) => {
                        let mode = self.identity_config.mode;
                        match AuthServerDiscovery::from_pds_after(&identity.pds, mode, last) {
                            Ok(machine) => {
                                let identity = Some(identity);
                                self.stage = Stage::Discovery {
                                    machine: Box::new(machine),
                                    identity,
                                };
                            }
                            Err(error) => self.finish(last, Err(error.into())),
                        }
                    }
                    Err(Err(error)) => self.finish(last, Err(error.into())),
                },
                Stage::Discovery { machine, identity } => match split(machine.poll()?) {
                    Ok(action) => return Some(action),
                    Err(result) => {
                        let identity = identity.take();
                        let result = result
                            .map(|server| Found { identity, server })
                            .map_err(Into::into);
                        self.finish(last, result);
                    }
                },
                Stage::Finished => return self.outbox.pop(),
            }
        }
    }

    fn handle_response(&mut self, id: RequestId, response: Result<Response, TransportError>) {
        match &mut self.stage {
            Stage::Identity(machine) => machine.handle_response(id, response),
            Stage::Discovery { machine, .. } => machine.handle_response(id, response),
            Stage::Finished => {}
        }
    }

    fn handle_txt(&mut self, id: RequestId, answer: TxtAnswer) {
        if let Stage::Identity(machine) = &mut self.stage {
            machine.handle_txt(id, answer);
        }
    }

    fn handle_time(&mut self, _: crate::time::UnixTime) {}
}
