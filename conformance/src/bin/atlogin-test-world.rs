//! Runs the conformance world until killed, for the examples' end-to-end run.
//!
//! Prints one line, `dns=<ip:port> plc=<url> pds=<url>`, once every server
//! listens.
#![expect(clippy::print_stdout, reason = "the line is the interface")]

use std::io::Write;

use atlogin_conformance::World;

fn main() {
    let world = World::start();
    println!(
        "dns={} plc={} pds={}",
        world.dns,
        world.url("plc.test", ""),
        world.url("pds.test", "")
    );
    // The script reading the line waits for it; flush before parking.
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
