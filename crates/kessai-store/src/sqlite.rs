//! The SQLite backend. All SQL of this backend lives here.
//!
//! Every call is one closure run on the store's own threads ([`kessai_sqlite::Db`]): the writer,
//! which commits the writes waiting together (group commit), or a reader.

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
use rusqlite::types::FromSql;
use rusqlite::{params, Connection, OptionalExtension, Params, Row};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod migrate;
mod search;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: kessai_sqlite::Db,
    /// Transactions the writer committed (a benchmark's measure).
    commits: Arc<AtomicU64>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies the migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let commits = Arc::new(AtomicU64::new(0));
        // FULL: a state change is on disk before the answer that reports it leaves.
        let settings = kessai_sqlite::Settings::file(path, kessai_sqlite::Synchronous::Full);
        let db = kessai_sqlite::Db::start(settings, Some(commits.clone()), migrate::run).await?;
        Ok(SqliteStore { db, commits })
    }

    /// Transactions committed so far by the writer (a batch of writes is one), counted as SQLite
    /// starts each commit. Reads commit nothing.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

/// The rows of `sql`, each made by `make`.
fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    make: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(make(row)?);
    }
    Ok(out)
}

/// The first row of `sql`, if any, made by `make`.
fn first<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    make: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    rows.next()?.map(make).transpose()
}

/// Runs `sql`; the rows it changed.
fn exec(conn: &Connection, sql: &str, params: impl Params) -> Result<usize, StoreError> {
    Ok(conn.prepare_cached(sql)?.execute(params)?)
}

/// Column `col` of `row`.
fn get<T: FromSql>(row: &Row<'_>, col: &str) -> Result<T, StoreError> {
    Ok(row.get(col)?)
}

fn to_i64(y: Yen) -> i64 {
    i64::try_from(y.get()).unwrap_or(i64::MAX)
}

fn yen(row: &Row<'_>, col: &str) -> Result<Yen, StoreError> {
    let v: i64 = get(row, col)?;
    u64::try_from(v)
        .map(Yen::new)
        .map_err(|_| StoreError::Corrupt(format!("{col} is negative")))
}

