//! Migrations: a schema's SQL files applied in order, each once, recorded in the table
//! `_sqlx_migrations` exactly as sqlx's migrator records them (version, description, success, the
//! SHA-384 of the SQL, how long it took), so a file migrated by either opens with the other.
//! A file with a migration the caller does not know is refused ([`MigrateError::Newer`]) instead
//! of used with a schema the caller does not know.

use rusqlite::Connection;
use sha2::{Digest, Sha384};
use std::time::Instant;

/// One migration: its number, its description (the file name's words) and its SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The file has this migration, which the caller does not know: a newer program wrote it.
    #[error("the database has migration {0}, which this program does not know")]
    Newer(i64),
    #[error("migration {0} failed part-way earlier; the file needs repair by hand")]
    Dirty(i64),
    #[error("migration {version} ({description}) was changed after this file was migrated")]
    Changed {
        version: i64,
        description: &'static str,
    },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Applies the `migrations` `conn`'s file lacks, all in one transaction (a second process
/// opening the same new file waits, then finds them applied).
pub fn migrate(conn: &Connection, migrations: &[Migration]) -> Result<(), MigrateError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match apply_missing(conn, migrations) {
        Ok(()) => Ok(conn.execute_batch("COMMIT")?),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn apply_missing(conn: &Connection, migrations: &[Migration]) -> Result<(), MigrateError> {
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
            return Err(MigrateError::Dirty(*version));
        }
        let Some(known) = migrations.iter().find(|m| m.version == *version) else {
            return Err(MigrateError::Newer(*version));
        };
        if Sha384::digest(known.sql.as_bytes()).as_slice() != checksum.as_slice() {
            return Err(MigrateError::Changed {
                version: *version,
                description: known.description,
            });
        }
    }
    for m in migrations {
        if applied.iter().any(|(version, _, _)| *version == m.version) {
            continue;
        }
        let started = Instant::now();
        conn.execute_batch(m.sql)?;
        let took = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
        conn.execute(
            "INSERT INTO _sqlx_migrations(version, description, success, checksum, execution_time) VALUES (?1, ?2, 1, ?3, ?4)",
            rusqlite::params![
                m.version,
                m.description,
                Sha384::digest(m.sql.as_bytes()).as_slice(),
                took
            ],
        )?;
    }
    Ok(())
}

/// The `.sql` files of folder `dir`, sorted, and the file names `migrations` stand for
/// (`0001_init.sql`), for a test that the list matches the folder.
pub fn files_and_list(
    dir: &std::path::Path,
    migrations: &[Migration],
) -> (Vec<String>, Vec<String>) {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    files.sort();
    let listed = migrations
        .iter()
        .map(|m| format!("{:04}_{}.sql", m.version, m.description.replace(' ', "_")))
        .collect();
    (files, listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &[Migration] = &[Migration {
        version: 1,
        description: "init",
        sql: "CREATE TABLE a (n INTEGER);",
    }];
    const TWO: &[Migration] = &[
        ONE[0],
        Migration {
            version: 2,
            description: "more",
            sql: "CREATE TABLE b (n INTEGER);",
        },
    ];

    fn tables(conn: &Connection) -> Vec<String> {
        let mut statement = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY name")
            .unwrap();
        let rows = statement.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<Vec<String>, _>>().unwrap()
    }

    #[test]
    fn applies_each_migration_once() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn, ONE).unwrap();
        migrate(&conn, TWO).unwrap();
        migrate(&conn, TWO).unwrap();
        assert_eq!(tables(&conn), ["a", "b"]);
    }

    /// A migration changed after it was applied is refused, and nothing of the later ones runs.
    #[test]
    fn a_changed_migration_is_refused_and_nothing_runs() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn, ONE).unwrap();
        let changed = [
            Migration {
                sql: "CREATE TABLE a (n INTEGER, m INTEGER);",
                ..ONE[0]
            },
            TWO[1],
        ];
        let refused = migrate(&conn, &changed);
        assert!(
            matches!(refused, Err(MigrateError::Changed { version: 1, .. })),
            "{refused:?}"
        );
        assert_eq!(tables(&conn), ["a"]);
    }

    /// A migration recorded as failed part-way, or one this program does not know, is refused
    /// and nothing runs.
    #[test]
    fn a_dirty_or_unknown_record_is_refused_and_nothing_runs() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn, ONE).unwrap();
        conn.execute("UPDATE _sqlx_migrations SET success = 0", [])
            .unwrap();
        let refused = migrate(&conn, TWO);
        assert!(
            matches!(refused, Err(MigrateError::Dirty(1))),
            "{refused:?}"
        );
        assert_eq!(tables(&conn), ["a"]);

        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn, TWO).unwrap();
        let refused = migrate(&conn, ONE);
        assert!(
            matches!(refused, Err(MigrateError::Newer(2))),
            "{refused:?}"
        );
    }
}
