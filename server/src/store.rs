//! What atlogin keeps between requests: authorization requests waiting for the
//! sign-in form, logins waiting at the person's PDS, codes, access and refresh
//! tokens, and the `jti`s of client assertions already seen.
//!
//! One trait, [`Store`], with two backends over `sqlx`: [`SqliteStore`], a file in
//! the state directory that needs no server, and [`PgStore`], PostgreSQL, for
//! several replicas sharing one database. Both run the same schema
//! (`server/migrations/`), migrated when they open, and the same statements.
//!
//! Codes and refresh tokens are single-use: [`Store::commit`] marks one used with
//! a compare-and-set and writes the tokens it leads to in the same transaction,
//! or writes nothing when another request got there first.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use atlogin_core::time::UnixTime;
use sqlx::Row as _;

/// What a row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A relying party's authorization request, waiting for the person's handle.
    Authorization,
    /// A login in progress at the person's PDS, by its `state`.
    Login,
    /// An authorization code, by its storage key.
    Code,
    /// An access token, by its storage key.
    Access,
    /// A refresh token, by its storage key.
    Refresh,
    /// A client assertion's `jti`, kept until the assertion expires.
    AssertionJti,
    /// The built-in demo relying party's own login, by its `state`.
    Demo,
    /// A sign-in a relying party holds a session for, by its family: what a
    /// back-channel logout token names with `sid`.
    Session,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Authorization => "authorization",
            Self::Login => "login",
            Self::Code => "code",
            Self::Access => "access",
            Self::Refresh => "refresh",
            Self::AssertionJti => "jti",
            Self::Demo => "demo",
            Self::Session => "session",
        }
    }
}

/// A stored row.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// The item, as JSON.
    pub payload: String,
    /// Whether it was redeemed.
    pub used: bool,
    /// Its family, for tokens.
    pub family: Option<String>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The payload can hold secrets (a pending login's PKCE verifier and DPoP key).
        f.debug_struct("Record")
            .field("used", &self.used)
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

/// A row to write.
#[derive(Clone)]
#[non_exhaustive]
pub struct Put {
    /// What it is.
    pub kind: Kind,
    /// Its key.
    pub key: String,
    /// Its family, for tokens.
    pub family: Option<String>,
    /// The DID it speaks for, for tokens.
    pub subject: Option<String>,
    /// The item, as JSON.
    pub payload: String,
    /// When it stops being readable.
    pub expires_at: UnixTime,
}

impl std::fmt::Debug for Put {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Put")
            .field("kind", &self.kind)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Put {
    /// A row of `kind` under `key`.
    pub fn new(kind: Kind, key: impl Into<String>, payload: String, expires_at: UnixTime) -> Self {
        Self {
            kind,
            key: key.into(),
            family: None,
            subject: None,
            payload,
            expires_at,
        }
    }

    /// Puts the row in a token family.
    #[must_use]
    pub fn in_family(mut self, family: impl Into<String>) -> Self {
        self.family = Some(family.into());
        self
    }

    /// Names the DID the row speaks for.
    #[must_use]
    pub fn for_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

/// A row to mark used, with its new payload and how long it is kept from then
/// on (a redeemed code is kept as long as the tokens it gave, so that its
/// replay is still recognised).
#[derive(Debug)]
pub struct Claim {
    /// What it is.
    pub kind: Kind,
    /// Its key.
    pub key: String,
    /// The new payload.
    pub payload: String,
    /// The new expiry.
    pub keep_until: UnixTime,
}

/// Changes written together, in one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    /// Mark this row used and replace its payload, only if it is unused and
    /// unexpired; when it is not, nothing in the batch is written.
    pub claim: Option<Claim>,
    /// Rows to write.
    pub puts: Vec<Put>,
    /// Rows to delete.
    pub deletes: Vec<(Kind, String)>,
    /// Token families whose rows are all deleted.
    pub revoke_families: Vec<String>,
}

/// A store failure. The message names what failed, never a value or a URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened or migrated.
    #[error("cannot open the {backend} store: {reason}")]
    Open {
        /// `SQLite` or `PostgreSQL`.
        backend: &'static str,
        /// Why.
        reason: String,
    },
    /// A statement failed.
    #[error("the store failed: {0}")]
    Query(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        // sqlx's messages describe the failure (a constraint, a lost
        // connection), not the values bound to the statement.
        Self::Query(error.to_string())
    }
}

/// A boxed future, so that [`Store`] can be used as a trait object.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where atlogin keeps state between requests.
///
/// Reads never return an expired row; writes may overwrite an expired row
/// but never a live one.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Writes a row unless a live row of the same kind and key exists; says
    /// whether it was written.
    fn put(&self, row: Put, now: UnixTime) -> StoreFuture<'_, bool>;

    /// Reads a live row.
    fn get<'a>(
        &'a self,
        kind: Kind,
        key: &'a str,
        now: UnixTime,
    ) -> StoreFuture<'a, Option<Record>>;

    /// Reads and deletes a live row at once: of two concurrent calls, only one
    /// gets it.
    fn take<'a>(
        &'a self,
        kind: Kind,
        key: &'a str,
        now: UnixTime,
    ) -> StoreFuture<'a, Option<Record>>;

    /// Writes a batch in one transaction; `false` when its claim was lost and
    /// nothing was written.
    fn commit(&self, batch: Batch, now: UnixTime) -> StoreFuture<'_, bool>;

    /// Deletes every live row that speaks for `subject` and returns them.
    fn end_sessions<'a>(&'a self, subject: &'a str, now: UnixTime) -> StoreFuture<'a, Vec<Record>>;

    /// Deletes every expired row; returns how many.
    fn sweep(&self, now: UnixTime) -> StoreFuture<'_, u64>;

    /// Checks that the database answers.
    fn ping(&self) -> StoreFuture<'_, ()>;
}