fn flag(row: &Row<'_>, col: &str) -> Result<bool, StoreError> {
    Ok(get::<i64>(row, col)? != 0)
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn order_from_row(row: &Row<'_>) -> Result<OrderRecord, StoreError> {
    let state: String = get(row, "state")?;
    let state = OrderState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown state {state}")))?;
    let merchant: String = get(row, "merchant_ccid")?;
    let order_id: String = get(row, "order_id")?;
    Ok(OrderRecord {
        merchant: MerchantCcid::parse(&merchant).map_err(corrupt)?,
        order_id: OrderId::parse(&order_id).map_err(corrupt)?,
        public_ref: get(row, "public_ref")?,
        dummy: flag(row, "dummy")?,
        order: Order {
            state,
            amount: yen(row, "amount")?,
            authorized: yen(row, "authorized")?,
            captured: yen(row, "captured")?,
            refunded: yen(row, "refunded")?,
        },
        with_capture: flag(row, "with_capture")?,
        note_to_buyer: get(row, "note_to_buyer")?,
        success_url: get(row, "success_url")?,
        cancel_url: get(row, "cancel_url")?,
        error_url: get(row, "error_url")?,
        authorize_push_url: get(row, "authorize_push_url")?,
        capture_push_url: get(row, "capture_push_url")?,
        cancel_push_url: get(row, "cancel_push_url")?,
        checkout_session_id: get(row, "checkout_session_id")?,
        charge_permission_id: get(row, "charge_permission_id")?,
        charge_id: get(row, "charge_id")?,
        in_flight: get(row, "in_flight")?,
        consent: consent_from_row(row)?,
        original_order_id: get::<Option<String>>(row, "original_order_id")?
            .map(|o| OrderId::parse(&o).map_err(corrupt))
            .transpose()?,
        confirm_screen: match (
            get::<i64>(row, "pay_confirm_screen_type")?,
            get::<Option<String>>(row, "pay_confirm_screen_url")?,
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
            address_restrictions: get(row, "address_restrictions")?,
            suppress_shipping_address_view: get::<Option<i64>>(
                row,
                "suppress_shipping_address_view",
            )?
            .map(|v| v != 0),
            extend_expiration: flag(row, "extend_expiration")?,
            platform_id: get(row, "platform_id")?,
        },
        version: get(row, "version")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn consent_from_row(row: &Row<'_>) -> Result<Option<Consent>, StoreError> {
    crate::model::consent_from_columns(
        get(row, "consent_state")?,
        get(row, "frequency_unit")?,
        get(row, "frequency_value")?,
        get(row, "consent_amount")?,
        get::<Option<i64>>(row, "consent_auth_type")?.map(|v| v != 0),
    )
}

fn insert_history(
    conn: &Connection,
    ccid: &str,
    order_id: &str,
    e: &HistoryEntry,
) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT INTO order_history(merchant_ccid, order_id, command, request, mstatus, v_result_code, message, amount, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            ccid,
            order_id,
            e.command,
            e.request,
            e.mstatus,
            e.v_result_code,
            e.message,
            e.amount.map(to_i64),
            e.at
        ],
    )?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn commit_count(&self) -> Option<u64> {
        Some(self.commits())
    }

    async fn merchant(&self, ccid: &MerchantCcid) -> Result<Option<MerchantRecord>, StoreError> {
        let ccid = ccid.clone();
        self.db
            .read(move |c| {
                first(
                    c,
                    "SELECT ccid, secret_hex, name, consent_auth_default, created_at FROM merchants WHERE ccid = ?",
                    [ccid.as_str()],
                    merchant_from_row,
                )
            })
            .await
    }

    async fn insert_merchant(&self, m: &MerchantRecord) -> Result<(), StoreError> {
        let m = m.clone();
        self.db
            .write(move |c| {
                exec(
                    c,
                    "INSERT INTO merchants(ccid, secret_hex, name, consent_auth_default, created_at) VALUES (?, ?, ?, ?, ?)",
                    params![
                        m.ccid.as_str(),
                        m.secret_hex.expose(),
                        m.name,
                        i64::from(m.consent_auth_default),
                        m.created_at
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn merchants(&self) -> Result<Vec<MerchantRecord>, StoreError> {
        self.db
            .read(|c| {
                all(
                    c,
                    "SELECT ccid, secret_hex, name, consent_auth_default, created_at FROM merchants ORDER BY created_at, ccid",
                    [],
                    merchant_from_row,
                )
            })
            .await
    }

    async fn order(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Option<OrderRecord>, StoreError> {
        let (ccid, order_id) = (ccid.clone(), order_id.clone());
        self.db
            .read(move |c| {
                first(
                    c,
                    "SELECT * FROM orders WHERE merchant_ccid = ? AND order_id = ?",
                    [ccid.as_str(), order_id.as_str()],
                    order_from_row,
                )
            })
            .await
    }

    async fn order_by_ref(&self, public_ref: &str) -> Result<Option<OrderRecord>, StoreError> {
        let public_ref = public_ref.to_owned();
        self.db
            .read(move |c| {
                first(
                    c,
                    "SELECT * FROM orders WHERE public_ref = ?",
                    [public_ref],
                    order_from_row,
                )
            })
            .await
    }

    async fn apply(&self, unit: &Unit) -> Result<(), StoreError> {
        let unit = unit.clone();
        self.db
            .write(move |c| {
                unit.writes
                    .iter()
                    .try_for_each(|write| apply_write(c, &unit, write))
            })
            .await
    }

    async fn operations(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Vec<OperationRecord>, StoreError> {
        let (ccid, order_id) = (ccid.clone(), order_id.clone());
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT * FROM operations WHERE merchant_ccid = ? AND order_id = ? ORDER BY seq",
                    [ccid.as_str(), order_id.as_str()],
                    operation_from_row,
                )
            })
            .await
    }

    async fn pending_operations(&self, limit: i64) -> Result<Vec<OperationRecord>, StoreError> {
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT * FROM operations WHERE status = 'Pending' ORDER BY created_at, idempotency_key LIMIT ?",
                    [limit],
                    operation_from_row,
                )
            })
            .await
    }

    async fn history(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let (ccid, order_id) = (ccid.clone(), order_id.clone());
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT command, request, mstatus, v_result_code, message, at, amount FROM order_history WHERE merchant_ccid = ? AND order_id = ? ORDER BY id",
                    [ccid.as_str(), order_id.as_str()],
                    |r| {
                        Ok(HistoryEntry {
                            command: r.get(0)?,
                            request: r.get(1)?,
                            mstatus: r.get(2)?,
                            v_result_code: r.get(3)?,
                            message: r.get(4)?,
                            at: r.get(5)?,
                            amount: r
                                .get::<_, Option<i64>>(6)?
                                .and_then(|v| u64::try_from(v).ok())
                                .map(Yen::new),
                        })
                    },
                )
            })
            .await
    }

    async fn refunds(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Vec<RefundRecord>, StoreError> {
        let (ccid, order_id) = (ccid.clone(), order_id.clone());
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT seq, amazon_refund_id, amount, state, created_at FROM refunds WHERE merchant_ccid = ? AND order_id = ? ORDER BY seq",
                    [ccid.as_str(), order_id.as_str()],
                    |r| {
                        Ok(RefundRecord {
                            seq: r.get(0)?,
                            amazon_refund_id: r.get(1)?,
                            amount: yen(r, "amount")?,
                            state: r.get(3)?,
                            created_at: r.get(4)?,
                        })
                    },
                )
            })
            .await
    }

    async fn claim_pushes(
        &self,
        now: i64,
        lease_secs: i64,
        limit: i64,
    ) -> Result<Vec<PushRecord>, StoreError> {
        // One statement: the rows are leased and read atomically, so two workers never take the
        // same record.
        let mut out = self
            .db
            .write(move |c| {
                all(
                    c,
                    "UPDATE push_records SET lease_until = ? WHERE id IN (SELECT id FROM push_records WHERE status = 'Pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?) ORDER BY id LIMIT ?) RETURNING *",
                    params![now + lease_secs, now, now, limit],
                    push_from_row,
                )
            })
            .await?;
        out.sort_by_key(|p| p.id);
        Ok(out)
    }

    async fn finish_pushes(&self, ids: &[i64], end: &PushEnd) -> Result<(), StoreError> {
        let (ids, end) = (ids.to_vec(), end.clone());
        self.db
            .write(move |c| {
                for id in ids {
                    match &end {
                        PushEnd::Delivered { push_id, at } => exec(c, "UPDATE push_records SET status = 'Delivered', attempts = attempts + 1, lease_until = NULL, push_id = ?, delivered_at = ?, last_error = NULL WHERE id = ?", params![push_id, at, id])?,
                        PushEnd::Retry { error, next_attempt_at } => exec(c, "UPDATE push_records SET attempts = attempts + 1, lease_until = NULL, last_error = ?, next_attempt_at = ? WHERE id = ?", params![error, next_attempt_at, id])?,
                        PushEnd::Failed { error } => exec(c, "UPDATE push_records SET status = 'Failed', attempts = attempts + 1, lease_until = NULL, last_error = ? WHERE id = ?", params![error, id])?,
                        PushEnd::Refused { error } => exec(c, "UPDATE push_records SET status = 'Refused', lease_until = NULL, last_error = ? WHERE id = ?", params![error, id])?,
                    };
                }
                Ok(())
            })
            .await
    }

    async fn pushes(&self, filter: &PushFilter) -> Result<Vec<PushRecord>, StoreError> {
        let filter = filter.clone();
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT * FROM push_records WHERE (?1 IS NULL OR merchant_ccid = ?1) AND (?2 IS NULL OR order_id = ?2) AND (?3 IS NULL OR status = ?3) ORDER BY id LIMIT ?4",
                    params![
                        filter.merchant.as_ref().map(MerchantCcid::as_str),
                        filter.order_id.as_ref().map(OrderId::as_str),
                        filter.status.map(PushStatus::as_str),
                        if filter.limit > 0 { filter.limit } else { 1000 }
                    ],
                    push_from_row,
                )
            })
            .await
    }

    async fn resend_push(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        self.db
            .write(move |c| {
                let changed = exec(c, "UPDATE push_records SET status = 'Pending', next_attempt_at = ?, lease_until = NULL WHERE id = ?", params![now, id])?;
                Ok(changed == 1)
            })
            .await
    }

    async fn claim_key(
        &self,
        ccid: &MerchantCcid,
        key: &str,
        fingerprint: &str,
        now: i64,
        abandoned_after: i64,
    ) -> Result<KeyClaim, StoreError> {
        let (ccid, key, fingerprint) = (ccid.clone(), key.to_owned(), fingerprint.to_owned());
        self.db
            .write(move |c| claim_key_in(c, &ccid, &key, &fingerprint, now, abandoned_after))
            .await
    }

    async fn finish_key(
        &self,
        ccid: &MerchantCcid,
        key: &str,
        answer: &str,
    ) -> Result<(), StoreError> {
        let (ccid, key, answer) = (ccid.clone(), key.to_owned(), answer.to_owned());
        self.db
            .write(move |c| {
                exec(
                    c,
                    "UPDATE idempotency_keys SET answer = ? WHERE merchant_ccid = ? AND key = ?",
                    params![answer, ccid.as_str(), key],
                )?;
                Ok(())
            })
            .await
    }

    async fn release_key(&self, ccid: &MerchantCcid, key: &str) -> Result<(), StoreError> {
        let (ccid, key) = (ccid.clone(), key.to_owned());
        self.db
            .write(move |c| {
                exec(
                    c,
                    "DELETE FROM idempotency_keys WHERE merchant_ccid = ? AND key = ? AND answer IS NULL",
                    params![ccid.as_str(), key],
                )?;
                Ok(())
            })
            .await
    }

    async fn prune_keys(&self, before: i64) -> Result<u64, StoreError> {
        self.db
            .write(move |c| {
                let n = exec(
                    c,
                    "DELETE FROM idempotency_keys WHERE created_at < ?",
                    [before],
                )?;
                Ok(u64::try_from(n).unwrap_or(u64::MAX))
            })
            .await
    }

    async fn orders_in_state(
        &self,
        state: OrderState,
        before: &str,
        limit: i64,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let before = before.to_owned();
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT * FROM orders WHERE state = ? AND updated_at < ? ORDER BY updated_at LIMIT ?",
                    params![state.as_str(), before, limit],
                    order_from_row,
                )
            })
            .await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.db
            .write(move |c| {
                let changed = exec(
                    c,
                    "INSERT INTO leases(name, holder, until) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, until = excluded.until WHERE leases.until <= ?4 OR leases.holder = excluded.holder",
                    params![name, holder, now + ttl, now],
                )?;
                Ok(changed == 1)
            })
            .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.db
            .write(move |c| {
                exec(
                    c,
                    "UPDATE leases SET until = 0 WHERE name = ? AND holder = ?",
                    params![name, holder],
                )?;
                Ok(())
            })
            .await
    }

    async fn order_by_charge_permission(
        &self,
        charge_permission_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        let id = charge_permission_id.to_owned();
        self.db
            .read(move |c| {
                first(
                    c,
                    "SELECT * FROM orders WHERE charge_permission_id = ? ORDER BY original_order_id IS NOT NULL, created_at LIMIT 1",
                    [id],
                    order_from_row,
                )
            })
            .await
    }

    async fn order_by_charge(&self, charge_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let id = charge_id.to_owned();
        self.db
            .read(move |c| {
                first(
                    c,
                    "SELECT * FROM orders WHERE charge_id = ?",
                    [id],
                    order_from_row,
                )
            })
            .await
    }

    async fn order_by_refund(&self, refund_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let id = refund_id.to_owned();
        self.db
            .read(move |c| {
                first(
                    c,
                    "SELECT o.* FROM refunds r JOIN orders o ON o.merchant_ccid = r.merchant_ccid AND o.order_id = r.order_id WHERE r.amazon_refund_id = ?",
                    [id],
                    order_from_row,
                )
            })
            .await
    }

    async fn ipn_seen(&self, message_id: &str) -> Result<bool, StoreError> {
        let id = message_id.to_owned();
        self.db
            .read(move |c| {
                let found = first(
                    c,
                    "SELECT 1 FROM ipn_messages WHERE message_id = ?",
                    [id],
                    |_| Ok(()),
                )?;
                Ok(found.is_some())
            })
            .await
    }

    async fn mark_ipn_seen(&self, message_id: &str, at: i64) -> Result<(), StoreError> {
        let id = message_id.to_owned();
        self.db
            .write(move |c| {
                exec(
                    c,
                    "INSERT INTO ipn_messages(message_id, received_at) VALUES (?, ?) ON CONFLICT(message_id) DO NOTHING",
                    params![id, at],
                )?;
                Ok(())
            })
            .await
    }

    async fn search(&self, query: &crate::SearchQuery) -> Result<crate::SearchResult, StoreError> {
        let query = query.clone();
        self.db.read(move |c| search::search(c, &query)).await
    }

    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        let name = name.to_owned();
        self.db.read(move |c| setting_in(c, &name)).await
    }

    async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.db
            .write(move |c| {
                exec(
                    c,
                    "INSERT INTO settings(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    params![name, value],
                )?;
                Ok(())
            })
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db
            .read(|c| {
                c.query_row("SELECT 1", [], |_| Ok(()))?;
                Ok(())
            })
            .await
    }

    async fn claim_setting(&self, name: &str, value: &str) -> Result<String, StoreError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.db
            .write(move |c| {
                exec(
                    c,
                    "INSERT INTO settings(name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
                    params![name, value],
                )?;
                setting_in(c, &name)?.ok_or_else(|| {
                    StoreError::Database(format!("setting {name} vanished as it was claimed"))
                })
            })
            .await
    }
}

