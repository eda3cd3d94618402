//! Each runtime adapter's login example program, run as a user runs it,
//! completes a loopback login at the real PDS: it prints the authorization URL,
//! the browser signs in there and comes back to the program's own listener,
//! and the program prints the verified DID, handle and PDS.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use atlogin_e2e::runtime;
use atlogin_e2e::{Browser, RealWorld};

/// The example binary, which `scripts/test` builds before this step.
fn example(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let path = target.join("debug/examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: cargo build -p atlogin-tokio --example login-tokio -p atlogin-async-std --example login-async-std",
        path.display()
    );
    path
}

#[test]
fn both_adapters_examples_log_in_at_a_real_pds() {
    let world = RealWorld::start();
    let alice = world.account("alice.test").clone();
    for name in ["login-tokio", "login-async-std"] {
        let mut child = Command::new(example(name))
            .args([alice.handle.as_str(), "--dev", "--port", "0"])
            .args(["--plc", &world.state.plc_url])
            .args(["--handle-resolver", &world.state.pds_url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut printed = String::new();
        let url = loop {
            let mut line = String::new();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "{name} printed no URL: {printed}"
            );
            printed.push_str(&line);
            if let Some(url) = line.trim().strip_prefix("http") {
                break format!("http{url}");
            }
        };
        assert!(
            url.starts_with(&format!("{}/oauth/authorize?", world.state.pds_url)),
            "{url}"
        );
        runtime().block_on(async {
            let mut browser = Browser::new();
            let callback = browser
                .sign_in_at_pds(&url, &alice.handle, &alice.password, true)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}\n{}", world.log()));
            let answer = browser.get(&callback).await;
            assert_eq!(answer.status, 200, "{name}: {}", answer.body);
        });
        let status = child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        printed.push_str(&rest);
        assert!(status.success(), "{name} failed: {printed}");
        assert!(
            printed.contains(&format!("did:    {}", alice.did)),
            "{name}: {printed}"
        );
        assert!(printed.contains("handle: alice.test"), "{name}: {printed}");
        assert!(
            printed.contains(&format!("pds:    {}", world.state.pds_url)),
            "{name}: {printed}"
        );
    }
}
