//! The emulator's SQLite file: the engine's records, loaded on demand (by id, with the records
//! their rules read) and written with the notifications a change causes in one transaction per
//! change. Nothing is read at start but merchants, keys and settings.

use crate::engine::clock::timestamp;
use crate::engine::{Changed, Engine, Fetch, Kind, Merchant, MerchantId, RecordError};
use kessai_core::Currency;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("merchant {0} has an unknown ledger currency")]
    Currency(String),
}

#[derive(Debug, Clone)]
pub struct Db {
    pool: SqlitePool,
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
pub struct Remembered<'a> {
    pub merchant_id: &'a str,
    pub key: &'a str,
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

/// Where the emulator keeps its records.
#[derive(Debug, Clone)]
pub enum Storage {
    /// Its SQLite file (WAL): what every emulator uses.
    File(PathBuf),
    /// An SQLite database in this process's memory, under this name (SQLite's `memdb` VFS): no
    /// file, no fsync, gone when the process ends. Only for the null Amazon of `kessai bench`.
    Memory(String),
}

impl Storage {
    /// How to connect, and a pool of at most `max_connections` (one, kept open, in memory).
    pub fn connect_options(
        &self,
        max_connections: u32,
    ) -> Result<(SqliteConnectOptions, SqlitePoolOptions), sqlx::Error> {
        match self {
            Storage::File(path) => Ok((
                SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(std::time::Duration::from_secs(5)),
                SqlitePoolOptions::new().max_connections(max_connections),
            )),
            // One connection for the server's life: the database lives while one is open, and a
            // single connection never waits on another's lock. A name starting with `/` is shared
            // by the connections of this process that use it (the face that keeps its own pool).
            Storage::Memory(name) => Ok((
                SqliteConnectOptions::new()
                    .filename(format!("/{name}"))
                    .vfs("memdb")
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Memory)
                    .synchronous(SqliteSynchronous::Off)
                    .busy_timeout(std::time::Duration::from_secs(5)),
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None),
            )),
        }
    }
}

