//! Scenario 8: two atlogin replicas on one PostgreSQL behind nginx's
//! round-robin, as a confidential client at one https URL. Twenty logins in
//! a row at the real PDS all complete, whichever replica each request lands
//! on. Needs `ATLOGIN_TEST_POSTGRES_URL` (scripts/test starts PostgreSQL).
#![expect(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeSet;

use atlogin_e2e::front::{FRONT_SOURCE, HostsEntry, Nginx, TestCa};
use atlogin_e2e::{Account, Browser, RealWorld, atlogin_settings, http_client_trusting, rp};
use atlogin_server::serve;
use atlogin_server::settings::StoreSettings;
use serde_json::Value;
use url::Url;

const LOGINS: usize = 20;

/// One login through the front, start to userinfo; answers the userinfo.
async fn log_in(
    http: &reqwest::Client,
    ca: &TestCa,
    base: &str,
    round: usize,
    alice: &Account,
    world: &RealWorld,
) -> Value {
    let mut browser = Browser::trusting(&[ca.ca_der()]);
    let state = format!("round-{round}");
    let pds = browser
        .through_atlogin_form(&rp::authorize_url(base, &state), &alice.handle)
        .await;
    let callback = browser
        .sign_in_at_pds(&pds, &alice.handle, &alice.password, true)
        .await
        .unwrap_or_else(|e| panic!("round {round}: {e}\n{}", world.log()));
    let done = browser.get(&callback).await;
    assert_eq!(done.status, 303, "round {round}: {}", done.body);
    let back = rp::answer(&done.location());
    assert_eq!(back["state"], state);
    assert_eq!(back["iss"], base);
    let (status, tokens) = rp::redeem(http, base, &back["code"]).await;
    assert_eq!(status, 200, "round {round}: {tokens}");
    rp::userinfo(http, base, tokens["access_token"].as_str().unwrap()).await
}

#[test]
fn twenty_logins_complete_across_two_replicas_on_one_postgresql() {
    let url = std::env::var("ATLOGIN_TEST_POSTGRES_URL")
        .expect("ATLOGIN_TEST_POSTGRES_URL is not set: run scripts/test, which starts PostgreSQL");
    let ca = TestCa::new();
    let name = HostsEntry::add();
    let world = RealWorld::start_trusting(Some(&ca.ca_pem()));
    let alice = world.account("alice.test").clone();
    let state = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        let database = format!("atlogin_e2e_replicas_{}", std::process::id());
        sqlx::query(&format!("DROP DATABASE IF EXISTS {database}"))
            .execute(&admin)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {database}"))
            .execute(&admin)
            .await
            .unwrap();
        let database_url = format!("{}/{database}", url.rsplit_once('/').unwrap().0);

        // Both replicas share the database and the keys folder, as two
        // machines share them through a database server and a secret store.
        let mut settings = atlogin_settings(&world, state.path());
        settings.public_url = Some(Url::parse(&format!("https://{}", name.host)).unwrap());
        settings.trusted_proxies = vec![FRONT_SOURCE];
        settings.store = StoreSettings::Postgres(database_url.into());
        settings.clients = vec![rp::registered()];
        let one = serve::start(&settings, std::future::pending())
            .await
            .unwrap();
        let two = serve::start(&settings, std::future::pending())
            .await
            .unwrap();
        let nginx = Nginx::start(&ca, &name, &[one.address, two.address]);
        let base = nginx.url.clone();
        assert_eq!(one.issuer, base);
        assert_eq!(two.issuer, base);
        let http = http_client_trusting(&[ca.ca_der()]);

        for round in 0..LOGINS {
            let userinfo = log_in(&http, &ca, &base, round, &alice, &world).await;
            assert_eq!(userinfo["sub"], alice.did.as_str(), "round {round}");
        }

        // Each kind of step was served by both replicas at some point.
        let log = nginx.access_log();
        for path in ["/authorize", "/atproto/callback", "/token", "/userinfo"] {
            let served: BTreeSet<&str> = log
                .lines()
                .filter(|l| l.ends_with(&format!(" {path}")))
                .filter_map(|l| l.split(' ').next())
                .collect();
            let expected: BTreeSet<String> =
                [one.address.to_string(), two.address.to_string()].into();
            let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
            assert_eq!(served, expected, "{path}:\n{log}");
        }
        one.stop().await.unwrap();
        two.stop().await.unwrap();
        drop(nginx);
        admin.close().await;
    });
}