fn setting_in(conn: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM settings WHERE name = ?")?
        .query_row([name], |r| r.get(0))
        .optional()?)
}

fn insert_order(conn: &Connection, o: &OrderRecord) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT INTO orders(merchant_ccid, order_id, public_ref, dummy, state, amount, authorized, captured, refunded, with_capture, note_to_buyer, success_url, cancel_url, error_url, authorize_push_url, capture_push_url, cancel_push_url, checkout_session_id, charge_permission_id, charge_id, in_flight, version, created_at, updated_at, accounting_type, consent_state, consent_amount, frequency_unit, frequency_value, consent_auth_type, original_order_id, pay_confirm_screen_type, pay_confirm_screen_url, address_restrictions, suppress_shipping_address_view, extend_expiration, platform_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            o.merchant.as_str(),
            o.order_id.as_str(),
            o.public_ref,
            i64::from(o.dummy),
            o.order.state.as_str(),
            to_i64(o.order.amount),
            to_i64(o.order.authorized),
            to_i64(o.order.captured),
            to_i64(o.order.refunded),
            i64::from(o.with_capture),
            o.note_to_buyer,
            o.success_url,
            o.cancel_url,
            o.error_url,
            o.authorize_push_url,
            o.capture_push_url,
            o.cancel_push_url,
            o.checkout_session_id,
            o.charge_permission_id,
            o.charge_id,
            o.in_flight,
            o.version,
            o.created_at,
            o.updated_at,
            i64::from(o.accounting_type()),
            o.consent.map(|c| c.state.as_str()),
            o.consent.map(|c| to_i64(c.amount)),
            o.consent.map(|c| c.frequency.unit().as_str()),
            o.consent.map(|c| i64::from(c.frequency.value())),
            o.consent.map(|c| i64::from(c.with_authorization)),
            o.original_order_id.as_ref().map(OrderId::as_str),
            i64::from(o.confirm_screen.type_code()),
            match &o.confirm_screen {
                ConfirmScreen::Merchant { url } => Some(url.as_str()),
                ConfirmScreen::Gateway => None,
            },
            o.options.address_restrictions,
            o.options.suppress_shipping_address_view.map(i64::from),
            i64::from(o.options.extend_expiration),
            o.options.platform_id,
        ],
    )?;
    Ok(())
}

