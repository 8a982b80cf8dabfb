//! Search's SQL for PostgreSQL: one query picks the orders (newest first, one more than asked, to
//! tell whether more matched), a second reads their history. The same filters and order as the
//! SQLite backend's.

use super::rows::{instant_text, order_from_row, to_i64};
use crate::search::{
    DummyFilter, FoundOrder, OrderIdFilter, SearchQuery, SearchResult, Transaction,
};
use crate::StoreError;
use kessai_core::Yen;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use std::collections::HashMap;

/// The start of `at`'s second. Search's times are to the second and inclusive: an entry matches
/// `from..=to` when it lies in second `from` or later and before the second after `to`.
fn second(at: time::OffsetDateTime) -> time::OffsetDateTime {
    at.replace_nanosecond(0).unwrap_or(at)
}

/// An order-id pattern (`*` the only wildcard) as a LIKE pattern with `\` as its escape: `_`
/// (an order-id character) must match only itself; `%` and `\` cannot occur in a pattern, but
/// are escaped all the same. LIKE compares case-sensitively, as GLOB does in SQLite.
pub(crate) fn like_pattern(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 4);
    for c in glob.chars() {
        match c {
            '*' => out.push('%'),
            '_' | '%' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The orders query of `q`.
fn orders_query(q: &SearchQuery) -> QueryBuilder<'_, Postgres> {
    let mut b = QueryBuilder::new("SELECT o.* FROM orders o WHERE o.merchant_ccid = ");
    b.push_bind(q.merchant.as_str());
    match q.dummy {
        DummyFilter::LiveOnly => {
            b.push(" AND NOT o.dummy");
        }
        DummyFilter::DummyOnly => {
            b.push(" AND o.dummy");
        }
        DummyFilter::Both => {}
    }
    match &q.order_id {
        None => {}
        Some(OrderIdFilter::Exact(id)) => {
            b.push(" AND o.order_id = ").push_bind(id.as_str());
        }
        Some(OrderIdFilter::Pattern(p)) => {
            b.push(" AND o.order_id LIKE ")
                .push_bind(like_pattern(p.as_str()))
                .push(" ESCAPE '\\'");
        }
    }
    if !q.states.is_empty() {
        let states: Vec<&str> = q.states.iter().map(|s| s.as_str()).collect();
        b.push(" AND o.state = ANY(").push_bind(states).push(")");
    }
    if let Some(t) = q.accounting_type {
        b.push(" AND o.accounting_type = ").push_bind(i16::from(t));
    }
    if let Some(id) = &q.original_order_id {
        b.push(" AND o.original_order_id = ").push_bind(id.as_str());
    }
    if !q.consent_states.is_empty() {
        let states: Vec<&str> = q.consent_states.iter().map(|s| s.as_str()).collect();
        b.push(" AND o.consent_state = ANY(")
            .push_bind(states)
            .push(")");
    }
    if let Some(t) = q.pay_confirm_screen_type {
        b.push(" AND o.pay_confirm_screen_type = ")
            .push_bind(i16::from(t));
    }
    if let Some(id) = &q.charge_permission_id {
        b.push(" AND o.charge_permission_id = ")
            .push_bind(id.as_str());
    }
    if let Some(id) = &q.charge_id {
        b.push(" AND o.charge_id = ").push_bind(id.as_str());
    }
    let t = &q.transactions;
    if !t.is_empty() {
        b.push(" AND EXISTS (SELECT 1 FROM order_history h WHERE h.merchant_ccid = o.merchant_ccid AND h.order_id = o.order_id");
        if !t.commands.is_empty() {
            b.push(" AND h.command = ANY(")
                .push_bind(t.commands.clone())
                .push(")");
        }
        if !t.mstatuses.is_empty() {
            let results: Vec<&str> = t.mstatuses.iter().map(|m| m.as_str()).collect();
            b.push(" AND h.mstatus = ANY(").push_bind(results).push(")");
        }
        if let Some(from) = t.at.from {
            b.push(" AND h.at >= ").push_bind(second(from));
        }
        if let Some(to) = t.at.to {
            b.push(" AND h.at < ")
                .push_bind(second(to) + time::Duration::seconds(1));
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
    b
}

pub(super) async fn search(pool: &PgPool, q: &SearchQuery) -> Result<SearchResult, StoreError> {
    q.check()?;
    let rows = orders_query(q).build().fetch_all(pool).await?;
    let more = rows.len() > q.max_count as usize;
    let orders = rows
        .iter()
        .take(q.max_count as usize)
        .map(order_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    if orders.is_empty() {
        return Ok(SearchResult {
            orders: Vec::new(),
            more,
        });
    }
    let ids: Vec<&str> = orders.iter().map(|o| o.order_id.as_str()).collect();
    let rows = sqlx::query(
        "SELECT id, order_id, command, mstatus, v_result_code, message, amount, at FROM order_history WHERE merchant_ccid = $1 AND order_id = ANY($2) ORDER BY order_id, id",
    )
    .bind(q.merchant.as_str())
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let mut history: HashMap<String, Vec<Transaction>> = HashMap::new();
    for r in rows {
        let order_id: String = r.try_get("order_id")?;
        let amount = r
            .try_get::<Option<i64>, _>("amount")?
            .map(|v| {
                u64::try_from(v)
                    .map(Yen::new)
                    .map_err(|_| StoreError::Corrupt("a history amount is negative".into()))
            })
            .transpose()?;
        history.entry(order_id).or_default().push(Transaction {
            id: r.try_get("id")?,
            command: r.try_get("command")?,
            mstatus: r.try_get("mstatus")?,
            v_result_code: r.try_get("v_result_code")?,
            message: r.try_get("message")?,
            amount,
            at: instant_text(&r, "at")?,
        });
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
mod tests {
    use super::like_pattern;

    #[test]
    fn order_id_patterns_become_escaped_like_patterns() {
        for (glob, like) in [
            ("a_*", "a\\_%"),
            ("*-*", "%-%"),
            ("abc*", "abc%"),
            ("*", "%"),
        ] {
            assert_eq!(like_pattern(glob), like, "{glob}");
        }
    }
}
