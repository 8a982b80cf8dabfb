//! Persistence of the gateway: merchants, orders, their command history and refunds, and the
//! search over them ([`search`]).
//!
//! The gateway sees only the [`Store`] trait. [`SqliteStore`] is the embedded backend (WAL mode,
//! migrations applied at open); [`PgStore`] is the PostgreSQL one, for several gateways sharing one
//! database. Both behave the same, and the same tests run against both. All writes go
//! through one unit of work ([`Store::apply`] of a [`Unit`]): an order change, its history entry,
//! its refund rows and its operation-log rows commit together or not at all. Every write that
//! changes an order is conditional on the version the caller read, so two writers can never both
//! move the same order.

mod model;
mod postgres;
pub mod search;
mod sqlite;
#[cfg(test)]
pub(crate) mod tests;

pub use model::{
    AmazonOptions, ConfirmScreen, HistoryEntry, KeyClaim, MerchantRecord, OperationEnd,
    OperationRecord, OrderRecord, PushEnd, PushFilter, PushRecord, RefundRecord, Unit, Write,
};
pub use postgres::PgStore;
pub use search::{
    DummyFilter, FoundOrder, Mstatus, OrderIdFilter, Range, SearchQuery, SearchResult, Transaction,
    TransactionFilter, MAX_SEARCH_COUNT,
};
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use kessai_core::{MerchantCcid, OrderId};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Duplicate,
    #[error("the order changed since it was read (version conflict)")]
    Conflict,
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(String),
    /// The database could not be reached, or did not answer in time (a pool, connection or
    /// statement timeout): retrying later may succeed. Whether a unit of work whose commit was
    /// cut off was stored is not known.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A query the store cannot run as asked (a caller's mistake, not the data's).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The database was migrated by a newer Kessai than this one.
    #[error("the database has migration {0}, which this Kessai does not know: it was written by a newer Kessai; run that version (or a newer one) against it")]
    NewerSchema(i64),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate,
            // SQLSTATE class 08: connection exception; 57: operator intervention (a server
            // shutting down or restarting, a statement timeout); 53300: too many connections.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| {
                    c.starts_with("08") || c.starts_with("57") || c == "53300"
                }) =>
            {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Database(e.to_string()),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let text = e.to_string();
        sqlite_error(&e, text)
    }
}

/// The store's error for SQLite's `e` (described as `text`).
fn sqlite_error(e: &rusqlite::Error, text: String) -> StoreError {
    use rusqlite::ffi::ErrorCode;
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Duplicate
        }
        // Another process held the file's lock past the busy timeout, or the disk failed.
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::DiskFull
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::CannotOpen
            ) =>
        {
            StoreError::Unavailable(text)
        }
        _ => StoreError::Database(text),
    }
}

impl From<kessai_sqlite::DbError> for StoreError {
    fn from(e: kessai_sqlite::DbError) -> Self {
        match e {
            kessai_sqlite::DbError::Sqlite(sqlite) => match std::sync::Arc::try_unwrap(sqlite) {
                Ok(sqlite) => sqlite.into(),
                Err(shared) => sqlite_error(&shared, shared.to_string()),
            },
            kessai_sqlite::DbError::Stopped => StoreError::Unavailable(e.to_string()),
            e => StoreError::Database(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::VersionMissing(v) => StoreError::NewerSchema(v),
            e => StoreError::Database(e.to_string()),
        }
    }
}

/// What the gateway needs from persistence.
#[async_trait]
pub trait Store: Send + Sync {
    async fn merchant(&self, ccid: &MerchantCcid) -> Result<Option<MerchantRecord>, StoreError>;
    /// Adds a merchant; [`StoreError::Duplicate`] if the ccid exists.
    async fn insert_merchant(&self, merchant: &MerchantRecord) -> Result<(), StoreError>;
    async fn merchants(&self) -> Result<Vec<MerchantRecord>, StoreError>;

