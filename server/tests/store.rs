//! The storage suite, run against both backends: SQLite in a temporary folder,
//! and a real PostgreSQL (`scripts/test` starts one and sets
//! `ATLOGIN_TEST_POSTGRES_URL`; each test makes its own database in it).
#![expect(clippy::unwrap_used, reason = "tests")]

use std::sync::Arc;
use std::time::Duration;

use atlogin_core::time::UnixTime;
use atlogin_server::store::{Batch, Claim, Kind, PgStore, Put, SqliteStore, Store};

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

fn later(secs: u64) -> UnixTime {
    NOW.saturating_add(Duration::from_secs(secs))
}

fn claim(key: &str, payload: impl Into<String>) -> Claim {
    Claim {
        kind: Kind::Code,
        key: key.to_owned(),
        payload: payload.into(),
        keep_until: later(3600),
    }
}

fn row(kind: Kind, key: &str, payload: &str, expires_at: UnixTime) -> Put {
    Put::new(kind, key, payload.to_owned(), expires_at)
}

/// A fresh SQLite store; the folder lives as long as the store is used.
async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("atlogin.sqlite3"))
        .await
        .unwrap();
    (Arc::new(store), dir)
}

/// The URL of a new, empty database on the test PostgreSQL.
async fn postgres_database() -> String {
    // Unique within this cluster: the test processes run side by side, and
    // scripts/test starts a fresh cluster each run.
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let url = std::env::var("ATLOGIN_TEST_POSTGRES_URL").expect(
        "ATLOGIN_TEST_POSTGRES_URL is not set: run scripts/test, which starts PostgreSQL, \
         or eval \"$(scripts/postgres start)\" first",
    );
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("atlogin_{}_{count}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

async fn postgres() -> (Arc<dyn Store>, String) {
    let url = postgres_database().await;
    let store = PgStore::connect(&url).await.unwrap();
    (Arc::new(store), url)
}

/// The same tests for each backend.
macro_rules! suite {
    ($backend:ident, $open:ident) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn put_then_get_returns_the_row_until_it_expires() {
                let (store, _keep) = $open().await;
                assert!(
                    store
                        .put(row(Kind::Code, "k1", "{\"a\":1}", later(60)), NOW)
                        .await
                        .unwrap()
                );
                let got = store.get(Kind::Code, "k1", NOW).await.unwrap().unwrap();
                assert_eq!(got.payload, "{\"a\":1}");
                assert!(!got.used);
                // The same key under another kind is another row.
                assert!(store.get(Kind::Access, "k1", NOW).await.unwrap().is_none());
                assert!(
                    store
                        .get(Kind::Code, "k1", later(60))
                        .await
                        .unwrap()
                        .is_none()
                );
            }

            #[tokio::test]
            async fn put_never_overwrites_a_live_row_but_replaces_an_expired_one() {
                let (store, _keep) = $open().await;
                assert!(
                    store
                        .put(row(Kind::AssertionJti, "j", "1", later(60)), NOW)
                        .await
                        .unwrap()
                );
                assert!(
                    !store
                        .put(row(Kind::AssertionJti, "j", "2", later(120)), NOW)
                        .await
                        .unwrap()
                );
                assert_eq!(
                    store
                        .get(Kind::AssertionJti, "j", NOW)
                        .await
                        .unwrap()
                        .unwrap()
                        .payload,
                    "1"
                );
                assert!(
                    store
                        .put(row(Kind::AssertionJti, "j", "3", later(200)), later(60))
                        .await
                        .unwrap()
                );
                assert_eq!(
                    store
                        .get(Kind::AssertionJti, "j", later(61))
                        .await
                        .unwrap()
                        .unwrap()
                        .payload,
                    "3"
                );
            }

            #[tokio::test]
            async fn take_hands_a_row_out_once() {
                let (store, _keep) = $open().await;
                store
                    .put(row(Kind::Login, "state", "pending", later(600)), NOW)
                    .await
                    .unwrap();
                assert_eq!(
                    store
                        .take(Kind::Login, "state", NOW)
                        .await
                        .unwrap()
                        .unwrap()
                        .payload,
                    "pending"
                );
                assert!(
                    store
                        .take(Kind::Login, "state", NOW)
                        .await
                        .unwrap()
                        .is_none()
                );
                assert!(
                    store
                        .get(Kind::Login, "state", NOW)
                        .await
                        .unwrap()
                        .is_none()
                );
            }

            #[tokio::test]
            async fn take_ignores_an_expired_row() {
                let (store, _keep) = $open().await;
                store
                    .put(row(Kind::Login, "old", "pending", later(10)), NOW)
                    .await
                    .unwrap();
                assert!(
                    store
                        .take(Kind::Login, "old", later(10))
                        .await
                        .unwrap()
                        .is_none()
                );
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_takes_of_one_row_give_it_to_exactly_one() {
                let (store, _keep) = $open().await;
                store
                    .put(row(Kind::Login, "race", "pending", later(600)), NOW)
                    .await
                    .unwrap();
                let tasks: Vec<_> = (0..8)
                    .map(|_| {
                        let store = store.clone();
                        tokio::spawn(
                            async move { store.take(Kind::Login, "race", NOW).await.unwrap() },
                        )
                    })
                    .collect();
                let mut winners = 0;
                for task in tasks {
                    winners += usize::from(task.await.unwrap().is_some());
                }
                assert_eq!(winners, 1);
            }

            #[tokio::test]
            async fn a_claim_marks_the_row_used_and_writes_the_batch() {
                let (store, _keep) = $open().await;
                store
                    .put(row(Kind::Code, "code", "fresh", later(60)), NOW)
                    .await
                    .unwrap();
                let batch = Batch {
                    claim: Some(claim("code", "redeemed")),
                    puts: vec![
                        row(Kind::Access, "at", "access", later(300)).in_family("f1"),
                        row(Kind::Refresh, "rt", "refresh", later(3000)).in_family("f1"),
                    ],
                    ..Batch::default()
                };
                assert!(store.commit(batch, NOW).await.unwrap());
                let code = store.get(Kind::Code, "code", NOW).await.unwrap().unwrap();
                assert!(code.used);
                assert_eq!(code.payload, "redeemed");
                let access = store.get(Kind::Access, "at", NOW).await.unwrap().unwrap();
                assert_eq!(access.family.as_deref(), Some("f1"));
                assert!(store.get(Kind::Refresh, "rt", NOW).await.unwrap().is_some());
                // The redeemed code is kept as long as the claim asked, past
                // its own expiry, so that a late replay is still recognised.
                let kept = store
                    .get(Kind::Code, "code", later(3599))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(kept.used);
                assert!(
                    store
                        .get(Kind::Code, "code", later(3600))
                        .await
                        .unwrap()
                        .is_none()
                );
            }

            #[tokio::test]
            async fn a_lost_claim_writes_nothing() {
                let (store, _keep) = $open().await;
                store
                    .put(row(Kind::Code, "code", "fresh", later(60)), NOW)
                    .await
                    .unwrap();
                let batch = |token: &str| Batch {
                    claim: Some(claim("code", "redeemed")),
                    puts: vec![row(Kind::Access, token, "access", later(300)).in_family("f")],
                    ..Batch::default()
                };
                assert!(store.commit(batch("first"), NOW).await.unwrap());
                assert!(!store.commit(batch("second"), NOW).await.unwrap());
                assert!(
                    store
                        .get(Kind::Access, "second", NOW)
                        .await
                        .unwrap()
                        .is_none()
                );
                // Nor can a missing or an expired row be claimed.
                assert!(
                    !store
                        .commit(
                            Batch {
                                claim: Some(claim("none", "x")),
                                ..Batch::default()
                            },
                            NOW
                        )
                        .await
                        .unwrap()
                );
                store
                    .put(row(Kind::Code, "stale", "fresh", later(5)), NOW)
                    .await
                    .unwrap();
                assert!(
                    !store
                        .commit(
                            Batch {
                                claim: Some(claim("stale", "x")),
                                ..Batch::default()
                            },
                            later(5)
                        )
                        .await
                        .unwrap()
                );
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_redemptions_of_one_code_exactly_one_wins() {
                let (store, _keep) = $open().await;
                store
                    .put(row(Kind::Code, "code", "fresh", later(60)), NOW)
                    .await
                    .unwrap();
                let tasks: Vec<_> = (0..8)
                    .map(|i| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            let batch = Batch {
                                claim: Some(claim("code", format!("redeemed by {i}"))),
                                puts: vec![
                                    row(Kind::Access, &format!("at{i}"), "access", later(300))
                                        .in_family("f"),
                                ],
                                ..Batch::default()
                            };
                            (i, store.commit(batch, NOW).await.unwrap())
                        })
                    })
                    .collect();
                let mut winners = Vec::new();
                for task in tasks {
                    let (i, won) = task.await.unwrap();
                    if won {
                        winners.push(i);
                    }
                }
                assert_eq!(winners.len(), 1, "winners: {winners:?}");
                let winner = winners[0];
                for i in 0..8 {
                    let token = store
                        .get(Kind::Access, &format!("at{i}"), NOW)
                        .await
                        .unwrap();
                    assert_eq!(token.is_some(), i == winner);
                }
                let code = store.get(Kind::Code, "code", NOW).await.unwrap().unwrap();
                assert_eq!(code.payload, format!("redeemed by {winner}"));
            }

            #[tokio::test]
            async fn revoking_a_family_deletes_its_tokens_only() {
                let (store, _keep) = $open().await;
                for (kind, key, family) in [
                    (Kind::Access, "a1", "f1"),
                    (Kind::Refresh, "r1", "f1"),
                    (Kind::Access, "a2", "f2"),
                ] {
                    store
                        .put(row(kind, key, "t", later(300)).in_family(family), NOW)
                        .await
                        .unwrap();
                }
                store
                    .put(row(Kind::Code, "c1", "code", later(60)), NOW)
                    .await
                    .unwrap();
                let batch = Batch {
                    revoke_families: vec!["f1".into()],
                    ..Batch::default()
                };
                assert!(store.commit(batch, NOW).await.unwrap());
                assert!(store.get(Kind::Access, "a1", NOW).await.unwrap().is_none());
                assert!(store.get(Kind::Refresh, "r1", NOW).await.unwrap().is_none());
                assert!(store.get(Kind::Access, "a2", NOW).await.unwrap().is_some());
                assert!(store.get(Kind::Code, "c1", NOW).await.unwrap().is_some());
            }

            #[tokio::test]
            async fn deletes_in_a_batch_remove_rows() {
                let (store, _keep) = $open().await;
                store
                    .put(row(Kind::Access, "a", "t", later(300)), NOW)
                    .await
                    .unwrap();
                let batch = Batch {
                    deletes: vec![(Kind::Access, "a".into())],
                    ..Batch::default()
                };
                assert!(store.commit(batch, NOW).await.unwrap());
                assert!(store.get(Kind::Access, "a", NOW).await.unwrap().is_none());
            }

            #[tokio::test]
            async fn sweep_deletes_expired_rows_only() {
                let (store, _keep) = $open().await;
                store
                    .put(row(Kind::Code, "old1", "x", later(10)), NOW)
                    .await
                    .unwrap();
                store
                    .put(row(Kind::Login, "old2", "x", later(20)), NOW)
                    .await
                    .unwrap();
                store
                    .put(row(Kind::Access, "live", "x", later(300)), NOW)
                    .await
                    .unwrap();
                assert_eq!(store.sweep(later(20)).await.unwrap(), 2);
                assert_eq!(store.sweep(later(20)).await.unwrap(), 0);
                assert!(
                    store
                        .get(Kind::Access, "live", later(20))
                        .await
                        .unwrap()
                        .is_some()
                );
            }

            #[tokio::test]
            async fn ending_sessions_deletes_one_subjects_tokens_and_returns_them() {
                let (store, _keep) = $open().await;
                let token = |kind, key: &str, subject: &str| {
                    row(kind, key, &format!("{{\"key\":\"{key}\"}}"), later(300))
                        .in_family("f")
                        .for_subject(subject)
                };
                store
                    .put(token(Kind::Access, "a1", "did:plc:alice"), NOW)
                    .await
                    .unwrap();
                store
                    .put(token(Kind::Refresh, "r1", "did:plc:alice"), NOW)
                    .await
                    .unwrap();
                store
                    .put(token(Kind::Access, "b1", "did:plc:bob"), NOW)
                    .await
                    .unwrap();
                let mut ended: Vec<String> = store
                    .end_sessions("did:plc:alice", NOW)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r.payload)
                    .collect();
                ended.sort();
                assert_eq!(ended, ["{\"key\":\"a1\"}", "{\"key\":\"r1\"}"]);
                assert!(store.get(Kind::Access, "a1", NOW).await.unwrap().is_none());
                assert!(store.get(Kind::Access, "b1", NOW).await.unwrap().is_some());
                assert!(
                    store
                        .end_sessions("did:plc:alice", NOW)
                        .await
                        .unwrap()
                        .is_empty()
                );
            }

            #[tokio::test]
            async fn ping_answers() {
                let (store, _keep) = $open().await;
                store.ping().await.unwrap();
            }
        }
    };
}

