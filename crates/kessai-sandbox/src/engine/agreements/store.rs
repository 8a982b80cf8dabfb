//! All the SQL of the billing-agreement engine: sellers, objects (typed records stored as JSON,
//! read by indexed id), reference ids and the notification outbox.

use super::ids::SellerId;
use super::{Authorization, BillingAgreement, Capture, OrderReference, Refund, Seller, Timestamp};
use kessai_core::{Currency, Secret};
use serde::de::DeserializeOwned;
use sqlx::{Row, SqlitePool};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
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

#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens the emulator's file (its migrations, this engine's included, already ran).
    pub async fn open(storage: &crate::db::Storage) -> Result<Store, StoreError> {
        let (options, pool) = storage.connect_options(4)?;
        let pool = pool.connect_with(options).await?;
        Ok(Store { pool })
    }

    pub async fn insert_seller(&self, seller: &Seller, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO mws_sellers(seller_id, access_key, secret_key, lwa_client_id, currency, ipn_url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(seller.id().as_str())
            .bind(seller.access_key())
            .bind(seller.secret_key().expose())
            .bind(seller.lwa_client_id())
            .bind(seller.currency().code())
            .bind(seller.ipn_url())
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn seller_where(&self, column: &str, value: &str) -> Result<Option<Seller>, StoreError> {
        let sql = format!("SELECT seller_id, access_key, secret_key, lwa_client_id, currency, ipn_url FROM mws_sellers WHERE {column} = ?");
        let Some(row) = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let id: String = row.try_get(0)?;
        let currency: String = row.try_get(4)?;
        let corrupt = |detail: &str| StoreError::Corrupt {
            kind: "seller",
            id: id.clone(),
            detail: detail.to_owned(),
        };
        Ok(Some(Seller::new(
            SellerId::lookup(&id).ok_or_else(|| corrupt("bad id"))?,
            row.try_get(1)?,
            Secret::new(row.try_get(2)?),
            row.try_get(3)?,
            Currency::parse(&currency).ok_or_else(|| corrupt("bad currency"))?,
            row.try_get(5)?,
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
        let done = sqlx::query("UPDATE mws_sellers SET ipn_url = ? WHERE seller_id = ?")
            .bind(url)
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn load<T: DeserializeOwned>(
        &self,
        kind: Kind,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let json: Option<String> =
            sqlx::query_scalar("SELECT json FROM mws_objects WHERE kind = ? AND id = ?")
                .bind(kind.as_str())
                .bind(id)
                .fetch_optional(&self.pool)
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
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM mws_objects WHERE kind = ? AND id = ?")
                .bind(kind.as_str())
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        Ok(n > 0)
    }

    /// Whether anything falls due at `now` (cheap: the `due_at` index).
    pub async fn any_due(&self, now: Timestamp) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 FROM mws_objects WHERE due_at IS NOT NULL AND due_at <= ? LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// The objects that fall due at `now`, earliest first (at most `limit`).
    pub async fn due(&self, now: Timestamp, limit: i64) -> Result<Vec<(Kind, String)>, StoreError> {
        let rows = sqlx::query("SELECT kind, id FROM mws_objects WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at LIMIT ?")
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let kind: String = r.try_get(0)?;
            if let Some(kind) = Kind::parse(&kind) {
                out.push((kind, r.try_get(1)?));
            }
        }
        Ok(out)
    }

    pub async fn reference(
        &self,
        seller: &SellerId,
        reference_id: &str,
    ) -> Result<Option<ReferenceRow>, StoreError> {
        let Some(r) = sqlx::query("SELECT kind, object_id, fingerprint FROM mws_reference_ids WHERE seller_id = ? AND reference_id = ?")
            .bind(seller.as_str())
            .bind(reference_id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let kind: String = r.try_get(0)?;
        let kind = Kind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
            kind: "reference id",
            id: reference_id.to_owned(),
            detail: format!("unknown kind {kind}"),
        })?;
        Ok(Some(ReferenceRow {
            seller: seller.clone(),
            reference_id: reference_id.to_owned(),
            kind,
            object_id: r.try_get(1)?,
            fingerprint: r.try_get(2)?,
        }))
    }

    /// Writes the records, reference ids and notifications of one change in one transaction.
    pub async fn write(&self, write: &Write) -> Result<(), StoreError> {
        if write.records.is_empty() && write.references.is_empty() && write.outbox.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for r in &write.records {
            let json = r.json().map_err(|e| StoreError::Corrupt {
                kind: r.kind().as_str(),
                id: r.id().to_owned(),
                detail: e.to_string(),
            })?;
            sqlx::query("INSERT INTO mws_objects(kind, id, seller_id, json, due_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(kind, id) DO UPDATE SET json = excluded.json, due_at = excluded.due_at")
                .bind(r.kind().as_str())
                .bind(r.id())
                .bind(r.seller().as_str())
                .bind(json)
                .bind(r.due_at())
                .execute(&mut *tx)
                .await?;
        }
        for f in &write.references {
            sqlx::query("INSERT INTO mws_reference_ids(seller_id, reference_id, kind, object_id, fingerprint) VALUES (?, ?, ?, ?, ?)")
                .bind(f.seller.as_str())
                .bind(&f.reference_id)
                .bind(f.kind.as_str())
                .bind(&f.object_id)
                .bind(&f.fingerprint)
                .execute(&mut *tx)
                .await?;
        }
        for n in &write.outbox {
            sqlx::query("INSERT INTO mws_outbox(id, seller_id, url, notification_type, object_id, body, status, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)")
                .bind(&n.id)
                .bind(n.seller.as_str())
                .bind(&n.url)
                .bind(&n.notification_type)
                .bind(&n.object_id)
                .bind(&n.body)
                .bind(n.created_at)
                .bind(n.created_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn due_notifications(&self, now: i64) -> Result<Vec<DueRow>, StoreError> {
        let rows = sqlx::query("SELECT id, url, body, attempts FROM mws_outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, rowid LIMIT 32")
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DueRow {
                    id: r.try_get(0)?,
                    url: r.try_get(1)?,
                    body: r.try_get(2)?,
                    attempts: r.try_get(3)?,
                })
            })
            .collect()
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
        match (error, retry_at) {
            (None, _) => {
                sqlx::query("UPDATE mws_outbox SET status = 'delivered', attempts = ?, last_error = NULL, delivered_at = ? WHERE id = ?")
                    .bind(attempts)
                    .bind(now)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
            }
            (Some(e), retry) => {
                sqlx::query("UPDATE mws_outbox SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ?")
                    .bind(if retry.is_some() { "pending" } else { "failed" })
                    .bind(attempts)
                    .bind(e)
                    .bind(retry.unwrap_or(now))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn notifications(&self, seller: &SellerId) -> Result<Vec<ListedRow>, StoreError> {
        let rows = sqlx::query("SELECT id, seller_id, url, notification_type, object_id, status, attempts, last_error, body FROM mws_outbox WHERE seller_id = ? ORDER BY created_at, rowid")
            .bind(seller.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ListedRow {
                    id: r.try_get(0)?,
                    seller_id: r.try_get(1)?,
                    url: r.try_get(2)?,
                    notification_type: r.try_get(3)?,
                    object_id: r.try_get(4)?,
                    status: r.try_get(5)?,
                    attempts: r.try_get(6)?,
                    last_error: r.try_get(7)?,
                    body: r.try_get(8)?,
                })
            })
            .collect()
    }
}
