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
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, kessai_sqlite::file_names(MIGRATIONS));
    }
}
