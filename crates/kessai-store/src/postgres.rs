//! The PostgreSQL backend, for several gateways sharing one database. All SQL of this backend
//! lives here (Search's in `postgres/search.rs`). It behaves as the SQLite backend does; what
//! differs is how rows are kept: instants the model holds as RFC 3339 text are `timestamptz`
//! (converted here, at the edge), flags are `boolean`, money is `bigint`.

use crate::{
    ConfirmScreen, HistoryEntry, KeyClaim, MerchantRecord, OperationEnd, OperationRecord,
    OrderRecord, PushEnd, PushFilter, PushRecord, RefundRecord, Store, StoreError, Unit, Write,
};
use async_trait::async_trait;
use kessai_core::{MerchantCcid, OperationStatus, OrderId, OrderState, PushStatus, Yen};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Row};
use std::str::FromStr;

mod rows;
mod search;

use rows::{
    encode_fields, instant, instant_text, merchant_from_row, operation_from_row, opt_instant,
    order_from_row, push_from_row, to_i64, yen,
};

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://…`) and applies the migrations.
    ///
    /// Every connection gets a `statement_timeout` of 15 s, a `lock_timeout` of 10 s and an
    /// `idle_in_transaction_session_timeout` of 60 s unless the URL's `options` set them: a
    /// database that stops answering fails a request (`StoreError::Unavailable`) instead of
    /// hanging it, and a gateway that dies inside a transaction does not keep its locks.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let mut options = PgConnectOptions::from_str(url)?;
        for (name, value) in [
            ("statement_timeout", "15s"),
            ("lock_timeout", "10s"),
            ("idle_in_transaction_session_timeout", "60s"),
        ] {
            if !url.contains(name) {
                options = options.options([(name, value)]);
            }
        }
        PgStore::open_with(options).await
    }

    /// Connects with `options` and applies the migrations. Several gateways may start at once:
    /// the migrator holds a lock on the database while it runs. A request waits at most 5 s for
    /// a connection; connections that broke (the server restarted) are replaced when next taken.
    pub async fn open_with(options: PgConnectOptions) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .test_before_acquire(true)
            .idle_timeout(std::time::Duration::from_secs(300))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }
}