suite!(sqlite_backend, sqlite);
suite!(postgres_backend, postgres);

#[tokio::test]
async fn sqlite_rows_survive_a_reopen_and_the_file_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atlogin.sqlite3");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .put(row(Kind::Login, "s", "pending", later(600)), NOW)
            .await
            .unwrap();
    }
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store
            .take(Kind::Login, "s", NOW)
            .await
            .unwrap()
            .unwrap()
            .payload,
        "pending"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_share_rows_and_race_fairly() {
    let url = postgres_database().await;
    let one = Arc::new(PgStore::connect(&url).await.unwrap());
    // A second replica: its own pool, migrating the same database again.
    let two = Arc::new(PgStore::connect(&url).await.unwrap());
    one.put(row(Kind::Login, "s", "pending", later(600)), NOW)
        .await
        .unwrap();
    assert_eq!(
        two.take(Kind::Login, "s", NOW)
            .await
            .unwrap()
            .unwrap()
            .payload,
        "pending"
    );
    assert!(one.take(Kind::Login, "s", NOW).await.unwrap().is_none());

    two.put(row(Kind::Code, "c", "fresh", later(60)), NOW)
        .await
        .unwrap();
    let claim = || Batch {
        claim: Some(claim("c", "redeemed")),
        ..Batch::default()
    };
    let (a, b) = tokio::join!(one.commit(claim(), NOW), two.commit(claim(), NOW));
    assert!(
        a.unwrap() ^ b.unwrap(),
        "exactly one replica redeems the code"
    );
}

#[tokio::test]
async fn a_bad_postgres_url_is_named_without_echoing_it() {
    let error = PgStore::connect("postgres://user:hunter2hunter2@[::1:5432/db")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("does not parse"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}
