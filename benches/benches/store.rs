//! The storage a login does, with 1 000 and with 100 000 pending logins and
//! codes already stored, in each backend: the cost must stay flat as the
//! tables grow. One iteration is one login's rows, in the order the server
//! writes them: the relying party's authorization request (put, read), the
//! login at the PDS (put, taken back at the callback), the code (put, read,
//! then claimed with the access token written in one transaction).
//!
//! SQLite runs on a file in a temporary folder; PostgreSQL on the server
//! named by `ATLOGIN_TEST_POSTGRES_URL` (scripts/test starts one), in a
//! database of its own. Without that variable the PostgreSQL rows are
//! skipped, and say so. With `--test` (one pass, as scripts/test runs
//! benches) only the 1 000-row tables are filled.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use atlogin_core::time::UnixTime;
use atlogin_server::store::{Batch, Claim, Kind, PgStore, Put, SqliteStore, Store};
use criterion::{Criterion, criterion_group, criterion_main};

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
const LATER: UnixTime = UnixTime::from_secs(1_700_000_600);
/// What a stored pending login or code weighs, about.
const PAYLOAD: &str = r#"{"client_id":"mas","redirect_uri":"https://mas.example.com/upstream/callback/01HRPHARNESS00000000000001","state":"st-0123456789abcdef","nonce":"n-0123456789abcdef","code_challenge":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","scope":"openid profile","user":{"did":"did:plc:ewvi7nxzyoun6zhxrhs64oiz","handle":"alice.example.com"}}"#;
/// Rows written per transaction while filling.
const FILL_BATCH: usize = 2_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Fills `store` with `rows` pending logins and `rows` codes.
async fn fill(store: &dyn Store, rows: usize) {
    let mut written = 0;
    while written < rows {
        let n = FILL_BATCH.min(rows - written);
        let mut puts = Vec::with_capacity(2 * n);
        for i in written..written + n {
            puts.push(Put::new(
                Kind::Login,
                format!("filled-login-{i}"),
                PAYLOAD.to_owned(),
                LATER,
            ));
            puts.push(Put::new(
                Kind::Code,
                format!("filled-code-{i}"),
                PAYLOAD.to_owned(),
                LATER,
            ));
        }
        let batch = Batch {
            puts,
            ..Batch::default()
        };
        assert!(store.commit(batch, NOW).await.expect("fills"));
        written += n;
    }
}

/// One login's rows; `i` keeps the keys fresh.
async fn one_login(store: &dyn Store, i: u64) {
    let authorization = format!("authorization-{i}");
    let login = format!("login-{i}");
    let code = format!("code-{i}");
    let put = |kind, key: &str| Put::new(kind, key, PAYLOAD.to_owned(), LATER);
    assert!(
        store
            .put(put(Kind::Authorization, &authorization), NOW)
            .await
            .expect("put")
    );
    assert!(
        store
            .get(Kind::Authorization, &authorization, NOW)
            .await
            .expect("get")
            .is_some()
    );
    assert!(store.put(put(Kind::Login, &login), NOW).await.expect("put"));
    assert!(
        store
            .take(Kind::Login, &login, NOW)
            .await
            .expect("take")
            .is_some()
    );
    assert!(store.put(put(Kind::Code, &code), NOW).await.expect("put"));
    assert!(
        store
            .get(Kind::Code, &code, NOW)
            .await
            .expect("get")
            .is_some()
    );
    let batch = Batch {
        claim: Some(Claim {
            kind: Kind::Code,
            key: code,
            payload: PAYLOAD.to_owned(),
            keep_until: LATER,
        }),
        puts: vec![put(Kind::Access, &format!("access-{i}")).in_family(format!("family-{i}"))],
        ..Batch::default()
    };
    assert!(store.commit(batch, NOW).await.expect("commit"));
}

fn sizes() -> &'static [usize] {
    if std::env::args().any(|a| a == "--test") {
        &[1_000]
    } else {
        &[1_000, 100_000]
    }
}

fn bench_backend(c: &mut Criterion, backend: &str, open: &dyn Fn(usize) -> Arc<dyn Store>) {
    let rt = runtime();
    let mut group = c.benchmark_group(format!("store/{backend}"));
    group.measurement_time(Duration::from_secs(5));
    for &rows in sizes() {
        let store = open(rows);
        rt.block_on(fill(store.as_ref(), rows));
        let mut i = 0u64;
        group.bench_function(format!("one_login/{rows}_stored"), |b| {
            b.iter(|| {
                i += 1;
                rt.block_on(one_login(black_box(store.as_ref()), i));
            });
        });
    }
    group.finish();
}

fn sqlite(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a folder");
    let open = |rows: usize| -> Arc<dyn Store> {
        let path = dir.path().join(format!("bench-{rows}.sqlite"));
        Arc::new(rt.block_on(SqliteStore::open(&path)).expect("opens"))
    };
    bench_backend(c, "sqlite", &open);
}

#[expect(clippy::print_stderr, reason = "a skipped benchmark says so")]
fn postgres(c: &mut Criterion) {
    let Ok(url) = std::env::var("ATLOGIN_TEST_POSTGRES_URL") else {
        eprintln!(
            "store/postgres: skipped, ATLOGIN_TEST_POSTGRES_URL is not set (scripts/postgres start)"
        );
        return;
    };
    let rt = runtime();
    let open = |rows: usize| -> Arc<dyn Store> {
        rt.block_on(async {
            let admin = sqlx::PgPool::connect(&url).await.expect("connects");
            let name = format!("atlogin_bench_{rows}_{}", std::process::id());
            for statement in [
                format!("DROP DATABASE IF EXISTS {name}"),
                format!("CREATE DATABASE {name}"),
            ] {
                sqlx::query(&statement)
                    .execute(&admin)
                    .await
                    .expect("database");
            }
            admin.close().await;
            let (base, _) = url.rsplit_once('/').expect("a database URL");
            Arc::new(
                PgStore::connect(&format!("{base}/{name}"))
                    .await
                    .expect("connects"),
            ) as Arc<dyn Store>
        })
    };
    bench_backend(c, "postgres", &open);
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);
