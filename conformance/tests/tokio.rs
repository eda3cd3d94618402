//! The conformance suite against atlogin-tokio.

use atlogin_conformance::{BlockOn, DriverAdapter, conformance_tests};
use atlogin_tokio::Fetcher;

/// A fresh current-thread runtime per call.
struct Tokio;

impl BlockOn for Tokio {
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(future)
    }
}

conformance_tests!(DriverAdapter::<Fetcher, _>::new(Tokio));