    async fn order(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Option<OrderRecord>, StoreError>;
    async fn order_by_ref(&self, public_ref: &str) -> Result<Option<OrderRecord>, StoreError>;

    /// The unit of work: writes every row of `unit` in one transaction, or none of them.
    /// [`StoreError::Conflict`] if an updated order changed since it was read,
    /// [`StoreError::Duplicate`] if an inserted order (or a second pending operation) exists.
    async fn apply(&self, unit: &Unit) -> Result<(), StoreError>;

    /// The order's operations, oldest first.
    async fn operations(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Vec<OperationRecord>, StoreError>;
    /// Pending operations of all orders, oldest first, at most `limit`.
    async fn pending_operations(&self, limit: i64) -> Result<Vec<OperationRecord>, StoreError>;
    async fn history(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Vec<HistoryEntry>, StoreError>;
    async fn refunds(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> Result<Vec<RefundRecord>, StoreError>;

    /// Leases up to `limit` pending push records due at `now` for `lease_secs` seconds, so that
    /// no other worker (in this or another process) sends them meanwhile.
    async fn claim_pushes(
        &self,
        now: i64,
        lease_secs: i64,
        limit: i64,
    ) -> Result<Vec<PushRecord>, StoreError>;
    /// Records how a delivery attempt of the records `ids` ended (and releases their lease).
    async fn finish_pushes(&self, ids: &[i64], end: &PushEnd) -> Result<(), StoreError>;
    async fn pushes(&self, filter: &PushFilter) -> Result<Vec<PushRecord>, StoreError>;
    /// Sends a record again (whatever its status) at `now`; false if there is no such record.
    async fn resend_push(&self, id: i64, now: i64) -> Result<bool, StoreError>;

    /// Claims a merchant's idempotency key for a request with `fingerprint` at `now` (unix
    /// seconds). A claim in flight for longer than `abandoned_after` seconds is taken over.
    async fn claim_key(
        &self,
        ccid: &MerchantCcid,
        key: &str,
        fingerprint: &str,
        now: i64,
        abandoned_after: i64,
    ) -> Result<KeyClaim, StoreError>;
    /// Keeps the answer of the request that claimed the key.
    async fn finish_key(
        &self,
        ccid: &MerchantCcid,
        key: &str,
        answer: &str,
    ) -> Result<(), StoreError>;
    /// Forgets a claim whose request ended without a final answer (so a retry runs again).
    async fn release_key(&self, ccid: &MerchantCcid, key: &str) -> Result<(), StoreError>;
    /// Forgets keys created before `before` (unix seconds); returns how many.
    async fn prune_keys(&self, before: i64) -> Result<u64, StoreError>;

    /// Orders in `state` not changed since `before` (RFC 3339), oldest first, at most `limit`.
    async fn orders_in_state(
        &self,
        state: kessai_core::OrderState,
        before: &str,
        limit: i64,
    ) -> Result<Vec<OrderRecord>, StoreError>;
    /// Takes (or renews) the lease `name` for `holder` until `now + ttl` if it is free, expired or
    /// already the holder's; false if another holder has it.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl: i64,
    ) -> Result<bool, StoreError>;
    /// Gives the lease up (if `holder` has it), so the next taker need not wait for it to run out.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// The order a charge permission was made for (a recurring consent's own order, not the
    /// ReAuthorize orders charged against it).
    async fn order_by_charge_permission(
        &self,
        charge_permission_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError>;

    /// The order whose current charge is `charge_id`.
    async fn order_by_charge(&self, charge_id: &str) -> Result<Option<OrderRecord>, StoreError>;

    /// Transactions committed so far, where the backend counts them (for `kessai bench`).
    fn commit_count(&self) -> Option<u64> {
        None
    }

    /// The order of the refund Amazon named `refund_id`.
    async fn order_by_refund(&self, refund_id: &str) -> Result<Option<OrderRecord>, StoreError>;
    /// Whether the notification was handled already.
    async fn ipn_seen(&self, message_id: &str) -> Result<bool, StoreError>;
    /// Records a handled notification that changed no order.
    async fn mark_ipn_seen(&self, message_id: &str, at: i64) -> Result<(), StoreError>;

    /// A merchant's orders that match `query`, newest first, with their history.
    async fn search(&self, query: &SearchQuery) -> Result<SearchResult, StoreError>;

    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError>;
    async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError>;
    /// Whether the database answers (`/health`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// The setting `name`, written as `value` if it had none: the first writer wins, and every
    /// caller (several instances starting at once on one database) gets the same answer.
    async fn claim_setting(&self, name: &str, value: &str) -> Result<String, StoreError>;
}

/// An instant as stored: RFC 3339 UTC, to the microsecond (what both backends keep exactly). The
/// caller's clock says which instant.
pub fn time_text(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let micros = at.nanosecond() / 1_000 * 1_000;
    at.replace_nanosecond(micros)
        .unwrap_or(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
