//! The emulator's SQLite file, on `kessai-sqlite`'s threads: the engine's records, loaded on
//! demand (by id, with the records their rules read) and written with the notifications a change
//! causes in one write per change. Nothing is read at start but merchants, keys and settings.
//!
//! Every method is one closure run on the database's threads (`read` on a reader, `write` on the
//! writer, group-committed: atomic in its own savepoint, answered after the commit), whatever
//! the number of statements inside; the closures return plain rows, which the caller puts into
//! the engine ([`Records::put_into`]).

mod migrate;

use crate::engine::clock::timestamp;
use crate::engine::{
    Changed, Engine, Fetch, Kind, Merchant, MerchantId, RecordError, StoredRecord,
};
use kessai_core::Currency;
use kessai_sqlite::{Location, Settings, Synchronous};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The database's threads (stopped, a closure that panicked) or its batch's commit.
    #[error("database: {0}")]
    Threads(#[from] kessai_sqlite::DbError),
    #[error("migration: {0}")]
    Migrate(#[from] kessai_sqlite::MigrateError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("merchant {0} has an unknown ledger currency")]
    Currency(String),
}

#[derive(Debug, Clone)]
pub struct Db {
    db: kessai_sqlite::Db,
}

/// A stored public key.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub public_key_id: String,
    pub merchant_id: String,
    pub pem: String,
    pub fingerprint: String,
}

/// An idempotent answer to store with the change it reports.
#[derive(Debug, Clone)]
pub struct Remembered {
    pub merchant_id: String,
    pub key: String,
    pub row: IdemRow,
    pub created_at: String,
}

/// A stored idempotent answer.
#[derive(Debug, Clone)]
pub struct IdemRow {
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

/// Stored records read from the file, to put into an engine's working set.
#[derive(Debug, Default)]
pub struct Records {
    rows: Vec<(Kind, String, String)>,
}

impl Records {
    /// Puts every record into `engine` (replacing what it held of them).
    pub fn put_into(&self, engine: &mut Engine) -> Result<(), RecordError> {
        for (kind, id, json) in &self.rows {
            engine.put(*kind, id, json)?;
        }
        Ok(())
    }

