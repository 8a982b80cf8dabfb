//! Search's SQL for SQLite: one query picks the orders (newest first, one more than asked, to tell
//! whether more matched), a second reads their history.

use super::order_from_row;
use crate::search::{
    DummyFilter, FoundOrder, Mstatus, OrderIdFilter, SearchQuery, SearchResult, Transaction,
};
use crate::StoreError;
use kessai_core::{OrderState, Yen};
use rusqlite::types::Value;
use rusqlite::Connection;
use std::collections::HashMap;

/// SQL text with its bound values, built piece by piece.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub text: String,
    pub values: Vec<Value>,
}

impl Sql {
    fn new(text: &str) -> Sql {
        Sql {
            text: text.to_owned(),
            values: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// A placeholder bound to `value`.
    fn push_bind(&mut self, value: impl Into<Value>) -> &mut Sql {
        self.text.push('?');
        self.values.push(value.into());
        self
    }

    /// Placeholders separated by commas, one bound to each of `values`.
    fn push_list<V: Into<Value>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Sql {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.push_bind(value);
        }
        self
    }

    /// Runs the query; each row made by `make`.
    pub(crate) fn rows<T>(
        &self,
        conn: &Connection,
        make: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        // Not kept prepared: the text changes with the filters.
        let mut statement = conn.prepare(&self.text)?;
        let mut rows = statement.query(rusqlite::params_from_iter(self.values.iter()))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(make(row)?);
        }
        Ok(out)
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// Stored instants are RFC 3339 UTC with a `Z` and as many fraction digits as needed, so they
/// do not compare as text to the second: `…:19Z` sorts after `…:19.5Z`. A bound written to the
/// second without the `Z` compares right with both: `at >= "…:19"` holds for every instant in
/// second 19 or later, and `at < "…:20"` for every instant before second 20.
fn second_text(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
}

fn to_i64(y: Yen) -> i64 {
    i64::try_from(y.get()).unwrap_or(i64::MAX)
}

/// The orders query of `q`, after `prefix` (`""`, or `EXPLAIN QUERY PLAN ` in tests).
pub(crate) fn orders_query(q: &SearchQuery, prefix: &str) -> Sql {
    let mut b = Sql::new(prefix);
    if q.states.len() < 2 {
        push_select(&mut b, q, q.states.first().copied());
        return b;
    }
    // Several states: one branch per state, each read in order from orders_search_state and cut
    // at the limit, then merged. (As one `state IN (…)`, SQLite walks all of the merchant's orders
    // by time to spare the sort, which is slow when the states are rare.)
    b.push("SELECT * FROM (");
    for (i, state) in q.states.iter().enumerate() {
        if i > 0 {
            b.push(" UNION ALL ");
        }
        b.push("SELECT * FROM (");
        push_select(&mut b, q, Some(*state));
        b.push(")");
    }
    b.push(") ORDER BY created_at DESC, order_id DESC LIMIT ");
    b.push_bind(i64::from(q.max_count) + 1);
    b
}

/// One `SELECT` of the orders of `q`, in `state` if given (`q.states` is not read).
fn push_select(b: &mut Sql, q: &SearchQuery, state: Option<OrderState>) {
    b.push("SELECT o.* FROM orders o WHERE o.merchant_ccid = ");
    b.push_bind(text(q.merchant.as_str()));
    match q.dummy {
        DummyFilter::LiveOnly => {
            b.push(" AND o.dummy = 0");
        }
        DummyFilter::DummyOnly => {
            b.push(" AND o.dummy = 1");
        }
        DummyFilter::Both => {}
    }
    match &q.order_id {
        None => {}
        Some(OrderIdFilter::Exact(id)) => {
            b.push(" AND o.order_id = ").push_bind(text(id.as_str()));
        }
        // GLOB, not LIKE: it is case-sensitive (as order ids are) and its only wildcards that an
        // order id's characters could hold are none at all (`*`, `?`, `[` are not order-id
        // characters), so `_` and `%` can only match themselves. A fixed prefix lets SQLite seek
        // the primary key.
        Some(OrderIdFilter::Pattern(p)) => {
            b.push(" AND o.order_id GLOB ").push_bind(text(p.as_str()));
        }
    }
    if let Some(state) = state {
        b.push(" AND o.state = ").push_bind(text(state.as_str()));
    }
    if let Some(t) = q.accounting_type {
        b.push(" AND o.accounting_type = ").push_bind(i64::from(t));
    }
    if let Some(id) = &q.original_order_id {
        b.push(" AND o.original_order_id = ")
            .push_bind(text(id.as_str()));
    }
    if !q.consent_states.is_empty() {
        b.push(" AND o.consent_state IN (")
            .push_list(q.consent_states.iter().map(|s| text(s.as_str())))
            .push(")");
    }
    if let Some(t) = q.pay_confirm_screen_type {
        b.push(" AND o.pay_confirm_screen_type = ")
            .push_bind(i64::from(t));
    }
    if let Some(id) = &q.charge_permission_id {
        b.push(" AND o.charge_permission_id = ")
            .push_bind(text(id.as_str()));
    }
    if let Some(id) = &q.charge_id {
        b.push(" AND o.charge_id = ").push_bind(text(id.as_str()));
    }
    let t = &q.transactions;
    if !t.is_empty() {
        // With a command, a time or an amount range, or only the rare results (failure,
        // pending), collect the orders of the matching entries first (order_history_search_*):
        // the cost follows the matches. With only `success` among the results, walk the orders
        // newest first and look at each one's own entries (order_history_by_order): nearly every
        // order has a success, so the walk stops after a few orders, where collecting first
        // would read the merchant's whole history.
        let rare_results = !t.mstatuses.is_empty() && !t.mstatuses.contains(&Mstatus::Success);
        let collect_first =
            !t.commands.is_empty() || !t.at.is_open() || !t.amount.is_open() || rare_results;
        if !collect_first {
            // INDEXED BY: the probe must be by order; SQLite would otherwise pick the result index
            // and read every success entry for each order.
            b.push(" AND EXISTS (SELECT 1 FROM order_history h INDEXED BY order_history_by_order WHERE h.merchant_ccid = o.merchant_ccid AND h.order_id = o.order_id");
        } else {
            b.push(" AND o.order_id IN (SELECT h.order_id FROM order_history h WHERE h.merchant_ccid = ");
            b.push_bind(text(q.merchant.as_str()));
        }
        if !t.commands.is_empty() {
            b.push(" AND h.command IN (")
                .push_list(t.commands.iter().map(|c| text(c.as_str())))
                .push(")");
        }
        if !t.mstatuses.is_empty() {
            b.push(" AND h.mstatus IN (")
                .push_list(t.mstatuses.iter().map(|m| text(m.as_str())))
                .push(")");
        }
        if let Some(from) = t.at.from {
            b.push(" AND h.at >= ").push_bind(second_text(from));
        }
        if let Some(to) = t.at.to {
            let next = to + time::Duration::seconds(1);
            b.push(" AND h.at < ").push_bind(second_text(next));
        }
        if let Some(from) = t.amount.from {
            b.push(" AND h.amount >= ").push_bind(to_i64(from));
        }
        if let Some(to) = t.amount.to {
            b.push(" AND h.amount <= ").push_bind(to_i64(to));
        }
        if q.newest_only {
            b.push(" AND h.id = (SELECT MAX(n.id) FROM order_history n WHERE n.merchant_ccid = h.merchant_ccid AND n.order_id = h.order_id)");
        }
        b.push(")");
    }
    // Newest first; the order id breaks ties, so pages of equal times are stable.
    b.push(" ORDER BY o.created_at DESC, o.order_id DESC LIMIT ");
    b.push_bind(i64::from(q.max_count) + 1);
}

pub(super) fn search(conn: &Connection, q: &SearchQuery) -> Result<SearchResult, StoreError> {
    q.check()?;
    // One read transaction: the history read belongs to the same state as the orders.
    let tx = conn.unchecked_transaction()?;
    let mut orders = orders_query(q, "").rows(&tx, order_from_row)?;
    let more = orders.len() > q.max_count as usize;
    orders.truncate(q.max_count as usize);
    if orders.is_empty() {
        return Ok(SearchResult {
            orders: Vec::new(),
            more,
        });
    }
    let mut b = Sql::new(
        "SELECT id, order_id, command, mstatus, v_result_code, message, amount, at FROM order_history WHERE merchant_ccid = ",
    );
    b.push_bind(text(q.merchant.as_str()))
        .push(" AND order_id IN (")
        .push_list(orders.iter().map(|o| text(o.order_id.as_str())))
        .push(") ORDER BY order_id, id");
    let mut history: HashMap<String, Vec<Transaction>> = HashMap::new();
    let rows = b.rows(&tx, |r| {
        let order_id: String = r.get("order_id")?;
        let amount: Option<i64> = r.get("amount")?;
        let amount = amount
            .map(|v| {
                u64::try_from(v)
                    .map(Yen::new)
                    .map_err(|_| StoreError::Corrupt("a history amount is negative".into()))
            })
            .transpose()?;
        Ok((
            order_id,
            Transaction {
                id: r.get("id")?,
                command: r.get("command")?,
                mstatus: r.get("mstatus")?,
                v_result_code: r.get("v_result_code")?,
                message: r.get("message")?,
                amount,
                at: r.get("at")?,
            },
        ))
    })?;
    tx.commit()?;
    for (order_id, transaction) in rows {
        history.entry(order_id).or_default().push(transaction);
    }
    let orders = orders
        .into_iter()
        .map(|order| {
            let transactions = history.remove(order.order_id.as_str()).unwrap_or_default();
            FoundOrder {
                order,
                transactions,
            }
        })
        .collect();
    Ok(SearchResult { orders, more })
}

#[cfg(test)]
mod tests_support {
    use crate::{MerchantRecord, SqliteStore, Store};
    use kessai_core::{MerchantCcid, Secret};

    pub const M: &str = "A100000000000001069951cc";

    pub fn temp_path(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kessai-store-search-{}-{}",
            name,
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("gateway.sqlite")
    }

    pub async fn add_merchant(store: &SqliteStore, ccid: &str) {
        store
            .insert_merchant(&MerchantRecord {
                ccid: MerchantCcid::parse(ccid).unwrap(),
                secret_hex: Secret::new("00ff".into()),
                name: "m".into(),
                consent_auth_default: true,
                created_at: "2026-01-01T00:00:00Z".into(),
            })
            .await
            .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;
    use crate::search::{Mstatus, OrderIdFilter, Range, TransactionFilter};
    use crate::tests::search::{query, world};
    use crate::SqliteStore;
    use kessai_core::{ConsentState, OrderId, OrderState};
    use time::macros::datetime;

    /// The plan SQLite picks for `q`, one line per step.
    async fn plan(s: &SqliteStore, q: &SearchQuery) -> Vec<String> {
        let query = orders_query(q, "EXPLAIN QUERY PLAN ");
        s.db.read(move |c| query.rows(c, |r| Ok(r.get::<_, String>("detail")?)))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_main_filters_use_an_index() {
        let s = SqliteStore::open(&temp_path("plans")).await.unwrap();
        world(&s).await;
        let cases: Vec<(&str, SearchQuery, &str)> = vec![
            ("merchant only", query(), "orders_search_recent"),
            (
                "exact order id",
                SearchQuery {
                    order_id: Some(OrderIdFilter::parse("a_1").unwrap()),
                    ..query()
                },
                "(merchant_ccid=? AND order_id",
            ),
            (
                "order id prefix",
                SearchQuery {
                    order_id: Some(OrderIdFilter::parse("a_*").unwrap()),
                    ..query()
                },
                "(merchant_ccid=? AND order_id",
            ),
            (
                "state",
                SearchQuery {
                    states: vec![OrderState::Captured],
                    ..query()
                },
                "orders_search_state",
            ),
            (
                "charge permission",
                SearchQuery {
                    charge_permission_id: Some("P01-1".into()),
                    ..query()
                },
                "orders_search_charge_permission",
            ),
            (
                "charge",
                SearchQuery {
                    charge_id: Some("P01-1-C1".into()),
                    ..query()
                },
                "orders_search_charge",
            ),
            (
                "original order",
                SearchQuery {
                    original_order_id: Some(OrderId::parse("sub-1").unwrap()),
                    ..query()
                },
                "orders_search_original",
            ),
            (
                "consent state",
                SearchQuery {
                    consent_states: vec![ConsentState::Active],
                    ..query()
                },
                "orders_search_consent",
            ),
            (
                "transaction time",
                SearchQuery {
                    transactions: TransactionFilter {
                        at: Range {
                            from: Some(datetime!(2026-03-01 00:00:00 UTC)),
                            to: Some(datetime!(2026-03-01 23:59:59 UTC)),
                        },
                        ..Default::default()
                    },
                    ..query()
                },
                "order_history_search_at",
            ),
            (
                "transaction command, no time",
                SearchQuery {
                    transactions: TransactionFilter {
                        commands: vec!["Refund".into()],
                        ..Default::default()
                    },
                    ..query()
                },
                "order_history_search_command",
            ),
            (
                "transaction amount",
                SearchQuery {
                    transactions: TransactionFilter {
                        amount: Range {
                            from: Some(Yen::new(900)),
                            to: Some(Yen::new(980)),
                        },
                        ..Default::default()
                    },
                    ..query()
                },
                "order_history_search_amount",
            ),
            (
                "transaction result: failure",
                SearchQuery {
                    transactions: TransactionFilter {
                        mstatuses: vec![Mstatus::Failure],
                        ..Default::default()
                    },
                    ..query()
                },
                "order_history_search_mstatus",
            ),
            (
                "transaction result: success",
                SearchQuery {
                    transactions: TransactionFilter {
                        mstatuses: vec![Mstatus::Success],
                        ..Default::default()
                    },
                    ..query()
                },
                "order_history_by_order",
            ),
            (
                "several states",
                SearchQuery {
                    states: vec![OrderState::Captured, OrderState::Canceled],
                    ..query()
                },
                "orders_search_state",
            ),
        ];
        for (name, q, index) in cases {
            let steps = plan(&s, &q).await;
            let text = steps.join(" | ");
            eprintln!("{name}: {text}");
            assert!(text.contains(index), "{name}: {text}");
            for step in &steps {
                let words: Vec<&str> = step.split_whitespace().collect();
                let scans_a_table = words.first() == Some(&"SCAN")
                    && words.get(1).is_some_and(|t| ["o", "h", "n"].contains(t))
                    && !step.contains("USING");
                assert!(!scans_a_table, "{name}: a full scan in {text}");
            }
        }
    }
}

/// Search over a million orders. Ignored by default (it writes a ~1 GB file and takes a minute or
/// two); run it with
/// `cargo test -p kessai-store --release --lib -- --ignored --nocapture search_a_million_orders`.
/// `KESSAI_SEARCH_SCALE` changes the number of orders.
#[cfg(test)]
mod scale {
    use super::tests_support::*;
    use super::*;
    use crate::search::{Mstatus, OrderIdFilter, Range, TransactionFilter};
    use crate::{SqliteStore, Store};
    use kessai_core::{ConsentState, MerchantCcid, OrderId, OrderState, Yen};
    use std::time::{Duration, Instant};
    use time::macros::datetime;

    /// Fills the store inside SQLite (a recursive CTE): `n` orders of merchant `M` one every 30
    /// seconds from 2026-01-01, 10 % of them test orders, in four states; every 100th a recurring
    /// consent and every 100th (offset 50) a charge against one; an Authorize entry per order, a
    /// Capture an hour later for captured ones and a Refund two hours later for refunded ones.
    async fn fill(store: &SqliteStore, n: u64) {
        let sql = format!(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {n})
             INSERT INTO orders(merchant_ccid, order_id, public_ref, dummy, state, amount, authorized,
               captured, refunded, with_capture, charge_permission_id, charge_id, version, created_at,
               updated_at, accounting_type, consent_state, consent_amount, frequency_unit,
               frequency_value, consent_auth_type, original_order_id, pay_confirm_screen_type,
               pay_confirm_screen_url)
             SELECT '{M}', printf('o-%07d', i), printf('ref-%07d', i), i % 10 = 0,
               CASE i % 4 WHEN 0 THEN 'Captured' WHEN 1 THEN 'Authorized' WHEN 2 THEN 'Canceled'
                 ELSE 'PartiallyRefunded' END,
               1000 + i % 5000, 1000 + i % 5000,
               CASE WHEN i % 4 IN (0, 3) THEN 1000 + i % 5000 ELSE 0 END,
               CASE WHEN i % 4 = 3 THEN 100 ELSE 0 END,
               0, printf('P01-%07d', i), printf('P01-%07d-C1', i), 1,
               strftime('%Y-%m-%dT%H:%M:%SZ', 1767225600 + i * 30, 'unixepoch'),
               strftime('%Y-%m-%dT%H:%M:%SZ', 1767225600 + i * 30, 'unixepoch'),
               i % 100 IN (0, 50),
               CASE WHEN i % 100 = 0 THEN 'Active' END,
               CASE WHEN i % 100 = 0 THEN 980 END,
               CASE WHEN i % 100 = 0 THEN 'Month' END,
               CASE WHEN i % 100 = 0 THEN 1 END,
               CASE WHEN i % 100 = 0 THEN 1 END,
               CASE WHEN i % 100 = 50 AND i > 50 THEN printf('o-%07d', i - 50) END,
               i % 7 = 0, CASE WHEN i % 7 = 0 THEN 'https://shop.example/confirm' END
             FROM k"
        );
        store
            .db
            .write(move |c| Ok::<_, crate::StoreError>(c.execute_batch(&sql)?))
            .await
            .unwrap();
        for (command, offset, states) in [
            (
                "Authorize",
                0,
                "'Captured', 'Authorized', 'Canceled', 'PartiallyRefunded'",
            ),
            ("Capture", 3600, "'Captured', 'PartiallyRefunded'"),
            ("Refund", 7200, "'PartiallyRefunded'"),
        ] {
            let sql = format!(
                "INSERT INTO order_history(merchant_ccid, order_id, command, request, mstatus,
                   v_result_code, message, amount, at)
                 SELECT merchant_ccid, order_id, '{command}', '{{}}', 'success', 'S000000000000000',
                   'Success', CASE '{command}' WHEN 'Refund' THEN 100 ELSE amount END,
                   strftime('%Y-%m-%dT%H:%M:%SZ', unixepoch(created_at) + {offset}, 'unixepoch')
                 FROM orders WHERE state IN ({states}) ORDER BY created_at"
            );
            store
                .db
                .write(move |c| Ok::<_, crate::StoreError>(c.execute_batch(&sql)?))
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    #[ignore = "writes a large file; run by hand (see the module's doc)"]
    async fn search_a_million_orders() {
        let n: u64 = std::env::var("KESSAI_SEARCH_SCALE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        let path = temp_path("scale");
        let store = SqliteStore::open(&path).await.unwrap();
        add_merchant(&store, M).await;
        let started = Instant::now();
        fill(&store, n).await;
        let history: i64 = store
            .db
            .read(|c| {
                Ok::<i64, crate::StoreError>(c.query_row(
                    "SELECT count(*) FROM order_history",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "filled {n} orders, {history} history rows, {} MB in {:.1} s",
            bytes / 1_000_000,
            started.elapsed().as_secs_f64()
        );
        let day = Range {
            from: Some(datetime!(2026-06-01 00:00:00 +9)),
            to: Some(datetime!(2026-06-01 23:59:59 +9)),
        };
        let base = || SearchQuery::all(MerchantCcid::parse(M).unwrap(), 100);
        let cases: Vec<(&str, SearchQuery)> = vec![
            ("all, newest 100", base()),
            (
                "all, newest 1000",
                SearchQuery {
                    max_count: 1000,
                    ..base()
                },
            ),
            (
                "live only, newest 100",
                SearchQuery {
                    dummy: DummyFilter::LiveOnly,
                    ..base()
                },
            ),
            (
                "orderId exact",
                SearchQuery {
                    order_id: Some(OrderIdFilter::parse("o-0500000").unwrap()),
                    ..base()
                },
            ),
            (
                "orderId prefix o-00123* (1000)",
                SearchQuery {
                    order_id: Some(OrderIdFilter::parse("o-00123*").unwrap()),
                    ..base()
                },
            ),
            (
                "orderId *99 (no prefix)",
                SearchQuery {
                    order_id: Some(OrderIdFilter::parse("*99").unwrap()),
                    ..base()
                },
            ),
            (
                "orderStatus Canceled",
                SearchQuery {
                    states: vec![OrderState::Canceled],
                    ..base()
                },
            ),
            (
                "orderStatus Captured+Canceled",
                SearchQuery {
                    states: vec![OrderState::Captured, OrderState::Canceled],
                    ..base()
                },
            ),
            (
                "centerOrderId",
                SearchQuery {
                    charge_permission_id: Some("P01-0654321".into()),
                    ..base()
                },
            ),
            (
                "centerTransactionId",
                SearchQuery {
                    charge_id: Some("P01-0654321-C1".into()),
                    ..base()
                },
            ),
            (
                "originalOrderId",
                SearchQuery {
                    original_order_id: Some(OrderId::parse("o-0400000").unwrap()),
                    ..base()
                },
            ),
            (
                "consentStatus Active",
                SearchQuery {
                    consent_states: vec![ConsentState::Active],
                    ..base()
                },
            ),
            (
                "accountingType 1",
                SearchQuery {
                    accounting_type: Some(1),
                    ..base()
                },
            ),
            (
                "txnDatetime one day",
                SearchQuery {
                    transactions: TransactionFilter {
                        at: day.clone(),
                        ..Default::default()
                    },
                    ..base()
                },
            ),
            (
                "txnDatetime one day + Captured",
                SearchQuery {
                    states: vec![OrderState::Captured],
                    transactions: TransactionFilter {
                        at: day.clone(),
                        ..Default::default()
                    },
                    ..base()
                },
            ),
            (
                "txnDatetime one day, Refund, newest",
                SearchQuery {
                    transactions: TransactionFilter {
                        at: day.clone(),
                        commands: vec!["Refund".into()],
                        mstatuses: vec![Mstatus::Success],
                        ..Default::default()
                    },
                    newest_only: true,
                    ..base()
                },
            ),
            (
                "command Refund (no time)",
                SearchQuery {
                    transactions: TransactionFilter {
                        commands: vec!["Refund".into()],
                        ..Default::default()
                    },
                    ..base()
                },
            ),
            (
                "command Cancel (none: every order)",
                SearchQuery {
                    transactions: TransactionFilter {
                        commands: vec!["Cancel".into()],
                        ..Default::default()
                    },
                    ..base()
                },
            ),
            (
                "mstatus failure only (none: every order)",
                SearchQuery {
                    transactions: TransactionFilter {
                        mstatuses: vec![Mstatus::Failure],
                        ..Default::default()
                    },
                    ..base()
                },
            ),
            (
                "mstatus success only",
                SearchQuery {
                    transactions: TransactionFilter {
                        mstatuses: vec![Mstatus::Success],
                        ..Default::default()
                    },
                    ..base()
                },
            ),
            (
                "orderStatus Declined+Expired (none)",
                SearchQuery {
                    states: vec![OrderState::Declined, OrderState::Expired],
                    ..base()
                },
            ),
            (
                "txnDatetime newest hour",
                SearchQuery {
                    transactions: TransactionFilter {
                        at: Range {
                            from: Some(datetime!(2026-12-12 12:00:00 +9)),
                            to: Some(datetime!(2026-12-12 12:59:59 +9)),
                        },
                        ..Default::default()
                    },
                    ..base()
                },
            ),
            (
                "amount 4000..4001",
                SearchQuery {
                    transactions: TransactionFilter {
                        amount: Range {
                            from: Some(Yen::new(4000)),
                            to: Some(Yen::new(4001)),
                        },
                        ..Default::default()
                    },
                    ..base()
                },
            ),
        ];
        println!(
            "{:<40} {:>6} {:>10} {:>10}",
            "search", "found", "first ms", "median ms"
        );
        for (name, q) in cases {
            let mut times = Vec::new();
            let mut found = 0;
            for _ in 0..5 {
                let t = Instant::now();
                let r = store.search(&q).await.unwrap();
                times.push(t.elapsed());
                found = r.orders.len();
            }
            let first = times[0];
            times.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "{name:<40} {found:>6} {:>10.1} {:>10.1}",
                ms(first),
                ms(times[2])
            );
        }
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
