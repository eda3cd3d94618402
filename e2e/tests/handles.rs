//! Scenario 5 and the refusals of scenario 4, with atlogin resolving handles
//! itself as in production: DNS TXT records from Debian's dnsmasq, and the
//! HTTPS well-known file of a handle host behind nginx with a test CA's
//! certificate, each followed by the check that the DID names the handle
//! back. Then what atlogin tells a person when a handle names nobody, names
//! a DID that does not name it back, or leads to a PDS that is down; and
//! what it does with a tampered `state` and a replayed code.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::net::SocketAddr;

use atlogin_e2e::dns::Dnsmasq;
use atlogin_e2e::front::{Nginx, TestCa, free_loopback_address};
use atlogin_e2e::runtime;
use atlogin_e2e::{Account, Browser, Page, RealWorld, atlogin_settings, hidden, http_client, rp};
use atlogin_server::serve::{self, Server};
use url::Url;

/// A handle whose TXT record names Alice's DID, which does not name it.
const IMPOSTOR: &str = "mallory.test";

struct Stack {
    server: Server,
    dns: Dnsmasq,
    handle_host: Nginx,
    world: RealWorld,
    _dirs: (TestCa, tempfile::TempDir),
}

/// The world; alice.test's well-known file served over TLS by nginx in
/// front of the PDS; bob.test, carol.test (PDS down) and the impostor in
/// dnsmasq; atlogin using both, with no `handle_resolver`.
async fn stack() -> Stack {
    let world = RealWorld::start();
    let ca = TestCa::with_names(&["alice.test"]);
    let front = free_loopback_address(1);
    let pds = Url::parse(&world.state.pds_url).unwrap();
    let pds_address = SocketAddr::from(([127, 0, 0, 1], pds.port().unwrap()));
    let handle_host = Nginx::start_at(&ca, front, "alice.test", &[pds_address]);
    let txt = |did: &str| format!("did={did}");
    let (bob, carol, alice) = (
        txt(&world.account("bob.test").did),
        txt(&world.state.unreachable.did),
        txt(&world.account("alice.test").did),
    );
    let dns = Dnsmasq::start(
        &[
            ("_atproto.bob.test", &bob),
            ("_atproto.carol.test", &carol),
            (&format!("_atproto.{IMPOSTOR}"), &alice),
        ],
        &[("alice.test", front)],
    );
    let state = tempfile::tempdir().unwrap();
    let mut settings = atlogin_settings(&world, state.path());
    settings.upstream.handle_resolver = None;
    settings.upstream.nameservers = vec![dns.address];
    settings.upstream.ca_certificates = vec![ca.ca_pem()];
    settings.clients = vec![rp::registered()];
    let server = serve::start(&settings, std::future::pending())
        .await
        .unwrap();
    Stack {
        server,
        dns,
        handle_host,
        world,
        _dirs: (ca, state),
    }
}

