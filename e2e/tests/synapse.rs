//! A real Synapse accepts the identity atlogin vouches for: Synapse's SSO
//! redirect, atlogin's form, the PDS's sign-in and consent, back through
//! atlogin to Synapse's callback, a login token, `/login`, and `whoami` is
//! the Matrix user named after the handle, with the profile's display name.
#![expect(clippy::unwrap_used, reason = "tests")]

use atlogin_e2e::runtime;
use atlogin_e2e::synapse::{CLIENT_REDIRECT, CLIENT_SECRET, SERVER_NAME, Synapse};
use atlogin_e2e::{Browser, RealWorld, atlogin_settings, node_script};
use atlogin_server::serve;

/// A real world, an atlogin that knows Synapse as a confidential relying
/// party, and the Synapse; dropped in the reverse order.
struct Stack {
    synapse: Synapse,
    server: serve::Server,
    world: RealWorld,
    _dirs: [tempfile::TempDir; 2],
}

fn stack(rt: &tokio::runtime::Runtime) -> Stack {
    let world = RealWorld::start();
    let state = tempfile::tempdir().unwrap();
    let synapse_dir = tempfile::tempdir().unwrap();
    let synapse_port = Synapse::port();
    let server = rt.block_on(async {
        let mut settings = atlogin_settings(&world, state.path());
        settings.clients = vec![Synapse::registered_client(synapse_port)];
        serve::start(&settings, std::future::pending())
            .await
            .unwrap()
    });
    let synapse = Synapse::start(
        synapse_dir.path(),
        synapse_port,
        &server.issuer,
        CLIENT_SECRET,
    );
    Stack {
        synapse,
        server,
        world,
        _dirs: [state, synapse_dir],
    }
}

#[test]
fn synapse_signs_alice_in_through_atlogin_and_her_pds() {
    let rt = runtime();
    let Stack {
        synapse,
        server,
        world,
        _dirs,
    } = stack(&rt);
    let alice = world.account("alice.test").clone();
    rt.block_on(async {
        let mut browser = Browser::new();
        let back = synapse
            .sign_in(&mut browser, &server.issuer, &alice, &world)
            .await;
        let (user_id, display_name) = synapse.log_in_with(&back).await;
        assert_eq!(user_id, format!("@alice.test:{SERVER_NAME}"));
        assert_eq!(display_name, alice.display_name);
        server.stop().await.unwrap();
    });
    drop(synapse);
}

/// Scenario 1 as a person does it: Debian's Chromium opens Synapse's SSO
/// link, the handle is typed into atlogin's form, the PDS's own pages sign
/// Alice in and take her consent, and Synapse hands the Matrix client a
/// login token for `@alice.test`.
#[test]
fn chromium_signs_alice_in_to_synapse() {
    let rt = runtime();
    let Stack {
        synapse,
        server,
        world,
        _dirs,
    } = stack(&rt);
    let alice = world.account("alice.test").clone();
    let shots = tempfile::tempdir().unwrap();
    let back = node_script(
        "chromium.mjs",
        &[
            &synapse.sso_redirect(),
            &alice.handle,
            &alice.password,
            "approve",
            CLIENT_REDIRECT,
            &shots.path().display().to_string(),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", synapse.log(), world.log()));
    rt.block_on(async {
        let (user_id, display_name) = synapse.log_in_with(&back).await;
        assert_eq!(user_id, format!("@alice.test:{SERVER_NAME}"));
        assert_eq!(display_name, alice.display_name);
        server.stop().await.unwrap();
    });
    drop(synapse);
}
