//! The SQLite schema's migrations, applied when a store opens its file.
//!
//! The record of applied migrations is the table `_sqlx_migrations`, kept exactly as earlier
//! Kessai versions kept it (one row per migration: version, description, success, the SHA-384 of
//! its SQL, how long it took), so a file written by any Kessai opens with any other: one that
//! knows fewer migrations refuses a file with more ([`StoreError::NewerSchema`]) instead of
//! running on a schema it does not know.

use crate::StoreError;
use rusqlite::Connection;
use sha2::{Digest, Sha384};
use std::time::Instant;

struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

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

/// Applies the migrations `conn`'s file lacks, all in one transaction (a second process opening
/// the same new file waits, then finds them applied).
pub(crate) fn run(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match apply_missing(conn) {
        Ok(()) => Ok(conn.execute_batch("COMMIT")?),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn apply_missing(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        )",
    )?;
    let applied = {
        let mut statement = conn
            .prepare("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    for (version, success, checksum) in &applied {
        if !success {
            return Err(StoreError::Database(format!(
                "migration {version} failed part-way earlier; the file needs repair by hand"
            )));
        }
        let Some(known) = MIGRATIONS.iter().find(|m| m.version == *version) else {
            return Err(StoreError::NewerSchema(*version));
        };
        if Sha384::digest(known.sql.as_bytes()).as_slice() != checksum.as_slice() {
            return Err(StoreError::Database(format!(
                "migration {version} ({}) was changed after this file was migrated",
                known.description
            )));
        }
    }
    for m in MIGRATIONS {
        if applied.iter().any(|(version, _, _)| *version == m.version) {
            continue;
        }
        let started = Instant::now();
        conn.execute_batch(m.sql)?;
        let took = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
        conn.execute(
            "INSERT INTO _sqlx_migrations(version, description, success, checksum, execution_time) VALUES (?1, ?2, 1, ?3, ?4)",
            rusqlite::params![m.version, m.description, Sha384::digest(m.sql.as_bytes()).as_slice(), took],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    /// Every file of the migrations folder is listed, in order, and nothing else.
    #[test]
    fn every_migration_file_is_listed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{:04}_{}.sql", m.version, m.description.replace(' ', "_")))
            .collect();
        assert_eq!(files, listed);
    }
}
