//! The conformance suite against atlogin-async-std, twice: on async-std's
//! executor, and under smol's `block_on` (async-io's, which smol re-exports), the
//! way a smol application would call it.

use atlogin_async_std::Fetcher;
use atlogin_conformance::{BlockOn, DriverAdapter, conformance_tests};

/// async-std's executor.
struct AsyncStd;

impl BlockOn for AsyncStd {
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        async_std::task::block_on(future)
    }
}

/// What `smol::block_on` is.
struct Smol;

impl BlockOn for Smol {
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        async_io::block_on(future)
    }
}

mod on_async_std {
    use super::*;
    conformance_tests!(DriverAdapter::<Fetcher, _>::new(AsyncStd));
}

mod on_smol {
    use super::*;
    conformance_tests!(DriverAdapter::<Fetcher, _>::new(Smol));
}