fn secs(time: UnixTime) -> i64 {
    i64::try_from(time.as_secs()).unwrap_or(i64::MAX)
}

// The statements both backends run. SQLite reads `$1` as "the first parameter",
// as PostgreSQL does. (PUT's `$7` came with the second migration.)
const PUT: &str = "INSERT INTO atlogin_records (kind, key, family, subject, payload, used, expires_at) \
     VALUES ($1, $2, $3, $7, $4, FALSE, $5) \
     ON CONFLICT (kind, key) DO UPDATE SET family = excluded.family, subject = excluded.subject, \
     payload = excluded.payload, used = FALSE, expires_at = excluded.expires_at \
     WHERE atlogin_records.expires_at <= $6";
const GET: &str = "SELECT payload, used, family FROM atlogin_records \
     WHERE kind = $1 AND key = $2 AND expires_at > $3";
const TAKE: &str = "DELETE FROM atlogin_records WHERE kind = $1 AND key = $2 AND expires_at > $3 \
     RETURNING payload, used, family";
const CLAIM: &str = "UPDATE atlogin_records SET used = TRUE, payload = $3, expires_at = $5 \
     WHERE kind = $1 AND key = $2 AND used = FALSE AND expires_at > $4";
const DELETE: &str = "DELETE FROM atlogin_records WHERE kind = $1 AND key = $2";
const REVOKE_FAMILY: &str = "DELETE FROM atlogin_records WHERE family = $1";
const END_SESSIONS: &str = "DELETE FROM atlogin_records WHERE subject = $1 AND expires_at > $2 \
     RETURNING payload, used, family";
const SWEEP: &str = "DELETE FROM atlogin_records WHERE expires_at <= $1";

