//! atlogin as production runs it: a **confidential** atproto client
//! (`private_key_jwt`) published at an https URL under a host name, behind
//! Debian's nginx terminating TLS with a certificate from a CA the test makes.
//! The real PDS fetches atlogin's client metadata document through that
//! front, and a real Synapse, trusting the same CA, uses atlogin at its https
//! issuer.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::net::{IpAddr, Ipv4Addr};

use atlogin_e2e::front::{FRONT_SOURCE, HostsEntry, Nginx, TestCa};
use atlogin_e2e::runtime;
use atlogin_e2e::synapse::{CLIENT_SECRET, SERVER_NAME, Synapse};
use atlogin_e2e::{Browser, RealWorld, atlogin_settings};
use atlogin_server::serve;
use url::Url;

/// Scenario 2, confidential: Synapse → atlogin (https, behind nginx) → the
/// PDS, which accepts atlogin's client id only after fetching its metadata
/// through the front → back to Synapse, which verifies atlogin's ID token
/// over https and logs Alice in.
#[test]
fn synapse_signs_alice_in_through_atlogin_as_a_confidential_client_behind_nginx() {
    let ca = TestCa::new();
    let name = HostsEntry::add();
    let world = RealWorld::start_trusting(Some(&ca.ca_pem()));
    let alice = world.account("alice.test").clone();
    let state = tempfile::tempdir().unwrap();
    let synapse_dir = tempfile::tempdir().unwrap();
    let synapse_port = Synapse::port();
    let public = format!("https://{}", name.host);
    let rt = runtime();
    let server = rt.block_on(async {
        let mut settings = atlogin_settings(&world, state.path());
        settings.public_url = Some(Url::parse(&public).unwrap());
        settings.trusted_proxies = vec![FRONT_SOURCE];
        settings.clients = vec![Synapse::registered_client(synapse_port)];
        serve::start(&settings, std::future::pending())
            .await
            .unwrap()
    });
    assert_eq!(server.issuer, public);
    let nginx = Nginx::start(&ca, &name, &[server.address]);
    let synapse = Synapse::start_trusting(
        synapse_dir.path(),
        synapse_port,
        &server.issuer,
        CLIENT_SECRET,
        Some(&ca.bundle()),
    );

    rt.block_on(async {
        let mut browser = Browser::trusting(&[ca.ca_der()]);
        let back = synapse
            .sign_in(&mut browser, &server.issuer, &alice, &world)
            .await;
        let (user_id, display_name) = synapse.log_in_with(&back).await;
        assert_eq!(user_id, format!("@alice.test:{SERVER_NAME}"));
        assert_eq!(display_name, alice.display_name);
        server.stop().await.unwrap();
    });

    // The PDS knew atlogin by its published document: it fetched it, and
    // the keys it names, through the TLS front.
    let log = nginx.access_log();
    assert!(
        log.lines()
            .any(|l| l.ends_with(" 200 GET /oauth-client-metadata.json")),
        "{log}"
    );
    drop(synapse);
    drop(nginx);
}

/// `X-Forwarded-For` is believed from the front alone: behind nginx, each
/// browser is its own rate-limit bucket (so atlogin reads the header the
/// front writes), and a browser cannot leave its bucket by writing the header
/// itself (so atlogin does not read further than the front vouches).
#[test]
fn behind_the_front_the_token_limit_follows_the_browser_not_its_headers() {
    let ca = TestCa::new();
    let name = HostsEntry::add();
    let world = RealWorld::start();
    let state = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let mut settings = atlogin_settings(&world, state.path());
        settings.public_url = Some(Url::parse(&format!("https://{}", name.host)).unwrap());
        settings.trusted_proxies = vec![FRONT_SOURCE];
        settings.rate_limits.tokens_per_minute = 3;
        let server = serve::start(&settings, std::future::pending())
            .await
            .unwrap();
        let nginx = Nginx::start(&ca, &name, &[server.address]);
        let token = format!("{}/token", server.issuer);
        let from = |last: u8| {
            reqwest::Client::builder()
                .tls_backend_preconfigured(
                    atlogin_driver::hardening::tls_config(&[ca.ca_der()]).unwrap(),
                )
                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
                .no_proxy()
                .build()
                .unwrap()
        };
        let post = |client: reqwest::Client, spoof: String| {
            let token = token.clone();
            async move {
                client
                    .post(token)
                    .header("x-forwarded-for", spoof)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("grant_type=authorization_code&code=nothing")
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        let mut statuses = Vec::new();
        for i in 0..5 {
            statuses.push(post(from(1), format!("203.0.113.{i}")).await);
        }
        assert!(statuses[..3].iter().all(|s| *s != 429), "{statuses:?}");
        assert_eq!(&statuses[3..], &[429, 429], "{}", nginx.log());
        // Another browser, another address: its own bucket.
        let other = post(from(3), "203.0.113.9".to_owned()).await;
        assert_ne!(other, 429);
        assert!(matches!(other, 400 | 401), "{other}");
        server.stop().await.unwrap();
        drop(nginx);
    });
}
