//! atlogin against a real PDS (`@atproto/pds`, its OAuth authorization server
//! and an in-memory PLC), through the HTTP-level browser: the person types
//! their handle into atlogin's form, signs in and consents at the PDS, and the
//! relying party gets a code whose ID token names them.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use atlogin_core::jose::crypto::DefaultProvider;
use atlogin_core::jose::{JwkSet, Verifier};
use atlogin_core::pkce::PkceVerifier;
use atlogin_core::provider::{ClientAuth, ClientSecret, RegisteredClient, StoredSecret};
use atlogin_e2e::{Browser, RealWorld, atlogin_settings, http_client};
use atlogin_server::serve::{self, Server};
use serde_json::Value;
use url::Url;

const RP_REDIRECT: &str = "https://mas.example.com/upstream/callback";
const RP_SECRET: &str = "mas-secret-0123456789abcdef";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

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
    settings.clients = vec![RegisteredClient::new(
        "mas",
        vec![RP_REDIRECT.to_owned()],
        ClientAuth::ClientSecretBasic(StoredSecret::Plain(ClientSecret::new(RP_SECRET))),
    )];
    serve::start(&settings, std::future::pending())
        .await
        .unwrap()
}

async fn atlogin(world: &RealWorld, state: &std::path::Path) -> Server {
    atlogin_on(world, state, None).await
}

fn verifier() -> PkceVerifier {
    PkceVerifier::parse("an-e2e-verifier-that-is-long-enough-0123456789").unwrap()
}

fn authorize_url(base: &str) -> String {
    let mut url = Url::parse(&format!("{base}/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "mas")
        .append_pair("redirect_uri", RP_REDIRECT)
        .append_pair("scope", "openid profile")
        .append_pair("state", "rp-state")
        .append_pair("nonce", "rp-nonce")
        .append_pair("code_challenge", verifier().challenge().as_str())
        .append_pair("code_challenge_method", "S256");
    url.to_string()
}

/// The relying party's redirect, as parameters.
fn rp_params(location: &str) -> std::collections::HashMap<String, String> {
    assert!(location.starts_with(RP_REDIRECT), "{location}");
    Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// atlogin's form, up to the PDS's authorization page.
async fn to_pds(browser: &mut Browser, base: &str, handle: &str) -> String {
    browser
        .through_atlogin_form(&authorize_url(base), handle)
        .await
}

async fn redeem(base: &str, code: &str) -> Value {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", RP_REDIRECT)
        .append_pair("code_verifier", verifier().secret())
        .finish();
    let response = http_client()
        .post(format!("{base}/token"))
        .basic_auth("mas", Some(RP_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
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
        let back = rp_params(&done.location());
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
        let back = rp_params(&done.location());
        assert_eq!(back["error"], "access_denied");
        assert_eq!(back["iss"], server.issuer);

        // Bob has no display name: his name is his handle.
        let mut browser = Browser::new();
        let pds = to_pds(&mut browser, &base, &bob.handle).await;
        let callback = browser
            .sign_in_at_pds(&pds, &bob.handle, &bob.password, true)
            .await
            .unwrap();
        let back = rp_params(&browser.get(&callback).await.location());
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
        let back = rp_params(&done.location());
        let tokens = redeem(&base, &back["code"]).await;
        assert!(tokens["id_token"].is_string());
        second.stop().await.unwrap();
    });
}