fn update_order(conn: &Connection, o: &OrderRecord) -> Result<(), StoreError> {
    let changed = exec(
        conn,
        "UPDATE orders SET state = ?, amount = ?, authorized = ?, captured = ?, refunded = ?, checkout_session_id = ?, charge_permission_id = ?, charge_id = ?, in_flight = ?, version = ?, updated_at = ?, consent_state = ?, consent_amount = ?, frequency_unit = ?, frequency_value = ? WHERE merchant_ccid = ? AND order_id = ? AND version = ?",
        params![
            o.order.state.as_str(),
            to_i64(o.order.amount),
            to_i64(o.order.authorized),
            to_i64(o.order.captured),
            to_i64(o.order.refunded),
            o.checkout_session_id,
            o.charge_permission_id,
            o.charge_id,
            o.in_flight,
            o.version,
            o.updated_at,
            o.consent.map(|c| c.state.as_str()),
            o.consent.map(|c| to_i64(c.amount)),
            o.consent.map(|c| c.frequency.unit().as_str()),
            o.consent.map(|c| i64::from(c.frequency.value())),
            o.merchant.as_str(),
            o.order_id.as_str(),
            o.version - 1,
        ],
    )?;
    if changed != 1 {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

fn apply_write(conn: &Connection, unit: &Unit, write: &Write) -> Result<(), StoreError> {
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
            insert_order(conn, o)
        }
        Write::UpdateOrder(o) => {
            same_order(&o.merchant, &o.order_id)?;
            update_order(conn, o)
        }
        Write::History(e) => insert_history(conn, ccid, order_id, e),
        Write::Refund(r) => {
            exec(
                conn,
                "INSERT INTO refunds(merchant_ccid, order_id, seq, amazon_refund_id, amount, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                params![ccid, order_id, r.seq, r.amazon_refund_id, to_i64(r.amount), r.state, r.created_at],
            )?;
            Ok(())
        }
        Write::BeginOperation(op) => {
            same_order(&op.merchant, &op.order_id)?;
            exec(
                conn,
                "INSERT INTO operations(idempotency_key, merchant_ccid, order_id, seq, kind, amount, note, status, reported, result_code, result_message, amazon_id, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    op.key,
                    ccid,
                    order_id,
                    op.seq,
                    op.intent.kind.as_str(),
                    to_i64(op.intent.amount),
                    op.intent.note,
                    op.status.as_str(),
                    i64::from(op.reported),
                    op.result_code,
                    op.result_message,
                    op.amazon_id,
                    op.created_at,
                    op.finished_at,
                ],
            )?;
            Ok(())
        }
        Write::FinishOperation(end) => finish_operation(conn, unit, end),
        Write::RefundState {
            amazon_refund_id,
            state,
        } => {
            exec(
                conn,
                "UPDATE refunds SET state = ? WHERE merchant_ccid = ? AND order_id = ? AND amazon_refund_id = ?",
                params![state, ccid, order_id, amazon_refund_id],
            )?;
            Ok(())
        }
        Write::IpnSeen { message_id, at } => {
            // A second handler of the same notification (another gateway) loses here.
            exec(
                conn,
                "INSERT INTO ipn_messages(message_id, received_at) VALUES (?, ?)",
                params![message_id, at],
            )?;
            Ok(())
        }
        Write::Push(p) => {
            same_order(&p.merchant, &p.order_id)?;
            exec(
                conn,
                "INSERT INTO push_records(merchant_ccid, order_id, kind, url, dummy, fields, status, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'Pending', 0, ?, ?)",
                params![
                    ccid,
                    order_id,
                    p.kind.as_str(),
                    p.url,
                    i64::from(p.dummy),
                    encode_fields(&p.fields),
                    p.next_attempt_at,
                    p.created_at,
                ],
            )?;
            Ok(())
        }
        Write::NoteOperation { key, note } => {
            let changed = exec(
                conn,
                "UPDATE operations SET note = ? WHERE idempotency_key = ? AND merchant_ccid = ? AND order_id = ? AND status = 'Pending'",
                params![note, key, ccid, order_id],
            )?;
            if changed != 1 {
                return Err(StoreError::Conflict);
            }
            Ok(())
        }
        Write::MarkReported { key } => {
            let changed = exec(
                conn,
                "UPDATE operations SET reported = 1 WHERE idempotency_key = ? AND merchant_ccid = ? AND order_id = ? AND status != 'Pending'",
                params![key, ccid, order_id],
            )?;
            if changed != 1 {
                return Err(StoreError::Conflict);
            }
            Ok(())
        }
    }
}

