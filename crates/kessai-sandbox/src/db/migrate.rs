//! The emulator's migrations, applied when its file opens ([`kessai_sqlite::migrate`]: recorded
//! in `_sqlx_migrations` as earlier versions, which ran them with sqlx, did; so their files open).

use super::DbError;
use kessai_sqlite::Migration;
use rusqlite::Connection;

macro_rules! migration {
    ($version:literal, $description:literal, $file:literal) => {
        Migration {
            version: $version,
            description: $description,
            sql: include_str!(concat!("../../migrations/", $file)),
        }
    };
}

const MIGRATIONS: &[Migration] = &[
    migration!(1, "init", "0001_init.sql"),
    migration!(2, "notifications", "0002_notifications.sql"),
    migration!(3, "engine records", "0003_engine_records.sql"),
    migration!(50, "mws", "0050_mws.sql"),
];

/// Applies the migrations `conn`'s file lacks.
pub(super) fn run(conn: &Connection) -> Result<(), DbError> {
    Ok(kessai_sqlite::migrate(conn, MIGRATIONS)?)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    /// Every file of the migrations folder is listed, in order, and nothing else.
    #[test]
    fn every_migration_file_is_listed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let (files, listed) = kessai_sqlite::files_and_list(std::path::Path::new(dir), MIGRATIONS);
        assert_eq!(files, listed);
    }

    /// A file migrated by sqlx's migrator (as the emulator did before) opens, and a file migrated
    /// here passes sqlx's migrator's checks: either version opens the other's file.
    #[tokio::test]
    async fn migration_records_match_earlier_versions() {
        use crate::db::{Db, Storage};
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
        let dir = std::env::temp_dir().join(format!(
            "kessai-sandbox-migrations-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let options = |path: &std::path::Path| {
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
        };

        let earlier = dir.join("earlier.sqlite");
        let pool = SqlitePool::connect_with(options(&earlier)).await.unwrap();
        sqlx::migrate!("./migrations").run(&pool).await.unwrap();
        pool.close().await;
        let db = Db::open(&Storage::File(earlier)).await.unwrap();
        db.merchants().await.unwrap();

        let ours = dir.join("ours.sqlite");
        drop(Db::open(&Storage::File(ours.clone())).await.unwrap());
        let pool = SqlitePool::connect_with(options(&ours)).await.unwrap();
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .expect("sqlx's migrator accepts the emulator's record");
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(
            applied as usize,
            MIGRATIONS.len(),
            "each migration recorded once"
        );
        pool.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
