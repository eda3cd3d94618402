//! Benchmarks live in `benches/`; this crate has no library code of its own.
//!
//! Run them with `cargo bench -p atlogin-benches`. Each JOSE operation is measured
//! next to the bare library call it wraps, so the cost of atlogin's own JSON,
//! base64 and checks shows as the difference.