impl Db {
    pub async fn open(storage: &Storage) -> Result<Db, DbError> {
        let (options, pool) = storage.connect_options(8)?;
        let pool = pool.connect_with(options).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Db { pool })
    }

    /// Every registered merchant.
    pub async fn merchants(&self) -> Result<Vec<Merchant>, DbError> {
        let rows =
            sqlx::query("SELECT merchant_id, store_id, region, ledger_currency FROM merchants")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|row| {
                let id: String = row.try_get(0)?;
                let code: String = row.try_get(3)?;
                let currency =
                    Currency::parse(&code).ok_or_else(|| DbError::Currency(id.clone()))?;
                Ok(Merchant::new(
                    MerchantId::new(id),
                    row.try_get(1)?,
                    row.try_get(2)?,
                    currency,
                ))
            })
            .collect()
    }

    /// Puts one stored record into the engine; answers whether it was found and its parent.
    async fn put(
        &self,
        engine: &mut Engine,
        kind: Kind,
        id: &str,
    ) -> Result<Option<Option<String>>, DbError> {
        let row = sqlx::query("SELECT parent_id, json FROM records WHERE kind = ? AND id = ?")
            .bind(kind.as_str())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let parent: Option<String> = row.try_get(0)?;
        let json: String = row.try_get(1)?;
        engine.put(kind, id, &json)?;
        Ok(Some(parent))
    }

    /// Puts the records of `kind` that belong to `parent` into the engine.
    async fn put_children(
        &self,
        engine: &mut Engine,
        kind: Kind,
        parent: &str,
    ) -> Result<(), DbError> {
        let rows = sqlx::query("SELECT id, json FROM records WHERE kind = ? AND parent_id = ?")
            .bind(kind.as_str())
            .bind(parent)
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let id: String = row.try_get(0)?;
            let json: String = row.try_get(1)?;
            engine.put(kind, &id, &json)?;
        }
        Ok(())
    }

    /// Loads what an operation needs (see [`Fetch`]) into the engine's working set.
    pub async fn fetch(&self, engine: &mut Engine, what: &Fetch) -> Result<(), DbError> {
        match what {
            Fetch::Session(id) => {
                self.put(engine, Kind::CheckoutSession, id.as_str()).await?;
            }
            Fetch::Permission(id) => {
                self.put(engine, Kind::ChargePermission, id.as_str())
                    .await?;
                self.put_children(engine, Kind::Charge, id.as_str()).await?;
            }
            Fetch::Charge(id) => {
                if let Some(Some(permission)) = self.put(engine, Kind::Charge, id.as_str()).await? {
                    self.put(engine, Kind::ChargePermission, &permission)
                        .await?;
                }
                self.put_children(engine, Kind::Refund, id.as_str()).await?;
            }
            Fetch::Refund(id) => {
                if let Some(Some(charge)) = self.put(engine, Kind::Refund, id.as_str()).await? {
                    self.put(engine, Kind::Charge, &charge).await?;
                }
            }
        }
        Ok(())
    }

    /// Loads only the record `what` names, as last committed (for reads, without the lock).
    pub async fn fetch_one(&self, engine: &mut Engine, what: &Fetch) -> Result<(), DbError> {
        let (kind, id) = match what {
            Fetch::Session(id) => (Kind::CheckoutSession, id.as_str()),
            Fetch::Permission(id) => (Kind::ChargePermission, id.as_str()),
            Fetch::Charge(id) => (Kind::Charge, id.as_str()),
            Fetch::Refund(id) => (Kind::Refund, id.as_str()),
        };
        self.put(engine, kind, id).await?;
        Ok(())
    }

    /// Whether some record waits for a transition due at `now`.
    pub async fn has_due(&self, now: i64) -> Result<bool, DbError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM records WHERE deadline IS NOT NULL AND deadline <= ? LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Loads up to `limit` records whose transition is due at `now` (earliest first), with the
    /// records their transitions change or report (a charge's permission, a refund's charge).
    /// Answers how many were due.
    pub async fn fetch_due(
        &self,
        engine: &mut Engine,
        now: i64,
        limit: i64,
    ) -> Result<usize, DbError> {
        let rows = sqlx::query("SELECT kind, id, parent_id, json FROM records WHERE deadline IS NOT NULL AND deadline <= ? ORDER BY deadline LIMIT ?")
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            let kind: String = row.try_get(0)?;
            let id: String = row.try_get(1)?;
            let parent: Option<String> = row.try_get(2)?;
            let json: String = row.try_get(3)?;
            let Some(kind) = Kind::parse(&kind) else {
                continue;
            };
            engine.put(kind, &id, &json)?;
            let parent_kind = match kind {
                Kind::Charge => Some(Kind::ChargePermission),
                Kind::Refund => Some(Kind::Charge),
                _ => None,
            };
            if let (Some(parent_kind), Some(parent)) = (parent_kind, parent) {
                self.put(engine, parent_kind, &parent).await?;
            }
        }
        Ok(rows.len())
    }

    /// Whether the session exists.
    pub async fn session_exists(&self, id: &str) -> Result<bool, DbError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM records WHERE kind = ? AND id = ?")
                .bind(Kind::CheckoutSession.as_str())
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// Writes the changed records, the idempotent answer that reports them if any, and the
    /// notifications of what changed on its own, in one transaction: a replay can never find the
    /// answer without the change, and no change is stored without its notifications.
    pub async fn save(
        &self,
        engine: &Engine,
        changed: &[Changed],
        answer: Option<&Remembered<'_>>,
        outbox: &[Outgoing],
    ) -> Result<(), DbError> {
        if changed.is_empty() && answer.is_none() && outbox.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for n in outbox {
            sqlx::query("INSERT INTO notifications(id, merchant_id, url, object_type, object_id, body, status, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)")
                .bind(&n.id)
                .bind(&n.merchant_id)
                .bind(&n.url)
                .bind(&n.object_type)
                .bind(&n.object_id)
                .bind(&n.body)
                .bind(n.created_unix)
                .bind(timestamp(n.created_unix))
                .execute(&mut *tx)
                .await?;
        }
        if let Some(a) = answer {
            sqlx::query("INSERT OR REPLACE INTO idempotency(merchant_id, key, fingerprint, status, body, created_at) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(a.merchant_id)
                .bind(a.key)
                .bind(&a.row.fingerprint)
                .bind(i64::from(a.row.status))
                .bind(&a.row.body)
                .bind(&a.created_at)
                .execute(&mut *tx)
                .await?;
        }
        for c in changed {
            let Some(r) = engine.stored(c)? else {
                continue;
            };
            sqlx::query("INSERT INTO records(kind, id, merchant_id, parent_id, deadline, json) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(kind, id) DO UPDATE SET deadline = excluded.deadline, json = excluded.json")
                .bind(r.kind.as_str())
                .bind(&r.id)
                .bind(&r.merchant_id)
                .bind(&r.parent_id)
                .bind(r.deadline)
                .bind(&r.json)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn insert_merchant_and_key(
        &self,
        merchant: &Merchant,
        key: &KeyRow,
        now: &str,
    ) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT OR IGNORE INTO merchants(merchant_id, store_id, region, ledger_currency, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(merchant.id().as_str())
            .bind(merchant.store_id())
            .bind(merchant.region())
            .bind(merchant.currency().code())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO public_keys(public_key_id, merchant_id, pem, fingerprint, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&key.public_key_id)
            .bind(&key.merchant_id)
            .bind(&key.pem)
            .bind(&key.fingerprint)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn keys(&self) -> Result<Vec<KeyRow>, DbError> {
        let rows =
            sqlx::query("SELECT public_key_id, merchant_id, pem, fingerprint FROM public_keys")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|r| {
                Ok(KeyRow {
                    public_key_id: r.try_get(0)?,
                    merchant_id: r.try_get(1)?,
                    pem: r.try_get(2)?,
                    fingerprint: r.try_get(3)?,
                })
            })
            .collect()
    }

    pub async fn idempotent(
        &self,
        merchant_id: &str,
        key: &str,
    ) -> Result<Option<IdemRow>, DbError> {
        let row = sqlx::query(
            "SELECT fingerprint, status, body FROM idempotency WHERE merchant_id = ? AND key = ?",
        )
        .bind(merchant_id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(IdemRow {
                fingerprint: r.try_get(0)?,
                status: u16::try_from(r.try_get::<i64, _>(1)?).unwrap_or(200),
                body: r.try_get(2)?,
            })
        })
        .transpose()
    }

    pub async fn setting(&self, name: &str) -> Result<Option<String>, DbError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), DbError> {
        sqlx::query("INSERT OR REPLACE INTO settings(name, value) VALUES (?, ?)")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
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
    pub async fn notification_url(&self, merchant_id: &str) -> Result<Option<String>, sqlx::Error> {
        let url: Option<Option<String>> =
            sqlx::query_scalar("SELECT notification_url FROM merchants WHERE merchant_id = ?")
                .bind(merchant_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(url.flatten())
    }

    pub async fn set_notification_url(
        &self,
        merchant_id: &str,
        url: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE merchants SET notification_url = ? WHERE merchant_id = ?")
            .bind(url)
            .bind(merchant_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn due_notifications(&self, now: i64) -> Result<Vec<DueNotification>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, url, body, attempts FROM notifications WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT 32")
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DueNotification {
                    id: r.try_get(0)?,
                    url: r.try_get(1)?,
                    body: r.try_get(2)?,
                    attempts: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// Records one attempt: delivered, or retried after a backoff, or failed for good.
    pub async fn record_attempt(
        &self,
        id: &str,
        attempts: i64,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        match error {
            None => {
                sqlx::query("UPDATE notifications SET status = 'delivered', attempts = ?, last_error = NULL, delivered_at = ? WHERE id = ?")
                    .bind(attempts)
                    .bind(timestamp(now))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
            }
            Some(e) => {
                let status = if attempts >= crate::notify::MAX_ATTEMPTS {
                    "failed"
                } else {
                    "pending"
                };
                sqlx::query("UPDATE notifications SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ?")
                    .bind(status)
                    .bind(attempts)
                    .bind(e)
                    .bind(now + crate::notify::backoff(attempts - 1))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn notifications(
        &self,
        merchant_id: Option<&str>,
    ) -> Result<Vec<crate::notify::Listed>, sqlx::Error> {
        let rows = sqlx::query("SELECT * FROM notifications WHERE (? IS NULL OR merchant_id = ?) ORDER BY created_at, rowid")
            .bind(merchant_id)
            .bind(merchant_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(crate::notify::listed_from_row).collect()
    }

    /// Sends a notification again now (whatever its status).
    pub async fn resend(&self, id: &str, now: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE notifications SET status = 'pending', next_attempt_at = ? WHERE id = ?",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