/// Finishes a pending operation; [`StoreError::Conflict`] if it is not pending any more (another
/// process finished it first).
fn finish_operation(conn: &Connection, unit: &Unit, end: &OperationEnd) -> Result<(), StoreError> {
    if end.status == OperationStatus::Pending {
        return Err(StoreError::Corrupt(
            "an operation cannot be finished as Pending".into(),
        ));
    }
    let changed = exec(
        conn,
        "UPDATE operations SET status = ?, result_code = ?, result_message = ?, amazon_id = ?, reported = ?, finished_at = ? WHERE idempotency_key = ? AND merchant_ccid = ? AND order_id = ? AND status = 'Pending'",
        params![
            end.status.as_str(),
            end.result_code,
            end.result_message,
            end.amazon_id,
            i64::from(end.reported),
            end.at,
            end.key,
            unit.merchant.as_str(),
            unit.order_id.as_str(),
        ],
    )?;
    if changed != 1 {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

/// [`Store::claim_key`] inside the writer's transaction.
fn claim_key_in(
    conn: &Connection,
    ccid: &MerchantCcid,
    key: &str,
    fingerprint: &str,
    now: i64,
    abandoned_after: i64,
) -> Result<KeyClaim, StoreError> {
    let inserted = exec(
        conn,
        "INSERT INTO idempotency_keys(merchant_ccid, key, fingerprint, answer, created_at) VALUES (?, ?, ?, NULL, ?) ON CONFLICT (merchant_ccid, key) DO NOTHING",
        params![ccid.as_str(), key, fingerprint, now],
    )?;
    if inserted == 1 {
        return Ok(KeyClaim::New);
    }
    let row = first(
        conn,
        "SELECT fingerprint, answer, created_at FROM idempotency_keys WHERE merchant_ccid = ? AND key = ?",
        params![ccid.as_str(), key],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, i64>(2)?)),
    )?;
    let claim = match row {
        None => KeyClaim::InFlight,
        Some((fp, _, _)) if fp != fingerprint => KeyClaim::Mismatch,
        Some((_, Some(answer), _)) => KeyClaim::Replay(answer),
        Some((_, None, created)) if now - created >= abandoned_after => {
            exec(
                conn,
                "UPDATE idempotency_keys SET created_at = ? WHERE merchant_ccid = ? AND key = ?",
                params![now, ccid.as_str(), key],
            )?;
            KeyClaim::New
        }
        Some((_, None, _)) => KeyClaim::InFlight,
    };
    Ok(claim)
}