/// Implements [`Store`] for a backend; the two differ only in their pool type.
macro_rules! sql_store {
    ($store:ident, $db:ty) => {
        impl Store for $store {
            fn put(&self, row: Put, now: UnixTime) -> StoreFuture<'_, bool> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    let done = sqlx::query(PUT)
                        .bind(row.kind.as_str())
                        .bind(&row.key)
                        .bind(&row.family)
                        .bind(&row.payload)
                        .bind(secs(row.expires_at))
                        .bind(secs(now))
                        .bind(&row.subject)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn get<'a>(
                &'a self,
                kind: Kind,
                key: &'a str,
                now: UnixTime,
            ) -> StoreFuture<'a, Option<Record>> {
                Box::pin(async move {
                    let row = sqlx::query(GET)
                        .bind(kind.as_str())
                        .bind(key)
                        .bind(secs(now))
                        .fetch_optional(&self.pool)
                        .await?;
                    row.map(|row| record::<$db>(&row)).transpose()
                })
            }

            fn take<'a>(
                &'a self,
                kind: Kind,
                key: &'a str,
                now: UnixTime,
            ) -> StoreFuture<'a, Option<Record>> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    let row = sqlx::query(TAKE)
                        .bind(kind.as_str())
                        .bind(key)
                        .bind(secs(now))
                        .fetch_optional(&self.pool)
                        .await?;
                    row.map(|row| record::<$db>(&row)).transpose()
                })
            }

            fn commit(&self, batch: Batch, now: UnixTime) -> StoreFuture<'_, bool> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    let mut tx = self.pool.begin().await?;
                    if let Some(claim) = &batch.claim {
                        let done = sqlx::query(CLAIM)
                            .bind(claim.kind.as_str())
                            .bind(&claim.key)
                            .bind(&claim.payload)
                            .bind(secs(now))
                            .bind(secs(claim.keep_until))
                            .execute(&mut *tx)
                            .await?;
                        if done.rows_affected() != 1 {
                            tx.rollback().await?;
                            return Ok(false);
                        }
                    }
                    for family in &batch.revoke_families {
                        sqlx::query(REVOKE_FAMILY)
                            .bind(family)
                            .execute(&mut *tx)
                            .await?;
                    }
                    for (kind, key) in &batch.deletes {
                        sqlx::query(DELETE)
                            .bind(kind.as_str())
                            .bind(key)
                            .execute(&mut *tx)
                            .await?;
                    }
                    for row in &batch.puts {
                        sqlx::query(PUT)
                            .bind(row.kind.as_str())
                            .bind(&row.key)
                            .bind(&row.family)
                            .bind(&row.payload)
                            .bind(secs(row.expires_at))
                            .bind(secs(now))
                            .bind(&row.subject)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(true)
                })
            }

            fn end_sessions<'a>(
                &'a self,
                subject: &'a str,
                now: UnixTime,
            ) -> StoreFuture<'a, Vec<Record>> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    let rows = sqlx::query(END_SESSIONS)
                        .bind(subject)
                        .bind(secs(now))
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(|row| record::<$db>(row)).collect()
                })
            }

            fn sweep(&self, now: UnixTime) -> StoreFuture<'_, u64> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    let done = sqlx::query(SWEEP)
                        .bind(secs(now))
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected())
                })
            }

            fn ping(&self) -> StoreFuture<'_, ()> {
                Box::pin(async move {
                    sqlx::query("SELECT 1").execute(&self.pool).await?;
                    Ok(())
                })
            }
        }
    };
}

fn record<DB: sqlx::Database>(row: &DB::Row) -> Result<Record, StoreError>
where
    for<'r> String: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> bool: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> Option<String>: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    Ok(Record {
        payload: row.try_get(0)?,
        used: row.try_get(1)?,
        family: row.try_get(2)?,
    })
}

/// The schema, shared by both backends.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The embedded store: one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl SqliteStore {
    /// Opens (creating it if needed) and migrates the database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let fail = |reason: String| StoreError::Open {
            backend: "SQLite",
            reason,
        };
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| fail(format!("{}: {e}", path.display())))?;
        restrict_file(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
        MIGRATOR.run(&pool).await.map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            pool,
            writer: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// SQLite lets one connection write at a time. A writer that finds it busy
    /// sleeps in SQLite's busy handler, in pauses that grow to 100 ms, which
    /// under load makes a long tail; here writers wait their turn in order
    /// instead, and readers go on beside them (WAL).
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        Some(self.writer.lock().await)
    }
}

/// The database holds pending logins' secrets: only its owner may read it.
fn restrict_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

sql_store!(SqliteStore, sqlx::Sqlite);

/// PostgreSQL, for replicas sharing one database.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: sqlx::PgPool,
}

impl PgStore {
    /// PostgreSQL writers need no turn: its row locks order them.
    #[expect(
        clippy::unused_async,
        reason = "the same shape as SQLite's, for the shared code"
    )]
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        None
    }

    /// Connects to `url` and migrates the database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let fail = |reason: String| StoreError::Open {
            backend: "PostgreSQL",
            reason,
        };
        // The URL can hold a password: name the problem, never the URL.
        let options = sqlx::postgres::PgConnectOptions::from_str(url)
            .map_err(|_| fail("the database URL does not parse".to_owned()))?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| fail(e.to_string()))?;
        MIGRATOR.run(&pool).await.map_err(|e| fail(e.to_string()))?;
        Ok(Self { pool })
    }
}

sql_store!(PgStore, sqlx::Postgres);
