//! atlogin against a real PDS (`@atproto/pds`, its OAuth authorization server
//! and an in-memory PLC), through the HTTP-level browser: the person types
//! their handle into atlogin's form, signs in and consents at the PDS, and the
//! relying party gets a code whose ID token names them.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use atlogin_core::jose::crypto::DefaultProvider;
use atlogin_core::jose::{JwkSet, Verifier};
use atlogin_e2e::runtime;
use atlogin_e2e::{Browser, RealWorld, atlogin_settings, http_client, rp};
use atlogin_server::serve::{self, Server};
use serde_json::Value;

/// atlogin as the loopback client, reaching the world's PLC and PDS, with
/// one relying party; `listen` pins the port (for a restart).
async fn atlogin_on(
    world: &RealWorld,
    state: &std::path::Path,
    listen: Option<std::net::SocketAddr>,
) -> Server {
    let mut settings = atlogin_settings(world, state);
    if let Some(listen) = listen {
        settings.listen = listen;
    }
    settings.clients = vec![rp::registered()];
    serve::start(&settings, std::future::pending())
        .await
        .unwrap()
}

async fn atlogin(world: &RealWorld, state: &std::path::Path) -> Server {
    atlogin_on(world, state, None).await
}

/// atlogin's form, up to the PDS's authorization page.
async fn to_pds(browser: &mut Browser, base: &str, handle: &str) -> String {
    browser
        .through_atlogin_form(&rp::authorize_url(base, "rp-state"), handle)
        .await
}

async fn redeem(base: &str, code: &str) -> Value {
    let (status, tokens) = rp::redeem(&http_client(), base, code).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

#[test]
fn the_loopback_client_signs_in_at_a_real_pds() {
    let world = RealWorld::start();
    let state = tempfile::tempdir().unwrap();
    let alice = world.account("alice.test").clone();
    runtime().block_on(async {
        let server = atlogin(&world, state.path()).await;
        let base = format!("http://{}", server.address);
        let mut browser = Browser::new();
        let pds = to_pds(&mut browser, &base, &alice.handle).await;
        assert!(
            pds.starts_with(&format!("{}/oauth/authorize?", world.state.pds_url)),
            "{pds}"
        );
        let callback = browser
            .sign_in_at_pds(&pds, &alice.handle, &alice.password, true)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", world.log()));
        assert!(
            callback.starts_with(&format!("{}/atproto/callback?", server.issuer)),
            "{callback}"
        );
        let done = browser.get(&callback).await;
        assert_eq!(done.status, 303, "{}", done.body);
        let back = rp::answer(&done.location());
        assert_eq!(back["state"], "rp-state");

        let tokens = redeem(&base, &back["code"]).await;
        let jwks = http_client()
            .get(format!("{base}/jwks"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let id_token = Verifier::new(DefaultProvider::get())
            .verify(
                tokens["id_token"].as_str().unwrap(),
                &JwkSet::from_json(&jwks).unwrap(),
            )
            .unwrap();
        let claims = id_token.claims();
        assert_eq!(claims["sub"], alice.did.as_str());
        assert_eq!(claims["preferred_username"], "alice.test");
        assert_eq!(claims["name"], alice.display_name.as_deref().unwrap());
        assert_eq!(claims["nonce"], "rp-nonce");
        server.stop().await.unwrap();
    });
}

#[test]
fn a_declined_consent_and_a_wrong_password_reach_the_right_places() {
    let world = RealWorld::start();
    let state = tempfile::tempdir().unwrap();
    let bob = world.account("bob.test").clone();
    runtime().block_on(async {
        let server = atlogin(&world, state.path()).await;
        let base = format!("http://{}", server.address);

        // A wrong password is the PDS's to refuse, on its own page.
        let mut browser = Browser::new();
        let pds = to_pds(&mut browser, &base, &bob.handle).await;
        let refused = browser
            .sign_in_at_pds(&pds, &bob.handle, "not-the-password", true)
            .await
            .unwrap_err();
        assert!(
            refused.contains("Invalid identifier or password"),
            "{refused}"
        );

        // Declining at the PDS: the relying party hears access_denied.
        let mut browser = Browser::new();
        let pds = to_pds(&mut browser, &base, &bob.handle).await;
        let callback = browser
            .sign_in_at_pds(&pds, &bob.handle, &bob.password, false)
            .await
            .unwrap();
        let done = browser.get(&callback).await;
        assert_eq!(done.status, 303, "{}", done.body);
        let back = rp::answer(&done.location());
        assert_eq!(back["error"], "access_denied");
        assert_eq!(back["iss"], server.issuer);

        // Bob has no display name: his name is his handle.
        let mut browser = Browser::new();
        let pds = to_pds(&mut browser, &base, &bob.handle).await;
        let callback = browser
            .sign_in_at_pds(&pds, &bob.handle, &bob.password, true)
            .await
            .unwrap();
        let back = rp::answer(&browser.get(&callback).await.location());
        let tokens = redeem(&base, &back["code"]).await;
        let payload = tokens["id_token"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap();
        let claims: Value =
            serde_json::from_slice(&atlogin_core::base64url::decode(payload).unwrap()).unwrap();
        assert_eq!(claims["name"], "bob.test");
        tokio::time::sleep(Duration::from_millis(10)).await;
        server.stop().await.unwrap();
    });
}

#[test]
fn a_sign_in_survives_a_restart_between_the_pds_and_the_callback() {
    let world = RealWorld::start();
    let state = tempfile::tempdir().unwrap();
    let alice = world.account("alice.test").clone();
    runtime().block_on(async {
        let first = atlogin(&world, state.path()).await;
        let base = format!("http://{}", first.address);
        let mut browser = Browser::new();
        let pds = to_pds(&mut browser, &base, &alice.handle).await;
        let callback = browser
            .sign_in_at_pds(&pds, &alice.handle, &alice.password, true)
            .await
            .unwrap();
        // The PDS has sent the browser back; atlogin restarts before it arrives.
        let address = first.address;
        first.stop().await.unwrap();
        let second = atlogin_on(&world, state.path(), Some(address)).await;
        let done = browser.get(&callback).await;
        assert_eq!(done.status, 303, "{}", done.body);
        let back = rp::answer(&done.location());
        let tokens = redeem(&base, &back["code"]).await;
        assert!(tokens["id_token"].is_string());
        second.stop().await.unwrap();
    });
}
