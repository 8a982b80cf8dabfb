//! All the SQL of the billing-agreement engine: sellers, objects (typed records stored as JSON,
//! read by indexed id), reference ids and the notification outbox. Each method is one closure on
//! the emulator's database threads (shared with its `Db`): a read on a reader, a write on the
//! writer, answered after its commit.

use super::ids::SellerId;
use super::{Authorization, BillingAgreement, Capture, OrderReference, Refund, Seller, Timestamp};
use kessai_core::{Currency, Secret};
use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The database's threads (stopped, a closure that panicked) or its batch's commit.
    #[error("database: {0}")]
    Threads(#[from] kessai_sqlite::DbError),
    #[error("stored {kind} {id} is unreadable: {detail}")]
    Corrupt {
        kind: &'static str,
        id: String,
        detail: String,
    },
}

/// One stored object.
#[derive(Debug, Clone)]
pub enum Record {
    Agreement(BillingAgreement),
    OrderReference(OrderReference),
    Authorization(Authorization),
    Capture(Capture),
    Refund(Refund),
}

/// The kinds of stored objects, as the `kind` column names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Agreement,
    OrderReference,
    Authorization,
    Capture,
    Refund,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Agreement => "agreement",
            Kind::OrderReference => "order_reference",
            Kind::Authorization => "authorization",
            Kind::Capture => "capture",
            Kind::Refund => "refund",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        [
            Kind::Agreement,
            Kind::OrderReference,
            Kind::Authorization,
            Kind::Capture,
            Kind::Refund,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

impl Record {
    fn kind(&self) -> Kind {
        match self {
            Record::Agreement(_) => Kind::Agreement,
            Record::OrderReference(_) => Kind::OrderReference,
            Record::Authorization(_) => Kind::Authorization,
            Record::Capture(_) => Kind::Capture,
            Record::Refund(_) => Kind::Refund,
        }
    }

    fn id(&self) -> &str {
        match self {
            Record::Agreement(r) => r.id().as_str(),
            Record::OrderReference(r) => r.id().as_str(),
            Record::Authorization(r) => r.id().as_str(),
            Record::Capture(r) => r.id().as_str(),
            Record::Refund(r) => r.id().as_str(),
        }
    }

    fn seller(&self) -> &SellerId {
        match self {
            Record::Agreement(r) => r.seller(),
            Record::OrderReference(r) => r.seller(),
            Record::Authorization(r) => r.seller(),
            Record::Capture(r) => r.seller(),
            Record::Refund(r) => r.seller(),
        }
    }

    fn due_at(&self) -> Option<Timestamp> {
        match self {
            Record::Agreement(r) => r.due_at(),
            Record::OrderReference(r) => r.due_at(),
            Record::Authorization(r) => r.due_at(),
            Record::Capture(r) => r.due_at(),
            Record::Refund(r) => r.due_at(),
        }
    }

    fn json(&self) -> Result<String, serde_json::Error> {
        match self {
            Record::Agreement(r) => serde_json::to_string(r),
            Record::OrderReference(r) => serde_json::to_string(r),
            Record::Authorization(r) => serde_json::to_string(r),
            Record::Capture(r) => serde_json::to_string(r),
            Record::Refund(r) => serde_json::to_string(r),
        }
    }
}

/// A reference id a seller gave an authorization, capture or refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceRow {
    pub seller: SellerId,
    pub reference_id: String,
    pub kind: Kind,
    pub object_id: String,
    pub fingerprint: String,
}

/// A notification to deliver.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: String,
    pub seller: SellerId,
    pub url: String,
    pub notification_type: String,
    pub object_id: String,
    pub body: String,
    /// Wall clock, unix seconds.
    pub created_at: i64,
}

/// A notification due for delivery.
#[derive(Debug, Clone)]
pub struct DueRow {
    pub id: String,
    pub url: String,
    pub body: String,
    pub attempts: i64,
}