fn encode_fields(fields: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

fn push_from_row(r: &Row<'_>) -> Result<PushRecord, StoreError> {
    let merchant: String = get(r, "merchant_ccid")?;
    let order_id: String = get(r, "order_id")?;
    let kind: String = get(r, "kind")?;
    let status: String = get(r, "status")?;
    let fields: String = get(r, "fields")?;
    Ok(PushRecord {
        id: get(r, "id")?,
        merchant: MerchantCcid::parse(&merchant).map_err(corrupt)?,
        order_id: OrderId::parse(&order_id).map_err(corrupt)?,
        kind: PushKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown push kind {kind}")))?,
        url: get(r, "url")?,
        dummy: flag(r, "dummy")?,
        fields: form_urlencoded::parse(fields.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        status: PushStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown push status {status}")))?,
        attempts: u32::try_from(get::<i64>(r, "attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: get(r, "next_attempt_at")?,
        lease_until: get(r, "lease_until")?,
        push_id: get(r, "push_id")?,
        last_error: get(r, "last_error")?,
        created_at: get(r, "created_at")?,
        delivered_at: get(r, "delivered_at")?,
    })
}

fn operation_from_row(r: &Row<'_>) -> Result<OperationRecord, StoreError> {
    let merchant: String = get(r, "merchant_ccid")?;
    let order_id: String = get(r, "order_id")?;
    let kind: String = get(r, "kind")?;
    let status: String = get(r, "status")?;
    Ok(OperationRecord {
        key: get(r, "idempotency_key")?,
        merchant: MerchantCcid::parse(&merchant).map_err(corrupt)?,
        order_id: OrderId::parse(&order_id).map_err(corrupt)?,
        seq: get(r, "seq")?,
        intent: Intent {
            kind: OperationKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown operation kind {kind}")))?,
            amount: yen(r, "amount")?,
            note: get(r, "note")?,
        },
        status: OperationStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown operation status {status}")))?,
        reported: flag(r, "reported")?,
        result_code: get(r, "result_code")?,
        result_message: get(r, "result_message")?,
        amazon_id: get(r, "amazon_id")?,
        created_at: get(r, "created_at")?,
        finished_at: get(r, "finished_at")?,
    })
}

fn merchant_from_row(r: &Row<'_>) -> Result<MerchantRecord, StoreError> {
    let ccid: String = r.get(0)?;
    Ok(MerchantRecord {
        ccid: MerchantCcid::parse(&ccid).map_err(corrupt)?,
        secret_hex: Secret::new(r.get(1)?),
        name: r.get(2)?,
        consent_auth_default: r.get::<_, i64>(3)? != 0,
        created_at: r.get(4)?,
    })
}
