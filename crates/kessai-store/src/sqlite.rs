//! The SQLite backend. All SQL of this backend lives here.

use crate::{
    AmazonOptions, ConfirmScreen, HistoryEntry, KeyClaim, MerchantRecord, OperationEnd,
    OperationRecord, OrderRecord, PushEnd, PushFilter, PushRecord, RefundRecord, Store, StoreError,
    Unit, Write,
};
use async_trait::async_trait;
use kessai_core::{
    Consent, Intent, MerchantCcid, OperationKind, OperationStatus, Order, OrderId, OrderState,
    PushKind, PushStatus, Secret, Yen,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::SqliteConnection;
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod group_commit;
mod search;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Where `apply` sends its units: one transaction and one fsync for the units waiting
    /// together ([`group_commit`]).
    committer: group_commit::Committer,
    /// Transactions committed through this store's connections (a benchmark's measure).
    commits: Arc<AtomicU64>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies the migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a state change is on disk before the answer that reports it leaves.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let commits = Arc::new(AtomicU64::new(0));
        let counter = commits.clone();
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .after_connect(move |conn, _meta| {
                let counter = counter.clone();
                Box::pin(async move {
                    conn.lock_handle().await?.set_commit_hook(move || {
                        counter.fetch_add(1, Ordering::Relaxed);
                        true
                    });
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let committer = group_commit::Committer::start(pool.clone());
        Ok(SqliteStore {
            pool,
            committer,
            commits,
        })
    }

    /// Transactions committed so far (each statement outside a transaction is one), counted as
    /// SQLite starts each commit.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

fn to_i64(y: Yen) -> i64 {
    i64::try_from(y.get()).unwrap_or(i64::MAX)
}

fn yen(row: &SqliteRow, col: &str) -> Result<Yen, StoreError> {
    let v: i64 = row.try_get(col)?;
    u64::try_from(v)
        .map(Yen::new)
        .map_err(|_| StoreError::Corrupt(format!("{col} is negative")))
}

fn order_from_row(row: &SqliteRow) -> Result<OrderRecord, StoreError> {
    let state: String = row.try_get("state")?;
    let state = OrderState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown state {state}")))?;
    let merchant: String = row.try_get("merchant_ccid")?;
    let order_id: String = row.try_get("order_id")?;
    Ok(OrderRecord {
        merchant: MerchantCcid::parse(&merchant).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        order_id: OrderId::parse(&order_id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        public_ref: row.try_get("public_ref")?,
        dummy: row.try_get::<i64, _>("dummy")? != 0,
        order: Order {
            state,
            amount: yen(row, "amount")?,
            authorized: yen(row, "authorized")?,
            captured: yen(row, "captured")?,
            refunded: yen(row, "refunded")?,
        },
        with_capture: row.try_get::<i64, _>("with_capture")? != 0,
        note_to_buyer: row.try_get("note_to_buyer")?,
        success_url: row.try_get("success_url")?,
        cancel_url: row.try_get("cancel_url")?,
        error_url: row.try_get("error_url")?,
        authorize_push_url: row.try_get("authorize_push_url")?,
        capture_push_url: row.try_get("capture_push_url")?,
        cancel_push_url: row.try_get("cancel_push_url")?,
        checkout_session_id: row.try_get("checkout_session_id")?,
        charge_permission_id: row.try_get("charge_permission_id")?,
        charge_id: row.try_get("charge_id")?,
        in_flight: row.try_get("in_flight")?,
        consent: consent_from_row(row)?,
        original_order_id: row
            .try_get::<Option<String>, _>("original_order_id")?
            .map(|o| OrderId::parse(&o).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()?,
        confirm_screen: match (
            row.try_get::<i64, _>("pay_confirm_screen_type")?,
            row.try_get::<Option<String>, _>("pay_confirm_screen_url")?,
        ) {
            (0, _) => ConfirmScreen::Gateway,
            (1, Some(url)) => ConfirmScreen::Merchant { url },
            (t, _) => {
                return Err(StoreError::Corrupt(format!(
                    "pay_confirm_screen_type {t} without its URL"
                )))
            }
        },
        options: AmazonOptions {
            address_restrictions: row.try_get("address_restrictions")?,
            suppress_shipping_address_view: row
                .try_get::<Option<i64>, _>("suppress_shipping_address_view")?
                .map(|v| v != 0),
            extend_expiration: row.try_get::<i64, _>("extend_expiration")? != 0,
            platform_id: row.try_get("platform_id")?,
        },
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn consent_from_row(row: &SqliteRow) -> Result<Option<Consent>, StoreError> {
    crate::model::consent_from_columns(
        row.try_get("consent_state")?,
        row.try_get("frequency_unit")?,
        row.try_get("frequency_value")?,
        row.try_get("consent_amount")?,
        row.try_get::<Option<i64>, _>("consent_auth_type")?
            .map(|v| v != 0),
    )
}

async fn insert_history<'c, E>(
    exec: E,
    ccid: &str,
    order_id: &str,
    e: &HistoryEntry,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    sqlx::query("INSERT INTO order_history(merchant_ccid, order_id, command, request, mstatus, v_result_code, message, amount, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(ccid)
        .bind(order_id)
        .bind(&e.command)
        .bind(&e.request)
        .bind(&e.mstatus)
        .bind(&e.v_result_code)
        .bind(&e.message)
        .bind(e.amount.map(to_i64))
        .bind(&e.at)
        .execute(exec)
        .await?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn commit_count(&self) -> Option<u64> {
        Some(self.commits())
    }

    async fn merchant(&self, ccid: &MerchantCcid) -> Result<Option<MerchantRecord>, StoreError> {
        let row =
            sqlx::query("SELECT ccid, secret_hex, name, consent_auth_default, created_at FROM merchants WHERE ccid = ?")
                .bind(ccid.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| merchant_from_row(&r)).transpose()
    }

    async fn insert_merchant(&self, m: &MerchantRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO merchants(ccid, secret_hex, name, consent_auth_default, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(m.ccid.as_str())
        .bind(m.secret_hex.expose())
        .bind(&m.name)
        .bind(i64::from(m.consent_auth_default))
        .bind(&m.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn merchants(&self) -> Result<Vec<MerchantRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT ccid, secret_hex, name, consent_auth_default, created_at FROM merchants ORDER BY created_at, ccid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(merchant_from_row).collect()
    }

    async fn order(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Option<OrderRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM orders WHERE merchant_ccid = ? AND order_id = ?")
            .bind(ccid.as_str())
            .bind(order_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| order_from_row(&r)).transpose()
    }

    async fn order_by_ref(&self, public_ref: &str) -> Result<Option<OrderRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM orders WHERE public_ref = ?")
            .bind(public_ref)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| order_from_row(&r)).transpose()
    }

    async fn apply(&self, unit: &Unit) -> Result<(), StoreError> {
        match self.committer.apply(unit).await {
            Some(result) => result,
            None => apply_alone(&self.pool, unit).await,
        }
    }

    async fn operations(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Vec<OperationRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM operations WHERE merchant_ccid = ? AND order_id = ? ORDER BY seq",
        )
        .bind(ccid.as_str())
        .bind(order_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(operation_from_row).collect()
    }

    async fn pending_operations(&self, limit: i64) -> Result<Vec<OperationRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM operations WHERE status = 'Pending' ORDER BY created_at, idempotency_key LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(operation_from_row).collect()
    }

    async fn history(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = sqlx::query("SELECT command, request, mstatus, v_result_code, message, at, amount FROM order_history WHERE merchant_ccid = ? AND order_id = ? ORDER BY id")
            .bind(ccid.as_str())
            .bind(order_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryEntry {
                    command: r.try_get(0)?,
                    request: r.try_get(1)?,
                    mstatus: r.try_get(2)?,
                    v_result_code: r.try_get(3)?,
                    message: r.try_get(4)?,
                    at: r.try_get(5)?,
                    amount: r
                        .try_get::<Option<i64>, _>(6)?
                        .and_then(|v| u64::try_from(v).ok())
                        .map(Yen::new),
                })
            })
            .collect()
    }

    async fn refunds(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Vec<RefundRecord>, StoreError> {
        let rows = sqlx::query("SELECT seq, amazon_refund_id, amount, state, created_at FROM refunds WHERE merchant_ccid = ? AND order_id = ? ORDER BY seq")
            .bind(ccid.as_str())
            .bind(order_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RefundRecord {
                    seq: r.try_get(0)?,
                    amazon_refund_id: r.try_get(1)?,
                    amount: yen(r, "amount")?,
                    state: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    async fn claim_pushes(
        &self,
        now: i64,
        lease_secs: i64,
        limit: i64,
    ) -> Result<Vec<PushRecord>, StoreError> {
        // One statement: the rows are leased and read atomically, so two workers never take the
        // same record.
        let rows = sqlx::query(
            "UPDATE push_records SET lease_until = ? WHERE id IN (SELECT id FROM push_records WHERE status = 'Pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?) ORDER BY id LIMIT ?) RETURNING *",
        )
        .bind(now + lease_secs)
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(push_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|p| p.id);
        Ok(out)
    }

    async fn finish_pushes(&self, ids: &[i64], end: &PushEnd) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for id in ids {
            let q = match end {
                PushEnd::Delivered { push_id, at } => sqlx::query("UPDATE push_records SET status = 'Delivered', attempts = attempts + 1, lease_until = NULL, push_id = ?, delivered_at = ?, last_error = NULL WHERE id = ?")
                    .bind(push_id.clone())
                    .bind(*at),
                PushEnd::Retry { error, next_attempt_at } => sqlx::query("UPDATE push_records SET attempts = attempts + 1, lease_until = NULL, last_error = ?, next_attempt_at = ? WHERE id = ?")
                    .bind(error.clone())
                    .bind(*next_attempt_at),
                PushEnd::Failed { error } => sqlx::query("UPDATE push_records SET status = 'Failed', attempts = attempts + 1, lease_until = NULL, last_error = ? WHERE id = ?")
                    .bind(error.clone()),
                PushEnd::Refused { error } => sqlx::query("UPDATE push_records SET status = 'Refused', lease_until = NULL, last_error = ? WHERE id = ?")
                    .bind(error.clone()),
            };
            q.bind(*id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn pushes(&self, filter: &PushFilter) -> Result<Vec<PushRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM push_records WHERE (?1 IS NULL OR merchant_ccid = ?1) AND (?2 IS NULL OR order_id = ?2) AND (?3 IS NULL OR status = ?3) ORDER BY id LIMIT ?4",
        )
        .bind(filter.merchant.as_ref().map(MerchantCcid::as_str))
        .bind(filter.order_id.as_ref().map(OrderId::as_str))
        .bind(filter.status.map(PushStatus::as_str))
        .bind(if filter.limit > 0 { filter.limit } else { 1000 })
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(push_from_row).collect()
    }

    async fn resend_push(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE push_records SET status = 'Pending', next_attempt_at = ?, lease_until = NULL WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_key(
        &self,
        ccid: &MerchantCcid,
        key: &str,
        fingerprint: &str,
        now: i64,
        abandoned_after: i64,
    ) -> Result<KeyClaim, StoreError> {
        let mut tx = self.pool.begin().await?;
        match claim_key_in(&mut tx, ccid, key, fingerprint, now, abandoned_after).await {
            Ok(claim) => {
                tx.commit().await?;
                Ok(claim)
            }
            Err(e) => Err(rolled_back(tx, e).await),
        }
    }

    async fn finish_key(
        &self,
        ccid: &MerchantCcid,
        key: &str,
        answer: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE idempotency_keys SET answer = ? WHERE merchant_ccid = ? AND key = ?")
            .bind(answer)
            .bind(ccid.as_str())
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn release_key(&self, ccid: &MerchantCcid, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE merchant_ccid = ? AND key = ? AND answer IS NULL",
        )
        .bind(ccid.as_str())
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn prune_keys(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn orders_in_state(
        &self,
        state: OrderState,
        before: &str,
        limit: i64,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM orders WHERE state = ? AND updated_at < ? ORDER BY updated_at LIMIT ?",
        )
        .bind(state.as_str())
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(order_from_row).collect()
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO leases(name, holder, until) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, until = excluded.until WHERE leases.until <= ?4 OR leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE leases SET until = 0 WHERE name = ? AND holder = ?")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn order_by_charge_permission(
        &self,
        charge_permission_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM orders WHERE charge_permission_id = ? ORDER BY original_order_id IS NOT NULL, created_at LIMIT 1")
            .bind(charge_permission_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| order_from_row(&r)).transpose()
    }

    async fn order_by_charge(&self, charge_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM orders WHERE charge_id = ?")
            .bind(charge_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    async fn order_by_refund(&self, refund_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let row = sqlx::query("SELECT o.* FROM refunds r JOIN orders o ON o.merchant_ccid = r.merchant_ccid AND o.order_id = r.order_id WHERE r.amazon_refund_id = ?")
            .bind(refund_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    async fn ipn_seen(&self, message_id: &str) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM ipn_messages WHERE message_id = ?")
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    async fn mark_ipn_seen(&self, message_id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO ipn_messages(message_id, received_at) VALUES (?, ?) ON CONFLICT(message_id) DO NOTHING")
            .bind(message_id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn search(&self, query: &crate::SearchQuery) -> Result<crate::SearchResult, StoreError> {
        search::search(&self.pool, query).await
    }

    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO settings(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn claim_setting(&self, name: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO settings(name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

async fn insert_order(tx: &mut SqliteConnection, o: &OrderRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO orders(merchant_ccid, order_id, public_ref, dummy, state, amount, authorized, captured, refunded, with_capture, note_to_buyer, success_url, cancel_url, error_url, authorize_push_url, capture_push_url, cancel_push_url, checkout_session_id, charge_permission_id, charge_id, in_flight, version, created_at, updated_at, accounting_type, consent_state, consent_amount, frequency_unit, frequency_value, consent_auth_type, original_order_id, pay_confirm_screen_type, pay_confirm_screen_url, address_restrictions, suppress_shipping_address_view, extend_expiration, platform_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(o.merchant.as_str())
    .bind(o.order_id.as_str())
    .bind(&o.public_ref)
    .bind(i64::from(o.dummy))
    .bind(o.order.state.as_str())
    .bind(to_i64(o.order.amount))
    .bind(to_i64(o.order.authorized))
    .bind(to_i64(o.order.captured))
    .bind(to_i64(o.order.refunded))
    .bind(i64::from(o.with_capture))
    .bind(&o.note_to_buyer)
    .bind(&o.success_url)
    .bind(&o.cancel_url)
    .bind(&o.error_url)
    .bind(&o.authorize_push_url)
    .bind(&o.capture_push_url)
    .bind(&o.cancel_push_url)
    .bind(&o.checkout_session_id)
    .bind(&o.charge_permission_id)
    .bind(&o.charge_id)
    .bind(&o.in_flight)
    .bind(o.version)
    .bind(&o.created_at)
    .bind(&o.updated_at)
    .bind(i64::from(o.accounting_type()))
    .bind(o.consent.map(|c| c.state.as_str()))
    .bind(o.consent.map(|c| to_i64(c.amount)))
    .bind(o.consent.map(|c| c.frequency.unit().as_str()))
    .bind(o.consent.map(|c| i64::from(c.frequency.value())))
    .bind(o.consent.map(|c| i64::from(c.with_authorization)))
    .bind(o.original_order_id.as_ref().map(OrderId::as_str))
    .bind(i64::from(o.confirm_screen.type_code()))
    .bind(match &o.confirm_screen {
        ConfirmScreen::Merchant { url } => Some(url.as_str()),
        ConfirmScreen::Gateway => None,
    })
    .bind(&o.options.address_restrictions)
    .bind(o.options.suppress_shipping_address_view.map(i64::from))
    .bind(i64::from(o.options.extend_expiration))
    .bind(&o.options.platform_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn update_order(tx: &mut SqliteConnection, o: &OrderRecord) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE orders SET state = ?, amount = ?, authorized = ?, captured = ?, refunded = ?, checkout_session_id = ?, charge_permission_id = ?, charge_id = ?, in_flight = ?, version = ?, updated_at = ?, consent_state = ?, consent_amount = ?, frequency_unit = ?, frequency_value = ? WHERE merchant_ccid = ? AND order_id = ? AND version = ?",
    )
    .bind(o.order.state.as_str())
    .bind(to_i64(o.order.amount))
    .bind(to_i64(o.order.authorized))
    .bind(to_i64(o.order.captured))
    .bind(to_i64(o.order.refunded))
    .bind(&o.checkout_session_id)
    .bind(&o.charge_permission_id)
    .bind(&o.charge_id)
    .bind(&o.in_flight)
    .bind(o.version)
    .bind(&o.updated_at)
    .bind(o.consent.map(|c| c.state.as_str()))
    .bind(o.consent.map(|c| to_i64(c.amount)))
    .bind(o.consent.map(|c| c.frequency.unit().as_str()))
    .bind(o.consent.map(|c| i64::from(c.frequency.value())))
    .bind(o.merchant.as_str())
    .bind(o.order_id.as_str())
    .bind(o.version - 1)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

/// Applies `unit` in a transaction of its own (when the group committer is gone).
async fn apply_alone(pool: &SqlitePool, unit: &Unit) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    let mut written = Ok(());
    for write in &unit.writes {
        written = apply_write(&mut tx, unit, write).await;
        if written.is_err() {
            break;
        }
    }
    match written {
        Ok(()) => Ok(tx.commit().await?),
        Err(e) => Err(rolled_back(tx, e).await),
    }
}

async fn apply_write(
    tx: &mut SqliteConnection,
    unit: &Unit,
    write: &Write,
) -> Result<(), StoreError> {
    let (ccid, order_id) = (unit.merchant.as_str(), unit.order_id.as_str());
    let same_order = |m: &MerchantCcid, o: &OrderId| {
        if m == &unit.merchant && o == &unit.order_id {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!(
                "a unit of order {ccid}/{order_id} writes order {m}/{o}"
            )))
        }
    };
    match write {
        Write::InsertOrder(o) => {
            same_order(&o.merchant, &o.order_id)?;
            insert_order(tx, o).await
        }
        Write::UpdateOrder(o) => {
            same_order(&o.merchant, &o.order_id)?;
            update_order(tx, o).await
        }
        Write::History(e) => insert_history(&mut *tx, ccid, order_id, e).await,
        Write::Refund(r) => {
            sqlx::query("INSERT INTO refunds(merchant_ccid, order_id, seq, amazon_refund_id, amount, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
                .bind(ccid)
                .bind(order_id)
                .bind(r.seq)
                .bind(&r.amazon_refund_id)
                .bind(to_i64(r.amount))
                .bind(&r.state)
                .bind(&r.created_at)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        Write::BeginOperation(op) => {
            same_order(&op.merchant, &op.order_id)?;
            sqlx::query("INSERT INTO operations(idempotency_key, merchant_ccid, order_id, seq, kind, amount, note, status, reported, result_code, result_message, amazon_id, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(&op.key)
                .bind(ccid)
                .bind(order_id)
                .bind(op.seq)
                .bind(op.intent.kind.as_str())
                .bind(to_i64(op.intent.amount))
                .bind(&op.intent.note)
                .bind(op.status.as_str())
                .bind(i64::from(op.reported))
                .bind(&op.result_code)
                .bind(&op.result_message)
                .bind(&op.amazon_id)
                .bind(&op.created_at)
                .bind(&op.finished_at)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        Write::FinishOperation(end) => finish_operation(tx, unit, end).await,
        Write::RefundState {
            amazon_refund_id,
            state,
        } => {
            sqlx::query("UPDATE refunds SET state = ? WHERE merchant_ccid = ? AND order_id = ? AND amazon_refund_id = ?")
                .bind(state)
                .bind(ccid)
                .bind(order_id)
                .bind(amazon_refund_id)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        Write::IpnSeen { message_id, at } => {
            // A second handler of the same notification (another gateway) loses here.
            sqlx::query("INSERT INTO ipn_messages(message_id, received_at) VALUES (?, ?)")
                .bind(message_id)
                .bind(*at)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        Write::Push(p) => {
            same_order(&p.merchant, &p.order_id)?;
            sqlx::query("INSERT INTO push_records(merchant_ccid, order_id, kind, url, dummy, fields, status, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'Pending', 0, ?, ?)")
                .bind(ccid)
                .bind(order_id)
                .bind(p.kind.as_str())
                .bind(&p.url)
                .bind(i64::from(p.dummy))
                .bind(encode_fields(&p.fields))
                .bind(p.next_attempt_at)
                .bind(p.created_at)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        Write::NoteOperation { key, note } => {
            let done = sqlx::query("UPDATE operations SET note = ? WHERE idempotency_key = ? AND merchant_ccid = ? AND order_id = ? AND status = 'Pending'")
                .bind(note)
                .bind(key)
                .bind(ccid)
                .bind(order_id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict);
            }
            Ok(())
        }
        Write::MarkReported { key } => {
            let done = sqlx::query("UPDATE operations SET reported = 1 WHERE idempotency_key = ? AND merchant_ccid = ? AND order_id = ? AND status != 'Pending'")
                .bind(key)
                .bind(ccid)
                .bind(order_id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict);
            }
            Ok(())
        }
    }
}

/// Finishes a pending operation; [`StoreError::Conflict`] if it is not pending any more (another
/// process finished it first).
async fn finish_operation(
    tx: &mut SqliteConnection,
    unit: &Unit,
    end: &OperationEnd,
) -> Result<(), StoreError> {
    if end.status == OperationStatus::Pending {
        return Err(StoreError::Corrupt(
            "an operation cannot be finished as Pending".into(),
        ));
    }
    let done = sqlx::query("UPDATE operations SET status = ?, result_code = ?, result_message = ?, amazon_id = ?, reported = ?, finished_at = ? WHERE idempotency_key = ? AND merchant_ccid = ? AND order_id = ? AND status = 'Pending'")
        .bind(end.status.as_str())
        .bind(&end.result_code)
        .bind(&end.result_message)
        .bind(&end.amazon_id)
        .bind(i64::from(end.reported))
        .bind(&end.at)
        .bind(&end.key)
        .bind(unit.merchant.as_str())
        .bind(unit.order_id.as_str())
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

/// [`Store::claim_key`] inside a transaction.
async fn claim_key_in(
    conn: &mut SqliteConnection,
    ccid: &MerchantCcid,
    key: &str,
    fingerprint: &str,
    now: i64,
    abandoned_after: i64,
) -> Result<KeyClaim, StoreError> {
    // Insert first: the transaction takes the write lock at once, so of two first requests
    // (from two pools) one inserts and the other waits for it and then finds its row. (A
    // read first would let both read, and the second's write then fail as busy.)
    let inserted = sqlx::query("INSERT INTO idempotency_keys(merchant_ccid, key, fingerprint, answer, created_at) VALUES (?, ?, ?, NULL, ?) ON CONFLICT (merchant_ccid, key) DO NOTHING")
        .bind(ccid.as_str())
        .bind(key)
        .bind(fingerprint)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    if inserted.rows_affected() == 1 {
        return Ok(KeyClaim::New);
    }
    let row: Option<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT fingerprint, answer, created_at FROM idempotency_keys WHERE merchant_ccid = ? AND key = ?",
    )
    .bind(ccid.as_str())
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let claim = match row {
        None => KeyClaim::InFlight,
        Some((fp, _, _)) if fp != fingerprint => KeyClaim::Mismatch,
        Some((_, Some(answer), _)) => KeyClaim::Replay(answer),
        Some((_, None, created)) if now - created >= abandoned_after => {
            sqlx::query(
                "UPDATE idempotency_keys SET created_at = ? WHERE merchant_ccid = ? AND key = ?",
            )
            .bind(now)
            .bind(ccid.as_str())
            .bind(key)
            .execute(&mut *conn)
            .await?;
            KeyClaim::New
        }
        Some((_, None, _)) => KeyClaim::InFlight,
    };
    Ok(claim)
}

/// Rolls `tx` back now and returns `error`. (A transaction dropped unfinished is rolled back only
/// when its connection is next used; until then it keeps its locks, which other gateways wait on.)
async fn rolled_back(tx: sqlx::Transaction<'_, sqlx::Sqlite>, error: StoreError) -> StoreError {
    match tx.rollback().await {
        Ok(()) => error,
        Err(e) => StoreError::Database(format!("{error}; the rollback failed too: {e}")),
    }
}

fn encode_fields(fields: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

fn push_from_row(r: &SqliteRow) -> Result<PushRecord, StoreError> {
    let merchant: String = r.try_get("merchant_ccid")?;
    let order_id: String = r.try_get("order_id")?;
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    let fields: String = r.try_get("fields")?;
    Ok(PushRecord {
        id: r.try_get("id")?,
        merchant: MerchantCcid::parse(&merchant).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        order_id: OrderId::parse(&order_id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        kind: PushKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown push kind {kind}")))?,
        url: r.try_get("url")?,
        dummy: r.try_get::<i64, _>("dummy")? != 0,
        fields: form_urlencoded::parse(fields.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        status: PushStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown push status {status}")))?,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: r.try_get("next_attempt_at")?,
        lease_until: r.try_get("lease_until")?,
        push_id: r.try_get("push_id")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

fn operation_from_row(r: &SqliteRow) -> Result<OperationRecord, StoreError> {
    let merchant: String = r.try_get("merchant_ccid")?;
    let order_id: String = r.try_get("order_id")?;
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    Ok(OperationRecord {
        key: r.try_get("idempotency_key")?,
        merchant: MerchantCcid::parse(&merchant).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        order_id: OrderId::parse(&order_id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        seq: r.try_get("seq")?,
        intent: Intent {
            kind: OperationKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown operation kind {kind}")))?,
            amount: yen(r, "amount")?,
            note: r.try_get("note")?,
        },
        status: OperationStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown operation status {status}")))?,
        reported: r.try_get::<i64, _>("reported")? != 0,
        result_code: r.try_get("result_code")?,
        result_message: r.try_get("result_message")?,
        amazon_id: r.try_get("amazon_id")?,
        created_at: r.try_get("created_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

fn merchant_from_row(r: &SqliteRow) -> Result<MerchantRecord, StoreError> {
    let ccid: String = r.try_get(0)?;
    Ok(MerchantRecord {
        ccid: MerchantCcid::parse(&ccid).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        secret_hex: Secret::new(r.try_get(1)?),
        name: r.try_get(2)?,
        consent_auth_default: r.try_get::<i64, _>(3)? != 0,
        created_at: r.try_get(4)?,
    })
}