/// A notification as the test helpers list it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedRow {
    pub id: String,
    pub seller_id: String,
    pub url: String,
    pub notification_type: String,
    pub object_id: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub body: String,
}

/// What one change writes, in one transaction.
#[derive(Debug, Default)]
pub struct Write {
    pub records: Vec<Record>,
    pub references: Vec<ReferenceRow>,
    pub outbox: Vec<OutboxRow>,
}

/// An object as written: its kind, id, seller, JSON and when it falls due.
type ObjectRow = (Kind, String, String, String, Option<Timestamp>);

/// A seller as stored, before its id and currency are checked.
type SellerRow = (String, String, String, String, String, Option<String>);

#[derive(Debug, Clone)]
pub struct Store {
    db: kessai_sqlite::Db,
}

impl Store {
    /// The store on the emulator's database (its migrations, this engine's included, already ran).
    pub fn new(db: kessai_sqlite::Db) -> Store {
        Store { db }
    }

    pub async fn insert_seller(&self, seller: &Seller, now: Timestamp) -> Result<(), StoreError> {
        let row = (
            seller.id().as_str().to_owned(),
            seller.access_key().to_owned(),
            seller.secret_key().expose().to_owned(),
            seller.lwa_client_id().to_owned(),
            seller.currency().code(),
            seller.ipn_url().map(str::to_owned),
        );
        self.db
            .write(move |conn| {
                conn.prepare_cached("INSERT INTO mws_sellers(seller_id, access_key, secret_key, lwa_client_id, currency, ipn_url, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
                    .execute(params![row.0, row.1, row.2, row.3, row.4, row.5, now])?;
                Ok(())
            })
            .await
    }

    async fn seller_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<Seller>, StoreError> {
        let value = value.to_owned();
        let row: Option<SellerRow> = self
            .db
            .read(move |conn| {
                let sql = format!("SELECT seller_id, access_key, secret_key, lwa_client_id, currency, ipn_url FROM mws_sellers WHERE {column} = ?1");
                Ok::<_, StoreError>(
                    conn.prepare_cached(&sql)?
                        .query_row([value], |r| {
                            Ok((
                                r.get(0)?,
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                            ))
                        })
                        .optional()?,
                )
            })
            .await?;
        let Some((id, access_key, secret_key, lwa_client_id, currency, ipn_url)) = row else {
            return Ok(None);
        };
        let corrupt = |detail: &str| StoreError::Corrupt {
            kind: "seller",
            id: id.clone(),
            detail: detail.to_owned(),
        };
        Ok(Some(Seller::new(
            SellerId::lookup(&id).ok_or_else(|| corrupt("bad id"))?,
            access_key,
            Secret::new(secret_key),
            lwa_client_id,
            Currency::parse(&currency).ok_or_else(|| corrupt("bad currency"))?,
            ipn_url,
        )))
    }

    pub async fn seller_by_access_key(&self, key: &str) -> Result<Option<Seller>, StoreError> {
        self.seller_where("access_key", key).await
    }

    /// The seller whose Login with Amazon client id this is.
    pub async fn seller_by_lwa_client_id(&self, id: &str) -> Result<Option<Seller>, StoreError> {
        self.seller_where("lwa_client_id", id).await
    }

    pub async fn seller(&self, id: &SellerId) -> Result<Option<Seller>, StoreError> {
        self.seller_where("seller_id", id.as_str()).await
    }

    pub async fn set_ipn_url(&self, id: &SellerId, url: Option<&str>) -> Result<bool, StoreError> {
        let (id, url) = (id.as_str().to_owned(), url.map(str::to_owned));
        self.db
            .write(move |conn| {
                let done = conn
                    .prepare_cached("UPDATE mws_sellers SET ipn_url = ?1 WHERE seller_id = ?2")?
                    .execute(params![url, id])?;
                Ok(done == 1)
            })
            .await
    }

    async fn load<T: DeserializeOwned>(
        &self,
        kind: Kind,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let key = id.to_owned();
        let json: Option<String> = self
            .db
            .read(move |conn| {
                Ok::<_, StoreError>(
                    conn.prepare_cached(
                        "SELECT json FROM mws_objects WHERE kind = ?1 AND id = ?2",
                    )?
                    .query_row(params![kind.as_str(), key], |r| r.get(0))
                    .optional()?,
                )
            })
            .await?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| StoreError::Corrupt {
                kind: kind.as_str(),
                id: id.to_owned(),
                detail: e.to_string(),
            })
        })
        .transpose()
    }

    pub async fn agreement(&self, id: &str) -> Result<Option<BillingAgreement>, StoreError> {
        self.load(Kind::Agreement, id).await
    }
    pub async fn order_reference(&self, id: &str) -> Result<Option<OrderReference>, StoreError> {
        self.load(Kind::OrderReference, id).await
    }
    pub async fn authorization(&self, id: &str) -> Result<Option<Authorization>, StoreError> {
        self.load(Kind::Authorization, id).await
    }
    pub async fn capture(&self, id: &str) -> Result<Option<Capture>, StoreError> {
        self.load(Kind::Capture, id).await
    }
    pub async fn refund(&self, id: &str) -> Result<Option<Refund>, StoreError> {
        self.load(Kind::Refund, id).await
    }

    /// Whether an object of `kind` has this id (new ids are checked against it).
    pub async fn exists(&self, kind: Kind, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.db
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT 1 FROM mws_objects WHERE kind = ?1 AND id = ?2")?
                    .exists(params![kind.as_str(), id])?)
            })
            .await
    }

    /// Whether anything falls due at `now` (cheap: the `due_at` index).
    pub async fn any_due(&self, now: Timestamp) -> Result<bool, StoreError> {
        self.db
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT 1 FROM mws_objects WHERE due_at IS NOT NULL AND due_at <= ?1 LIMIT 1",
                    )?
                    .exists([now])?)
            })
            .await
    }

    /// The objects that fall due at `now`, earliest first (at most `limit`).
    pub async fn due(&self, now: Timestamp, limit: i64) -> Result<Vec<(Kind, String)>, StoreError> {
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached("SELECT kind, id FROM mws_objects WHERE due_at IS NOT NULL AND due_at <= ?1 ORDER BY due_at LIMIT ?2")?;
                let rows = statement.query_map(params![now, limit], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (kind, id) = row?;
                    if let Some(kind) = Kind::parse(&kind) {
                        out.push((kind, id));
                    }
                }
                Ok(out)
            })
            .await
    }

    pub async fn reference(
        &self,
        seller: &SellerId,
        reference_id: &str,
    ) -> Result<Option<ReferenceRow>, StoreError> {
        let (seller_id, reference) = (seller.as_str().to_owned(), reference_id.to_owned());
        let row: Option<(String, String, String)> = self
            .db
            .read(move |conn| {
                Ok::<_, StoreError>(
                    conn.prepare_cached("SELECT kind, object_id, fingerprint FROM mws_reference_ids WHERE seller_id = ?1 AND reference_id = ?2")?
                        .query_row(params![seller_id, reference], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })
                        .optional()?,
                )
            })
            .await?;
        let Some((kind, object_id, fingerprint)) = row else {
            return Ok(None);
        };
        let kind = Kind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
            kind: "reference id",
            id: reference_id.to_owned(),
            detail: format!("unknown kind {kind}"),
        })?;
        Ok(Some(ReferenceRow {
            seller: seller.clone(),
            reference_id: reference_id.to_owned(),
            kind,
            object_id,
            fingerprint,
        }))
    }

    /// Writes the records, reference ids and notifications of one change in one write (its
    /// savepoint of the writer's transaction), answered once committed.
    pub async fn write(&self, write: &Write) -> Result<(), StoreError> {
        if write.records.is_empty() && write.references.is_empty() && write.outbox.is_empty() {
            return Ok(());
        }
        let mut objects: Vec<ObjectRow> = Vec::with_capacity(write.records.len());
        for r in &write.records {
            let json = r.json().map_err(|e| StoreError::Corrupt {
                kind: r.kind().as_str(),
                id: r.id().to_owned(),
                detail: e.to_string(),
            })?;
            objects.push((
                r.kind(),
                r.id().to_owned(),
                r.seller().as_str().to_owned(),
                json,
                r.due_at(),
            ));
        }
        let references = write.references.clone();
        let outbox = write.outbox.clone();
        self.db
            .write(move |conn| write_rows(conn, &objects, &references, &outbox))
            .await
    }

    pub async fn due_notifications(&self, now: i64) -> Result<Vec<DueRow>, StoreError> {
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached("SELECT id, url, body, attempts FROM mws_outbox WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, rowid LIMIT 32")?;
                let rows = statement.query_map([now], |r| {
                    Ok(DueRow {
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

    /// Records one delivery attempt: delivered, or retried at `retry_at`, or failed for good.
    pub async fn record_attempt(
        &self,
        id: &str,
        attempts: i64,
        error: Option<&str>,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        let (id, error) = (id.to_owned(), error.map(str::to_owned));
        self.db
            .write(move |conn| {
                match error {
                    None => {
                        conn.prepare_cached("UPDATE mws_outbox SET status = 'delivered', attempts = ?1, last_error = NULL, delivered_at = ?2 WHERE id = ?3")?
                            .execute(params![attempts, now, id])?;
                    }
                    Some(e) => {
                        conn.prepare_cached("UPDATE mws_outbox SET status = ?1, attempts = ?2, last_error = ?3, next_attempt_at = ?4 WHERE id = ?5")?
                            .execute(params![
                                if retry_at.is_some() { "pending" } else { "failed" },
                                attempts,
                                e,
                                retry_at.unwrap_or(now),
                                id
                            ])?;
                    }
                }
                Ok(())
            })
            .await
    }

    pub async fn notifications(&self, seller: &SellerId) -> Result<Vec<ListedRow>, StoreError> {
        let seller = seller.as_str().to_owned();
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached("SELECT id, seller_id, url, notification_type, object_id, status, attempts, last_error, body FROM mws_outbox WHERE seller_id = ?1 ORDER BY created_at, rowid")?;
                let rows = statement.query_map([seller], |r| {
                    Ok(ListedRow {
                        id: r.get(0)?,
                        seller_id: r.get(1)?,
                        url: r.get(2)?,
                        notification_type: r.get(3)?,
                        object_id: r.get(4)?,
                        status: r.get(5)?,
                        attempts: r.get(6)?,
                        last_error: r.get(7)?,
                        body: r.get(8)?,
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }
}

/// The statements of [`Store::write`], on the writer.
fn write_rows(
    conn: &Connection,
    objects: &[ObjectRow],
    references: &[ReferenceRow],
    outbox: &[OutboxRow],
) -> Result<(), StoreError> {
    for (kind, id, seller, json, due_at) in objects {
        conn.prepare_cached("INSERT INTO mws_objects(kind, id, seller_id, json, due_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(kind, id) DO UPDATE SET json = excluded.json, due_at = excluded.due_at")?
            .execute(params![kind.as_str(), id, seller, json, due_at])?;
    }
    for f in references {
        conn.prepare_cached("INSERT INTO mws_reference_ids(seller_id, reference_id, kind, object_id, fingerprint) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![
                f.seller.as_str(),
                f.reference_id,
                f.kind.as_str(),
                f.object_id,
                f.fingerprint
            ])?;
    }
    for n in outbox {
        conn.prepare_cached("INSERT INTO mws_outbox(id, seller_id, url, notification_type, object_id, body, status, attempts, next_attempt_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?8)")?
            .execute(params![
                n.id,
                n.seller.as_str(),
                n.url,
                n.notification_type,
                n.object_id,
                n.body,
                n.created_at,
                n.created_at
            ])?;
    }
    Ok(())
}
