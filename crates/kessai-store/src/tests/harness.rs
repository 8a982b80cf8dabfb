//! A fresh database per test, of either backend: a new SQLite file, or a new PostgreSQL schema
//! (dropped again when the test ends), so tests run in parallel.

use crate::{PgStore, SqliteStore, Store};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Executor};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The server the PostgreSQL tests use (`KESSAI_TEST_DATABASE_URL`, else the local one).
pub fn postgres_url() -> String {
    std::env::var("KESSAI_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A name no other test (of this or another process) uses.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

pub enum Where {
    Sqlite(std::path::PathBuf),
    Postgres(Schema),
}

/// A schema of its own on the test server, dropped when this is dropped.
pub struct Schema(String);

impl Schema {
    pub async fn create() -> Schema {
        let schema = unique_name("t");
        let mut admin = PgConnectOptions::from_str(&postgres_url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        admin
            .execute(format!("CREATE SCHEMA {schema}").as_str())
            .await
            .unwrap();
        Schema(schema)
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// How many rows `table` of this schema holds.
    pub async fn count(&self, table: &str) -> i64 {
        let mut conn = schema_options(&self.0).connect().await.unwrap();
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }
}

/// One test's database. `open` gives another store (another pool) on the same database, as a
/// second gateway would have.
pub struct TestDb {
    pub store: Arc<dyn Store>,
    at: Where,
}

impl TestDb {
    pub async fn sqlite(name: &str) -> TestDb {
        let dir = std::env::temp_dir().join(unique_name(&format!("kessai-store-{name}")));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.sqlite");
        let store = Arc::new(SqliteStore::open(&path).await.unwrap());
        TestDb {
            store,
            at: Where::Sqlite(path),
        }
    }

    pub async fn postgres() -> TestDb {
        let schema = Schema::create().await;
        TestDb {
            store: Arc::new(
                PgStore::open_with(schema_options(schema.name()))
                    .await
                    .unwrap(),
            ),
            at: Where::Postgres(schema),
        }
    }

    /// Another store on the same database.
    pub async fn open(&self) -> Arc<dyn Store> {
        match &self.at {
            Where::Sqlite(path) => Arc::new(SqliteStore::open(path).await.unwrap()),
            Where::Postgres(schema) => Arc::new(
                PgStore::open_with(schema_options(schema.name()))
                    .await
                    .unwrap(),
            ),
        }
    }

    /// Records migration `version` as applied, as a newer Kessai would have.
    pub async fn record_unknown_migration(&self, version: i64) {
        let sql = format!(
            "INSERT INTO _sqlx_migrations(version, description, success, checksum, execution_time) VALUES ({version}, 'from a newer Kessai', true, {}, 0)",
            match self.at {
                Where::Sqlite(_) => "X'00'",
                Where::Postgres(_) => "'\\x00'::bytea",
            }
        );
        match &self.at {
            Where::Sqlite(path) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
                let mut conn = options.connect().await.unwrap();
                conn.execute(sql.as_str()).await.unwrap();
            }
            Where::Postgres(schema) => {
                let mut conn = schema_options(schema.name()).connect().await.unwrap();
                conn.execute(sql.as_str()).await.unwrap();
            }
        }
    }

    /// Opens the database again, as a new gateway would.
    pub async fn reopen(&self) -> Result<(), crate::StoreError> {
        match &self.at {
            Where::Sqlite(path) => SqliteStore::open(path).await.map(drop),
            Where::Postgres(schema) => PgStore::open_with(schema_options(schema.name()))
                .await
                .map(drop),
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }
}

/// Connections whose `search_path` is `schema` alone.
pub fn schema_options(schema: &str) -> PgConnectOptions {
    PgConnectOptions::from_str(&postgres_url())
        .unwrap()
        .options([("search_path", schema)])
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Where::Sqlite(path) = &self.at {
            if let Some(dir) = path.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime: drop the schema from a thread of its own.
        let sql = format!("DROP SCHEMA {} CASCADE", self.0);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&postgres_url())
                    .await
                    .unwrap();
                // Never hang the suite on a lock: a schema left behind is the lesser harm.
                pool.execute("SET lock_timeout = '10s'").await.unwrap();
                pool.execute(sql.as_str()).await.unwrap();
            });
        })
        .join();
    }
}

/// Runs each listed test (an `async fn(TestDb)`) once against each backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::tests::harness::TestDb::sqlite(stringify!($name)).await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::tests::harness::TestDb::postgres().await).await
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