    /// How many records were read.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Reads the record `kind`/`id`; answers whether it was found and its parent.
    fn add(
        &mut self,
        conn: &Connection,
        kind: Kind,
        id: &str,
    ) -> rusqlite::Result<Option<Option<String>>> {
        let row = conn
            .prepare_cached("SELECT parent_id, json FROM records WHERE kind = ?1 AND id = ?2")?
            .query_row(params![kind.as_str(), id], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?;
        Ok(row.map(|(parent, json)| {
            self.rows.push((kind, id.to_owned(), json));
            parent
        }))
    }

    /// Reads the records of `kind` that belong to `parent`.
    fn add_children(
        &mut self,
        conn: &Connection,
        kind: Kind,
        parent: &str,
    ) -> rusqlite::Result<()> {
        let mut statement =
            conn.prepare_cached("SELECT id, json FROM records WHERE kind = ?1 AND parent_id = ?2")?;
        let rows = statement.query_map(params![kind.as_str(), parent], |r| {
            Ok((kind, r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            self.rows.push(row?);
        }
        Ok(())
    }

    /// Reads what `what` names (see [`Fetch`]).
    fn add_fetch(&mut self, conn: &Connection, what: &Fetch) -> rusqlite::Result<()> {
        match what {
            Fetch::Session(id) => {
                self.add(conn, Kind::CheckoutSession, id.as_str())?;
            }
            Fetch::Permission(id) => {
                self.add(conn, Kind::ChargePermission, id.as_str())?;
                self.add_children(conn, Kind::Charge, id.as_str())?;
            }
            Fetch::Charge(id) => {
                if let Some(Some(permission)) = self.add(conn, Kind::Charge, id.as_str())? {
                    self.add(conn, Kind::ChargePermission, &permission)?;
                }
                self.add_children(conn, Kind::Refund, id.as_str())?;
            }
            Fetch::Refund(id) => {
                if let Some(Some(charge)) = self.add(conn, Kind::Refund, id.as_str())? {
                    self.add(conn, Kind::Charge, &charge)?;
                }
            }
        }
        Ok(())
    }
}

/// Where the emulator keeps its records.
#[derive(Debug, Clone)]
pub enum Storage {
    /// Its SQLite file (WAL, `synchronous = NORMAL`): what every emulator uses.
    File(PathBuf),
    /// An SQLite database in this process's memory, under this name (SQLite's `memdb` VFS): no
    /// file, no fsync, gone when the process ends. Only for the null Amazon of `kessai bench`.
    Memory(String),
}

impl Storage {
    /// How `kessai-sqlite` opens it: in memory, no readers (reads run on the writer, whose
    /// connection keeps the database alive for the server's life).
    pub fn settings(&self) -> Settings {
        let busy_timeout = Duration::from_secs(5);
        match self {
            Storage::File(path) => Settings {
                busy_timeout,
                ..Settings::file(path.clone(), Synchronous::Normal)
            },
            Storage::Memory(name) => Settings {
                location: Location::Memory(name.clone()),
                synchronous: Synchronous::Off,
                readers: 0,
                busy_timeout,
                foreign_keys: true,
            },
        }
    }
}

impl Db {
    /// Opens the file (or memory) and applies the migrations it lacks.
    pub async fn open(storage: &Storage) -> Result<Db, DbError> {
        let db = kessai_sqlite::Db::start(storage.settings(), None, migrate::run).await?;
        Ok(Db { db })
    }

    /// The database's threads, for the MWS face's store, which shares them.
    pub fn sqlite(&self) -> &kessai_sqlite::Db {
        &self.db
    }

    /// Every registered merchant.
    pub async fn merchants(&self) -> Result<Vec<Merchant>, DbError> {
        self.db
            .read(|conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT merchant_id, store_id, region, ledger_currency FROM merchants",
                )?;
                let rows = statement.query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (id, store_id, region, code) = row?;
                    let currency =
                        Currency::parse(&code).ok_or_else(|| DbError::Currency(id.clone()))?;
                    out.push(Merchant::new(
                        MerchantId::new(id),
                        store_id,
                        region,
                        currency,
                    ));
                }
                Ok(out)
            })
            .await
    }

    /// Reads what an operation needs (see [`Fetch`]), every `what` in one call, for the
    /// engine's working set.
    pub async fn fetch(&self, what: &[Fetch]) -> Result<Records, DbError> {
        let what = what.to_vec();
        self.db
            .read(move |conn| {
                let mut records = Records::default();
                for f in &what {
                    records.add_fetch(conn, f)?;
                }
                Ok(records)
            })
            .await
    }

    /// Reads only the record `what` names, as last committed (for reads, without the lock).
    pub async fn fetch_one(&self, what: &Fetch) -> Result<Records, DbError> {
        let (kind, id) = match what {
            Fetch::Session(id) => (Kind::CheckoutSession, id.as_str()),
            Fetch::Permission(id) => (Kind::ChargePermission, id.as_str()),
            Fetch::Charge(id) => (Kind::Charge, id.as_str()),
            Fetch::Refund(id) => (Kind::Refund, id.as_str()),
        };
        let id = id.to_owned();
        self.db
            .read(move |conn| {
                let mut records = Records::default();
                records.add(conn, kind, &id)?;
                Ok(records)
            })
            .await
    }

    /// Whether some record waits for a transition due at `now`.
    pub async fn has_due(&self, now: i64) -> Result<bool, DbError> {
        self.db
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT 1 FROM records WHERE deadline IS NOT NULL AND deadline <= ?1 LIMIT 1",
                    )?
                    .exists([now])?)
            })
            .await
    }

    /// Reads up to `limit` records whose transition is due at `now` (earliest first), with the
    /// records their transitions change or report (a charge's permission, a refund's charge).
    /// Answers them and how many were due.
    pub async fn fetch_due(&self, now: i64, limit: i64) -> Result<(Records, usize), DbError> {
        self.db
            .read(move |conn| {
                let due = {
                    let mut statement = conn.prepare_cached("SELECT kind, id, parent_id, json FROM records WHERE deadline IS NOT NULL AND deadline <= ?1 ORDER BY deadline LIMIT ?2")?;
                    let rows = statement.query_map(params![now, limit], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    })?;
                    rows.collect::<Result<Vec<_>, _>>()?
                };
                let mut records = Records::default();
                for (kind, id, parent, json) in &due {
                    let Some(kind) = Kind::parse(kind) else {
                        continue;
                    };
                    records.rows.push((kind, id.clone(), json.clone()));
                    let parent_kind = match kind {
                        Kind::Charge => Some(Kind::ChargePermission),
                        Kind::Refund => Some(Kind::Charge),
                        _ => None,
                    };
                    if let (Some(parent_kind), Some(parent)) = (parent_kind, parent) {
                        records.add(conn, parent_kind, parent)?;
                    }
                }
                Ok((records, due.len()))
            })
            .await
    }

    /// Whether the session exists.
    pub async fn session_exists(&self, id: &str) -> Result<bool, DbError> {
        let id = id.to_owned();
        self.db
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT 1 FROM records WHERE kind = ?1 AND id = ?2")?
                    .exists(params![Kind::CheckoutSession.as_str(), id])?)
            })
            .await
    }

    /// Writes the changed records, the idempotent answer that reports them if any, and the
    /// notifications of what changed on its own, in one write (its savepoint of the writer's
    /// transaction): a replay can never find the answer without the change, and no change is
    /// stored without its notifications. Answered once it is committed.
    pub async fn save(
        &self,
        engine: &Engine,
        changed: &[Changed],
        answer: Option<Remembered>,
        outbox: Vec<Outgoing>,
    ) -> Result<(), DbError> {
        if changed.is_empty() && answer.is_none() && outbox.is_empty() {
            return Ok(());
        }
        let mut records: Vec<StoredRecord> = Vec::with_capacity(changed.len());
        for c in changed {
            if let Some(r) = engine.stored(c)? {
                records.push(r);
            }
        }
        self.db
            .write(move |conn| {
                for n in &outbox {
                    conn.prepare_cached("INSERT INTO notifications(id, merchant_id, url, object_type, object_id, body, status, attempts, next_attempt_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?8)")?
                        .execute(params![
                            n.id,
                            n.merchant_id,
                            n.url,
                            n.object_type,
                            n.object_id,
                            n.body,
                            n.created_unix,
                            timestamp(n.created_unix)
                        ])?;
                }
                if let Some(a) = &answer {
                    conn.prepare_cached("INSERT OR REPLACE INTO idempotency(merchant_id, key, fingerprint, status, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
                        .execute(params![
                            a.merchant_id,
                            a.key,
                            a.row.fingerprint,
                            i64::from(a.row.status),
                            a.row.body,
                            a.created_at
                        ])?;
                }
                for r in &records {
                    conn.prepare_cached("INSERT INTO records(kind, id, merchant_id, parent_id, deadline, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(kind, id) DO UPDATE SET deadline = excluded.deadline, json = excluded.json")?
                        .execute(params![
                            r.kind.as_str(),
                            r.id,
                            r.merchant_id,
                            r.parent_id,
                            r.deadline,
                            r.json
                        ])?;
                }
                Ok(())
            })
            .await
    }

    pub async fn insert_merchant_and_key(
        &self,
        merchant: &Merchant,
        key: &KeyRow,
        now: &str,
    ) -> Result<(), DbError> {
        let merchant = merchant.clone();
        let key = key.clone();
        let now = now.to_owned();
        self.db
            .write(move |conn| {
                conn.prepare_cached("INSERT OR IGNORE INTO merchants(merchant_id, store_id, region, ledger_currency, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
                    .execute(params![
                        merchant.id().as_str(),
                        merchant.store_id(),
                        merchant.region(),
                        merchant.currency().code(),
                        now
                    ])?;
                conn.prepare_cached("INSERT INTO public_keys(public_key_id, merchant_id, pem, fingerprint, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
                    .execute(params![
                        key.public_key_id,
                        key.merchant_id,
                        key.pem,
                        key.fingerprint,
                        now
                    ])?;
                Ok(())
            })
            .await
    }

    pub async fn keys(&self) -> Result<Vec<KeyRow>, DbError> {
        self.db
            .read(|conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT public_key_id, merchant_id, pem, fingerprint FROM public_keys",
                )?;
                let rows = statement.query_map([], |r| {
                    Ok(KeyRow {
                        public_key_id: r.get(0)?,
                        merchant_id: r.get(1)?,
                        pem: r.get(2)?,
                        fingerprint: r.get(3)?,
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    pub async fn idempotent(
        &self,
        merchant_id: &str,
        key: &str,
    ) -> Result<Option<IdemRow>, DbError> {
        let (merchant_id, key) = (merchant_id.to_owned(), key.to_owned());
        self.db
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT fingerprint, status, body FROM idempotency WHERE merchant_id = ?1 AND key = ?2")?
                    .query_row(params![merchant_id, key], |r| {
                        Ok(IdemRow {
                            fingerprint: r.get(0)?,
                            status: u16::try_from(r.get::<_, i64>(1)?).unwrap_or(200),
                            body: r.get(2)?,
                        })
                    })
                    .optional()?)
            })
            .await
    }

    pub async fn setting(&self, name: &str) -> Result<Option<String>, DbError> {
        let name = name.to_owned();
        self.db
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT value FROM settings WHERE name = ?1")?
                    .query_row([name], |r| r.get(0))
                    .optional()?)
            })
            .await
    }

    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), DbError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.db
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO settings(name, value) VALUES (?1, ?2)",
                )?
                .execute([name, value])?;
                Ok(())
            })
            .await
    }
}