/// [`Store::claim_key`] inside a transaction.
async fn claim_key_in(
    conn: &mut PgConnection,
    ccid: &MerchantCcid,
    key: &str,
    fingerprint: &str,
    now: i64,
    abandoned_after: i64,
) -> Result<KeyClaim, StoreError> {
    // Insert first: of two first requests at once, one inserts and the other waits for it
    // and then finds its row (a select first would let both insert).
    let inserted = sqlx::query("INSERT INTO idempotency_keys(merchant_ccid, key, fingerprint, answer, created_at) VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (merchant_ccid, key) DO NOTHING")
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
        "SELECT fingerprint, answer, created_at FROM idempotency_keys WHERE merchant_ccid = $1 AND key = $2 FOR UPDATE",
    )
    .bind(ccid.as_str())
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let claim = match row {
        // Released between the insert and the select: a retry finds it free.
        None => KeyClaim::InFlight,
        Some((fp, _, _)) if fp != fingerprint => KeyClaim::Mismatch,
        Some((_, Some(answer), _)) => KeyClaim::Replay(answer),
        Some((_, None, created)) if now - created >= abandoned_after => {
            sqlx::query(
                "UPDATE idempotency_keys SET created_at = $1 WHERE merchant_ccid = $2 AND key = $3",
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
async fn rolled_back(tx: sqlx::Transaction<'_, sqlx::Postgres>, error: StoreError) -> StoreError {
    match tx.rollback().await {
        Ok(()) => error,
        // A rollback that fails has lost its connection (the server ends the transaction with
        // it): the error stays retryable if either one was.
        Err(e) => {
            let text = format!("{error}; the rollback failed too: {e}");
            match (&error, StoreError::from(e)) {
                (StoreError::Unavailable(_), _) | (_, StoreError::Unavailable(_)) => {
                    StoreError::Unavailable(text)
                }
                _ => StoreError::Database(text),
            }
        }
    }
}

#[async_trait]
impl Store for PgStore {
    async fn merchant(&self, ccid: &MerchantCcid) -> Result<Option<MerchantRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM merchants WHERE ccid = $1")
            .bind(ccid.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(merchant_from_row).transpose()
    }

    async fn insert_merchant(&self, m: &MerchantRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO merchants(ccid, secret_hex, name, consent_auth_default, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(m.ccid.as_str())
        .bind(m.secret_hex.expose())
        .bind(&m.name)
        .bind(m.consent_auth_default)
        .bind(instant(&m.created_at)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn merchants(&self) -> Result<Vec<MerchantRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM merchants ORDER BY created_at, ccid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(merchant_from_row).collect()
    }

    async fn order(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Option<OrderRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM orders WHERE merchant_ccid = $1 AND order_id = $2")
            .bind(ccid.as_str())
            .bind(order_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    async fn order_by_ref(&self, public_ref: &str) -> Result<Option<OrderRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM orders WHERE public_ref = $1")
            .bind(public_ref)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    async fn apply(&self, unit: &Unit) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
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

    async fn operations(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Vec<OperationRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM operations WHERE merchant_ccid = $1 AND order_id = $2 ORDER BY seq",
        )
        .bind(ccid.as_str())
        .bind(order_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(operation_from_row).collect()
    }

    async fn pending_operations(&self, limit: i64) -> Result<Vec<OperationRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM operations WHERE status = 'Pending' ORDER BY created_at, idempotency_key LIMIT $1",
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
        let rows = sqlx::query("SELECT command, request, mstatus, v_result_code, message, at, amount FROM order_history WHERE merchant_ccid = $1 AND order_id = $2 ORDER BY id")
            .bind(ccid.as_str())
            .bind(order_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryEntry {
                    command: r.try_get("command")?,
                    request: r.try_get("request")?,
                    mstatus: r.try_get("mstatus")?,
                    v_result_code: r.try_get("v_result_code")?,
                    message: r.try_get("message")?,
                    at: instant_text(r, "at")?,
                    amount: r
                        .try_get::<Option<i64>, _>("amount")?
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
        let rows = sqlx::query("SELECT seq, amazon_refund_id, amount, state, created_at FROM refunds WHERE merchant_ccid = $1 AND order_id = $2 ORDER BY seq")
            .bind(ccid.as_str())
            .bind(order_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RefundRecord {
                    seq: r.try_get("seq")?,
                    amazon_refund_id: r.try_get("amazon_refund_id")?,
                    amount: yen(r, "amount")?,
                    state: r.try_get("state")?,
                    created_at: instant_text(r, "created_at")?,
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
        // One statement; SKIP LOCKED: a record another claimer is leasing right now is passed
        // over instead of waited for (and, once it commits, is leased and so not due).
        let rows = sqlx::query(
            "UPDATE push_records SET lease_until = $1 WHERE id IN (SELECT id FROM push_records WHERE status = 'Pending' AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until <= $2) ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING *",
        )
        .bind(now + lease_secs)
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
        let q = match end {
            PushEnd::Delivered { push_id, at } => sqlx::query("UPDATE push_records SET status = 'Delivered', attempts = attempts + 1, lease_until = NULL, push_id = $2, delivered_at = $3, last_error = NULL WHERE id = ANY($1)")
                .bind(ids)
                .bind(push_id)
                .bind(*at),
            PushEnd::Retry { error, next_attempt_at } => sqlx::query("UPDATE push_records SET attempts = attempts + 1, lease_until = NULL, last_error = $2, next_attempt_at = $3 WHERE id = ANY($1)")
                .bind(ids)
                .bind(error)
                .bind(*next_attempt_at),
            PushEnd::Failed { error } => sqlx::query("UPDATE push_records SET status = 'Failed', attempts = attempts + 1, lease_until = NULL, last_error = $2 WHERE id = ANY($1)")
                .bind(ids)
                .bind(error),
            PushEnd::Refused { error } => sqlx::query("UPDATE push_records SET status = 'Refused', lease_until = NULL, last_error = $2 WHERE id = ANY($1)")
                .bind(ids)
                .bind(error),
        };
        q.execute(&self.pool).await?;
        Ok(())
    }

    async fn pushes(&self, filter: &PushFilter) -> Result<Vec<PushRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM push_records WHERE ($1::text IS NULL OR merchant_ccid = $1) AND ($2::text IS NULL OR order_id = $2) AND ($3::text IS NULL OR status = $3) ORDER BY id LIMIT $4",
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
        let done = sqlx::query("UPDATE push_records SET status = 'Pending', next_attempt_at = $1, lease_until = NULL WHERE id = $2")
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
        sqlx::query(
            "UPDATE idempotency_keys SET answer = $1 WHERE merchant_ccid = $2 AND key = $3",
        )
        .bind(answer)
        .bind(ccid.as_str())
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn release_key(&self, ccid: &MerchantCcid, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE merchant_ccid = $1 AND key = $2 AND answer IS NULL",
        )
        .bind(ccid.as_str())
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn prune_keys(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
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
            "SELECT * FROM orders WHERE state = $1 AND updated_at < $2 ORDER BY updated_at LIMIT $3",
        )
        .bind(state.as_str())
        .bind(instant(before)?)
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
            "INSERT INTO leases(name, holder, held_until) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until WHERE leases.held_until <= $4 OR leases.holder = excluded.holder",
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
        sqlx::query("UPDATE leases SET held_until = 0 WHERE name = $1 AND holder = $2")
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
        let row = sqlx::query("SELECT * FROM orders WHERE charge_permission_id = $1 ORDER BY original_order_id IS NOT NULL, created_at LIMIT 1")
            .bind(charge_permission_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    async fn order_by_charge(&self, charge_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM orders WHERE charge_id = $1")
            .bind(charge_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    async fn order_by_refund(&self, refund_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let row = sqlx::query("SELECT o.* FROM refunds r JOIN orders o ON o.merchant_ccid = r.merchant_ccid AND o.order_id = r.order_id WHERE r.amazon_refund_id = $1 LIMIT 1")
            .bind(refund_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    async fn ipn_seen(&self, message_id: &str) -> Result<bool, StoreError> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM ipn_messages WHERE message_id = $1")
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    async fn mark_ipn_seen(&self, message_id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO ipn_messages(message_id, received_at) VALUES ($1, $2) ON CONFLICT (message_id) DO NOTHING")
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
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO settings(name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
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
        sqlx::query(
            "INSERT INTO settings(name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

async fn insert_order(tx: &mut PgConnection, o: &OrderRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO orders(merchant_ccid, order_id, public_ref, dummy, state, amount, authorized, captured, refunded, with_capture, note_to_buyer, success_url, cancel_url, error_url, authorize_push_url, capture_push_url, cancel_push_url, checkout_session_id, charge_permission_id, charge_id, in_flight, version, created_at, updated_at, accounting_type, consent_state, consent_amount, frequency_unit, frequency_value, consent_with_authorization, original_order_id, pay_confirm_screen_type, pay_confirm_screen_url, address_restrictions, suppress_shipping_address_view, extend_expiration, platform_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37)",
    )
    .bind(o.merchant.as_str())
    .bind(o.order_id.as_str())
    .bind(&o.public_ref)
    .bind(o.dummy)
    .bind(o.order.state.as_str())
    .bind(to_i64(o.order.amount))
    .bind(to_i64(o.order.authorized))
    .bind(to_i64(o.order.captured))
    .bind(to_i64(o.order.refunded))
    .bind(o.with_capture)
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
    .bind(instant(&o.created_at)?)
    .bind(instant(&o.updated_at)?)
    .bind(i16::from(o.accounting_type()))
    .bind(o.consent.map(|c| c.state.as_str()))
    .bind(o.consent.map(|c| to_i64(c.amount)))
    .bind(o.consent.map(|c| c.frequency.unit().as_str()))
    .bind(o.consent.map(|c| i64::from(c.frequency.value())))
    .bind(o.consent.map(|c| c.with_authorization))
    .bind(o.original_order_id.as_ref().map(OrderId::as_str))
    .bind(i16::from(o.confirm_screen.type_code()))
    .bind(match &o.confirm_screen {
        ConfirmScreen::Merchant { url } => Some(url.as_str()),
        ConfirmScreen::Gateway => None,
    })
    .bind(&o.options.address_restrictions)
    .bind(o.options.suppress_shipping_address_view)
    .bind(o.options.extend_expiration)
    .bind(&o.options.platform_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn update_order(tx: &mut PgConnection, o: &OrderRecord) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE orders SET state = $1, amount = $2, authorized = $3, captured = $4, refunded = $5, checkout_session_id = $6, charge_permission_id = $7, charge_id = $8, in_flight = $9, version = $10, updated_at = $11, consent_state = $12, consent_amount = $13, frequency_unit = $14, frequency_value = $15 WHERE merchant_ccid = $16 AND order_id = $17 AND version = $18",
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
    .bind(instant(&o.updated_at)?)
    .bind(o.consent.map(|c| c.state.as_str()))
    .bind(o.consent.map(|c| to_i64(c.amount)))
    .bind(o.consent.map(|c| c.frequency.unit().as_str()))
    .bind(o.consent.map(|c| i64::from(c.frequency.value())))
    .bind(o.merchant.as_str())
    .bind(o.order_id.as_str())
    .bind(o.version - 1)
    .execute(&mut *tx)
    .await?;
    // Under READ COMMITTED a second writer of the same version waits for the first and then
    // finds the version moved on: no row, a conflict.
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

async fn apply_write(tx: &mut PgConnection, unit: &Unit, write: &Write) -> Result<(), StoreError> {
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
        Write::History(e) => {
            sqlx::query("INSERT INTO order_history(merchant_ccid, order_id, command, request, mstatus, v_result_code, message, amount, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                .bind(ccid)
                .bind(order_id)
                .bind(&e.command)
                .bind(&e.request)
                .bind(&e.mstatus)
                .bind(&e.v_result_code)
                .bind(&e.message)
                .bind(e.amount.map(to_i64))
                .bind(instant(&e.at)?)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        Write::Refund(r) => {
            sqlx::query("INSERT INTO refunds(merchant_ccid, order_id, seq, amazon_refund_id, amount, state, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(ccid)
                .bind(order_id)
                .bind(r.seq)
                .bind(&r.amazon_refund_id)
                .bind(to_i64(r.amount))
                .bind(&r.state)
                .bind(instant(&r.created_at)?)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        Write::BeginOperation(op) => {
            same_order(&op.merchant, &op.order_id)?;
            sqlx::query("INSERT INTO operations(idempotency_key, merchant_ccid, order_id, seq, kind, amount, note, status, reported, result_code, result_message, amazon_id, created_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
                .bind(&op.key)
                .bind(ccid)
                .bind(order_id)
                .bind(op.seq)
                .bind(op.intent.kind.as_str())
                .bind(to_i64(op.intent.amount))
                .bind(&op.intent.note)
                .bind(op.status.as_str())
                .bind(op.reported)
                .bind(&op.result_code)
                .bind(&op.result_message)
                .bind(&op.amazon_id)
                .bind(instant(&op.created_at)?)
                .bind(opt_instant(&op.finished_at)?)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        Write::FinishOperation(end) => finish_operation(tx, unit, end).await,
        Write::RefundState {
            amazon_refund_id,
            state,
        } => {
            sqlx::query("UPDATE refunds SET state = $1 WHERE merchant_ccid = $2 AND order_id = $3 AND amazon_refund_id = $4")
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
            sqlx::query("INSERT INTO ipn_messages(message_id, received_at) VALUES ($1, $2)")
                .bind(message_id)
                .bind(*at)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        Write::Push(p) => {
            same_order(&p.merchant, &p.order_id)?;
            sqlx::query("INSERT INTO push_records(merchant_ccid, order_id, kind, url, dummy, fields, status, attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'Pending', 0, $7, $8)")
                .bind(ccid)
                .bind(order_id)
                .bind(p.kind.as_str())
                .bind(&p.url)
                .bind(p.dummy)
                .bind(encode_fields(&p.fields))
                .bind(p.next_attempt_at)
                .bind(p.created_at)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        Write::NoteOperation { key, note } => {
            let done = sqlx::query("UPDATE operations SET note = $1 WHERE idempotency_key = $2 AND merchant_ccid = $3 AND order_id = $4 AND status = 'Pending'")
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
            let done = sqlx::query("UPDATE operations SET reported = true WHERE idempotency_key = $1 AND merchant_ccid = $2 AND order_id = $3 AND status <> 'Pending'")
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
/// gateway finished it first).
async fn finish_operation(
    tx: &mut PgConnection,
    unit: &Unit,
    end: &OperationEnd,
) -> Result<(), StoreError> {
    if end.status == OperationStatus::Pending {
        return Err(StoreError::Corrupt(
            "an operation cannot be finished as Pending".into(),
        ));
    }
    let done = sqlx::query("UPDATE operations SET status = $1, result_code = $2, result_message = $3, amazon_id = $4, reported = $5, finished_at = $6 WHERE idempotency_key = $7 AND merchant_ccid = $8 AND order_id = $9 AND status = 'Pending'")
        .bind(end.status.as_str())
        .bind(&end.result_code)
        .bind(&end.result_message)
        .bind(&end.amazon_id)
        .bind(end.reported)
        .bind(instant(&end.at)?)
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
