//! The SQLite schema's migrations, applied when a store opens its file
//! ([`kessai_sqlite::migrate`]: recorded in `_sqlx_migrations` as earlier Kessai versions did).

use crate::StoreError;
use kessai_sqlite::{MigrateError, Migration};
use rusqlite::Connection;

macro_rules! migration {
    ($version:literal, $description:literal, $file:literal) => {
        Migration {
            version: $version,
            description: $description,
            sql: include_str!(concat!("../../migrations/sqlite/", $file)),
        }
    };
}

const MIGRATIONS: &[Migration] = &[
    migration!(1, "init", "0001_init.sql"),
    migration!(2, "operations", "0002_operations.sql"),
    migration!(3, "pushes", "0003_pushes.sql"),
    migration!(4, "idempotency", "0004_idempotency.sql"),
    migration!(5, "leases", "0005_leases.sql"),
    migration!(6, "ipn", "0006_ipn.sql"),
    migration!(7, "recurring", "0007_recurring.sql"),
    migration!(8, "search", "0008_search.sql"),
];

/// Applies the migrations `conn`'s file lacks.
pub(crate) fn run(conn: &Connection) -> Result<(), StoreError> {
    kessai_sqlite::migrate(conn, MIGRATIONS).map_err(|e| match e {
        MigrateError::Newer(version) => StoreError::NewerSchema(version),
        MigrateError::Sqlite(e) => e.into(),
        e => StoreError::Database(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    /// Every file of the migrations folder is listed, in order, and nothing else.
    #[test]
    fn every_migration_file_is_listed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
        let (files, listed) = kessai_sqlite::files_and_list(std::path::Path::new(dir), MIGRATIONS);
        assert_eq!(files, listed);
    }
}
