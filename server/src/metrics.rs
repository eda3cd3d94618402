//! The counters and histograms served at `/metrics`, in the Prometheus text
//! format.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A `reason` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// Why a login failed, as a short fixed word.
    pub reason: &'static str,
}

/// A `step` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Step {
    /// Which upstream step: `start`, `complete`, `profile`, `email`, `revoke`.
    pub step: &'static str,
}

/// An `outcome` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// `ok`, or the OAuth error code.
    pub outcome: &'static str,
}

/// Everything measured.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Sign-ins started at a PDS.
    pub logins_started: Counter,
    /// Sign-ins that ended with a code for the relying party.
    pub logins_completed: Counter,
    /// Sign-ins that failed, by reason.
    pub logins_failed: Family<Reason, Counter>,
    /// Time spent waiting on PDSes and authorization servers, by step.
    pub upstream_seconds: Family<Step, Histogram>,
    /// Token endpoint requests, by outcome.
    pub token_requests: Family<Outcome, Counter>,
}

impl Metrics {
    /// Everything at zero.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("atlogin");
        let logins_started = Counter::default();
        let logins_completed = Counter::default();
        let logins_failed = Family::<Reason, Counter>::default();
        let upstream_seconds = Family::<Step, Histogram>::new_with_constructor(|| {
            // 10 ms to about 41 s.
            Histogram::new(exponential_buckets(0.01, 2.0, 13))
        });
        let token_requests = Family::<Outcome, Counter>::default();
        registry.register(
            "logins_started",
            "Sign-ins sent on to a PDS",
            logins_started.clone(),
        );
        registry.register(
            "logins_completed",
            "Sign-ins that ended with a code for the relying party",
            logins_completed.clone(),
        );
        registry.register(
            "logins_failed",
            "Sign-ins that failed, by reason",
            logins_failed.clone(),
        );
        registry.register(
            "upstream_request_seconds",
            "Time spent on PDSes and authorization servers, by step",
            upstream_seconds.clone(),
        );
        registry.register(
            "token_requests",
            "Token endpoint requests, by outcome",
            token_requests.clone(),
        );
        Self {
            registry,
            logins_started,
            logins_completed,
            logins_failed,
            upstream_seconds,
            token_requests,
        }
    }

    /// Counts a failed sign-in.
    pub fn login_failed(&self, reason: &'static str) {
        self.logins_failed.get_or_create(&Reason { reason }).inc();
    }

    /// Records how long an upstream step took.
    pub fn upstream(&self, step: &'static str, started: std::time::Instant) {
        self.upstream_seconds
            .get_or_create(&Step { step })
            .observe(started.elapsed().as_secs_f64());
    }

    /// Everything, in the text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