/// A notification due for delivery.
#[derive(Debug, Clone)]
pub struct DueNotification {
    pub id: String,
    pub url: String,
    pub body: String,
    pub attempts: i64,
}

/// A notification to write to the outbox together with the change it reports.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: String,
    pub merchant_id: String,
    pub url: String,
    pub object_type: String,
    pub object_id: String,
    /// The signed SNS envelope.
    pub body: String,
    /// When it was made (and is first due), by the wall clock.
    pub created_unix: i64,
}

impl Db {
    /// The notification URLs of `merchants` (those that have one), in one read.
    pub async fn notification_urls(
        &self,
        merchants: BTreeSet<String>,
    ) -> Result<HashMap<String, String>, DbError> {
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT notification_url FROM merchants WHERE merchant_id = ?1",
                )?;
                let mut urls = HashMap::new();
                for merchant in merchants {
                    let url: Option<Option<String>> =
                        statement.query_row([&merchant], |r| r.get(0)).optional()?;
                    if let Some(url) = url.flatten() {
                        urls.insert(merchant, url);
                    }
                }
                Ok(urls)
            })
            .await
    }

    pub async fn set_notification_url(
        &self,
        merchant_id: &str,
        url: Option<&str>,
    ) -> Result<bool, DbError> {
        let (merchant_id, url) = (merchant_id.to_owned(), url.map(str::to_owned));
        self.db
            .write(move |conn| {
                let done = conn
                    .prepare_cached(
                        "UPDATE merchants SET notification_url = ?1 WHERE merchant_id = ?2",
                    )?
                    .execute(params![url, merchant_id])?;
                Ok(done == 1)
            })
            .await
    }

    pub async fn due_notifications(&self, now: i64) -> Result<Vec<DueNotification>, DbError> {
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached("SELECT id, url, body, attempts FROM notifications WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT 32")?;
                let rows = statement.query_map([now], |r| {
                    Ok(DueNotification {
                        id: r.get(0)?,
                        url: r.get(1)?,
                        body: r.get(2)?,
                        attempts: r.get(3)?,
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    /// Records one attempt: delivered, or retried after a backoff, or failed for good.
    pub async fn record_attempt(
        &self,
        id: &str,
        attempts: i64,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), DbError> {
        let (id, error) = (id.to_owned(), error.map(str::to_owned));
        self.db
            .write(move |conn| {
                match error {
                    None => {
                        conn.prepare_cached("UPDATE notifications SET status = 'delivered', attempts = ?1, last_error = NULL, delivered_at = ?2 WHERE id = ?3")?
                            .execute(params![attempts, timestamp(now), id])?;
                    }
                    Some(e) => {
                        let status = if attempts >= crate::notify::MAX_ATTEMPTS {
                            "failed"
                        } else {
                            "pending"
                        };
                        conn.prepare_cached("UPDATE notifications SET status = ?1, attempts = ?2, last_error = ?3, next_attempt_at = ?4 WHERE id = ?5")?
                            .execute(params![
                                status,
                                attempts,
                                e,
                                now + crate::notify::backoff(attempts - 1),
                                id
                            ])?;
                    }
                }
                Ok(())
            })
            .await
    }

    pub async fn notifications(
        &self,
        merchant_id: Option<&str>,
    ) -> Result<Vec<crate::notify::Listed>, DbError> {
        let merchant_id = merchant_id.map(str::to_owned);
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached("SELECT * FROM notifications WHERE (?1 IS NULL OR merchant_id = ?1) ORDER BY created_at, rowid")?;
                let rows = statement.query_map([merchant_id], crate::notify::listed_from_row)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    /// Sends a notification again now (whatever its status).
    pub async fn resend(&self, id: &str, now: i64) -> Result<bool, DbError> {
        let id = id.to_owned();
        self.db
            .write(move |conn| {
                let done = conn
                    .prepare_cached(
                        "UPDATE notifications SET status = 'pending', next_attempt_at = ?1 WHERE id = ?2",
                    )?
                    .execute(params![now, id])?;
                Ok(done == 1)
            })
            .await
    }
}
