//! A certified relying-party library, panva's `openid-client`, signs a person
//! in through atlogin and a real PDS: discovery, the code flow with PKCE, nonce
//! and state, the ID token verified by the library (RS256 for one client,
//! ES256 for the other), the RFC 9207 `iss` of the redirect, and userinfo.
#![expect(clippy::unwrap_used, reason = "tests")]

use atlogin_core::jose::Algorithm;
use atlogin_core::provider::{ClientAuth, ClientSecret, RegisteredClient, StoredSecret};
use atlogin_e2e::runtime;
use atlogin_e2e::{Browser, RealWorld, atlogin_settings, node_script};
use atlogin_server::serve;
use serde_json::Value;

const REDIRECT: &str = "https://rp.example.com/callback";
const SECRET: &str = "openid-client-secret-0123456789";

fn client(id: &str, alg: Algorithm) -> RegisteredClient {
    RegisteredClient::new(
        id,
        vec![REDIRECT.to_owned()],
        ClientAuth::ClientSecretBasic(StoredSecret::Plain(ClientSecret::new(SECRET))),
    )
    .with_id_token_alg(alg)
}

#[test]
fn openid_client_signs_in_with_rs256_and_es256_id_tokens() {
    let world = RealWorld::start();
    let state = tempfile::tempdir().unwrap();
    let alice = world.account("alice.test").clone();
    runtime().block_on(async {
        let mut settings = atlogin_settings(&world, state.path());
        settings.clients = vec![
            client("rp-rs256", Algorithm::Rs256),
            client("rp-es256", Algorithm::Es256),
        ];
        let server = serve::start(&settings, std::future::pending())
            .await
            .unwrap();
        for (client_id, alg) in [("rp-rs256", "RS256"), ("rp-es256", "ES256")] {
            let saved = state.path().join(format!("{client_id}.json"));
            let saved = saved.to_str().unwrap().to_owned();
            let issuer = server.issuer.clone();
            let args = [
                "rp.mjs", "start", &issuer, client_id, SECRET, REDIRECT, alg, &saved,
            ];
            let authorize = tokio::task::spawn_blocking({
                let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
                move || {
                    node_script(
                        &args[0],
                        &args[1..].iter().map(String::as_str).collect::<Vec<_>>(),
                    )
                }
            })
            .await
            .unwrap()
            .unwrap();
            assert!(
                authorize.starts_with(&format!("{issuer}/authorize?")),
                "{authorize}"
            );

            let mut browser = Browser::new();
            let pds = browser
                .through_atlogin_form(&authorize, &alice.handle)
                .await;
            let callback = browser
                .sign_in_at_pds(&pds, &alice.handle, &alice.password, true)
                .await
                .unwrap_or_else(|e| panic!("{e}\n{}", world.log()));
            let done = browser.get(&callback).await;
            assert_eq!(done.status, 303, "{}", done.body);
            let redirect = done.location();
            assert!(redirect.starts_with(REDIRECT), "{redirect}");

            let finished = tokio::task::spawn_blocking(move || {
                node_script("rp.mjs", &["finish", &saved, &redirect])
            })
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{client_id}: {e}"));
            let result: Value = serde_json::from_str(&finished).unwrap();
            assert_eq!(result["alg"], alg, "{client_id}");
            assert_eq!(result["claims"]["sub"], alice.did.as_str());
            assert_eq!(result["claims"]["iss"], issuer);
            assert_eq!(result["claims"]["aud"], client_id);
            assert_eq!(result["claims"]["preferred_username"], "alice.test");
            assert_eq!(result["userinfo"]["sub"], alice.did.as_str());
            assert_eq!(
                result["userinfo"]["name"],
                alice.display_name.as_deref().unwrap()
            );
        }
        server.stop().await.unwrap();
    });
}
