//! Tests only: see `tests/`. Each test feeds atlogin's output to a library written
//! by someone else for the other side of the protocol.
