//! A schema of its own on the test PostgreSQL server for a test (`KESSAI_TEST_DATABASE_URL`, else
//! the local server), dropped afterwards.
#![allow(dead_code)]

use sqlx::{Connection, Executor, PgConnection};

pub fn server_url() -> String {
    std::env::var("KESSAI_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema of its own on the test server, dropped when this is dropped.
pub struct Schema {
    pub name: String,
}

impl Schema {
    pub async fn create() -> Schema {
        let name = format!("e2e_{}_{}", std::process::id(), kessai::random_hex(6));
        let mut conn = PgConnection::connect(&server_url()).await.unwrap();
        conn.execute(format!("CREATE SCHEMA {name}").as_str())
            .await
            .unwrap();
        Schema { name }
    }

    /// The server's URL with this schema as the connections' search path.
    pub fn database_url(&self) -> String {
        let base = server_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-c%20search_path%3D{}", self.name)
    }

    /// How many rows `table` of this schema holds.
    pub async fn count(&self, table: &str) -> i64 {
        let mut conn = PgConnection::connect(&server_url()).await.unwrap();
        sqlx::query_scalar(&format!("SELECT count(*) FROM {}.{table}", self.name))
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA {} CASCADE", self.name);
        // Drop runs inside the test's runtime: drop the schema from a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut conn = PgConnection::connect(&server_url()).await.unwrap();
                // Never hang the suite on a lock: a schema left behind is the lesser harm.
                conn.execute("SET lock_timeout = '10s'").await.unwrap();
                conn.execute(sql.as_str()).await.unwrap();
            });
        })
        .join();
    }
}