/// A whole sign-in as `account`; the ID token's claims.
async fn sign_in(stack: &Stack, account: &Account) -> serde_json::Value {
    let base = format!("http://{}", stack.server.address);
    let mut browser = Browser::new();
    let pds = browser
        .through_atlogin_form(&rp::authorize_url(&base, "s"), &account.handle)
        .await;
    let callback = browser
        .sign_in_at_pds(&pds, &account.handle, &account.password, true)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", stack.world.log()));
    let back = rp::answer(&browser.get(&callback).await.location());
    let (status, tokens) = rp::redeem(&http_client(), &base, &back["code"]).await;
    assert_eq!(status, 200, "{tokens}");
    let payload = tokens["id_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    serde_json::from_slice(&atlogin_core::base64url::decode(&payload).unwrap()).unwrap()
}

#[test]
fn a_handle_found_by_its_dns_txt_record_signs_in() {
    let rt = runtime();
    rt.block_on(async {
        let stack = stack().await;
        let bob = stack.world.account("bob.test").clone();
        let claims = sign_in(&stack, &bob).await;
        assert_eq!(claims["sub"], bob.did.as_str());
        assert_eq!(claims["preferred_username"], "bob.test");
        let queries = stack.dns.log();
        assert!(
            queries.contains("query[TXT] _atproto.bob.test"),
            "{queries}"
        );
        stack.server.stop().await.unwrap();
    });
}

#[test]
fn a_handle_found_by_its_https_well_known_file_signs_in() {
    let rt = runtime();
    rt.block_on(async {
        let stack = stack().await;
        let alice = stack.world.account("alice.test").clone();
        let claims = sign_in(&stack, &alice).await;
        assert_eq!(claims["sub"], alice.did.as_str());
        assert_eq!(claims["preferred_username"], "alice.test");
        // The answer came from the handle's host, over TLS.
        let served = stack.handle_host.access_log();
        assert!(
            served
                .lines()
                .any(|l| l.ends_with(" 200 GET /.well-known/atproto-did")),
            "{served}"
        );
        stack.server.stop().await.unwrap();
    });
}

/// atlogin's form at `base`, submitted with `handle`.
async fn submit(browser: &mut Browser, base: &str, handle: &str) -> Page {
    let form = browser.get(&rp::authorize_url(base, "s")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    browser
        .post_form(
            &format!("{base}/authorize"),
            &[
                ("request", &hidden(&form, "request")),
                ("csrf", &hidden(&form, "csrf")),
                ("handle", handle),
            ],
        )
        .await
}

#[test]
fn refusals_say_what_went_wrong() {
    let rt = runtime();
    rt.block_on(async {
        let stack = stack().await;
        let base = format!("http://{}", stack.server.address);
        let mut browser = Browser::new();

        let nobody = submit(&mut browser, &base, "nobody.test").await;
        assert_eq!(nobody.status, 400, "{}", nobody.body);
        let said = nobody.alert().unwrap();
        assert!(
            said.contains("No account was found for “nobody.test”"),
            "{said}"
        );

        // The TXT record names Alice's DID, whose document names alice.test.
        let impostor = submit(&mut browser, &base, IMPOSTOR).await;
        assert_eq!(impostor.status, 400, "{}", impostor.body);
        let said = impostor.alert().unwrap();
        assert!(
            said.contains("“mallory.test” is not a verified handle"),
            "{said}"
        );
        let alice = &stack.world.account("alice.test").did;
        assert!(said.contains(alice.as_str()), "{said}");
        assert!(!said.contains("No account was found"), "{said}");

        let down = submit(&mut browser, &base, "carol.test").await;
        assert_eq!(down.status, 502, "{}", down.body);
        let said = down.alert().unwrap();
        assert!(said.contains("could not be reached"), "{said}");
        assert!(said.contains("your PDS may be down"), "{said}");

        // A real sign-in whose callback comes back with its state altered
        // is refused; the untouched callback still completes, once.
        let bob = stack.world.account("bob.test").clone();
        let pds = browser
            .through_atlogin_form(&rp::authorize_url(&base, "s"), &bob.handle)
            .await;
        let callback = browser
            .sign_in_at_pds(&pds, &bob.handle, &bob.password, true)
            .await
            .unwrap();
        let mut tampered = Url::parse(&callback).unwrap();
        let pairs: Vec<(String, String)> = tampered
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "state" {
                    format!("{v}x")
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        tampered.query_pairs_mut().clear().extend_pairs(pairs);
        let refused = browser.get(tampered.as_str()).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(
            refused.alert().unwrap().contains("unknown"),
            "{}",
            refused.body
        );
        let done = browser.get(&callback).await;
        assert_eq!(done.status, 303, "{}", done.body);
        let back = rp::answer(&done.location());
        let http = http_client();
        let (first, _) = rp::redeem(&http, &base, &back["code"]).await;
        assert_eq!(first, 200);
        let (again, error) = rp::redeem(&http, &base, &back["code"]).await;
        assert_eq!(again, 400, "{error}");
        assert_eq!(error["error"], "invalid_grant");
        stack.server.stop().await.unwrap();
    });
}
