//! What Search asks the store for, and what it gets back: typed filters over a merchant's orders
//! and their history. The SQL lives with each backend; the MDK's field names live in the gateway.

use crate::{OrderRecord, StoreError};
use kessai_core::{ConsentState, MerchantCcid, OrderId, OrderState, Yen};

/// The most orders one search returns.
pub const MAX_SEARCH_COUNT: u32 = 1000;

/// An `orderId` filter: one id, or a pattern where `*` stands for any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderIdFilter {
    Exact(OrderId),
    /// The pattern's literal parts are order-id characters (`[A-Za-z0-9_-]`); `*` is the only
    /// wildcard (so `_` and `%` are never wildcards).
    Pattern(OrderIdPattern),
}

/// A pattern of order-id characters and `*`, with at least one `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderIdPattern(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("is empty")]
    Empty,
    #[error("is longer than 100 characters")]
    TooLong,
    #[error("may hold only letters, digits, '-', '_' and the wildcard '*'")]
    InvalidCharacters,
}

impl OrderIdFilter {
    /// `text` as an exact id, or as a pattern if it holds a `*`.
    pub fn parse(text: &str) -> Result<OrderIdFilter, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.chars().count() > 100 {
            return Err(PatternError::TooLong);
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '*';
        if !text.chars().all(allowed) {
            return Err(PatternError::InvalidCharacters);
        }
        if text.contains('*') {
            return Ok(OrderIdFilter::Pattern(OrderIdPattern(text.to_owned())));
        }
        OrderId::parse(text)
            .map(OrderIdFilter::Exact)
            .map_err(|_| PatternError::InvalidCharacters)
    }
}

impl OrderIdPattern {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The characters before the first `*` (what an index can seek to).
    pub fn prefix(&self) -> &str {
        self.0.split('*').next().unwrap_or_default()
    }
}

/// Which orders by test mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DummyFilter {
    LiveOnly,
    DummyOnly,
    Both,
}

/// An inclusive range; either end may be open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range<T> {
    pub from: Option<T>,
    pub to: Option<T>,
}

impl<T> Default for Range<T> {
    fn default() -> Self {
        Range {
            from: None,
            to: None,
        }
    }
}

impl<T> Range<T> {
    pub fn is_open(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }
}

/// The result of a history entry, as Search filters it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mstatus {
    Success,
    Failure,
    Pending,
}

impl Mstatus {
    pub const ALL: [Mstatus; 3] = [Mstatus::Success, Mstatus::Failure, Mstatus::Pending];

    pub fn as_str(self) -> &'static str {
        match self {
            Mstatus::Success => "success",
            Mstatus::Failure => "failure",
            Mstatus::Pending => "pending",
        }
    }

    pub fn parse(text: &str) -> Option<Mstatus> {
        Mstatus::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// Conditions on the history entries (transactions) of an order. An order matches when one of its
/// entries meets all of them (with `newest_only`, when its newest entry does).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransactionFilter {
    /// Any of these command names (empty: any).
    pub commands: Vec<String>,
    pub mstatuses: Vec<Mstatus>,
    /// Instants as stored (RFC 3339 UTC, see [`crate::time_text`]); `to` is inclusive.
    pub at: Range<time::OffsetDateTime>,
    pub amount: Range<Yen>,
}

impl TransactionFilter {
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
            && self.mstatuses.is_empty()
            && self.at.is_open()
            && self.amount.is_open()
    }
}

/// One search of one merchant's orders. Lists hold alternatives (any of them); fields are
/// combined with AND; an empty list or `None` does not filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub merchant: MerchantCcid,
    pub dummy: DummyFilter,
    pub order_id: Option<OrderIdFilter>,
    pub states: Vec<OrderState>,
    pub accounting_type: Option<u8>,
    pub original_order_id: Option<OrderId>,
    pub consent_states: Vec<ConsentState>,
    pub pay_confirm_screen_type: Option<u8>,
    /// Amazon's charge permission id.
    pub charge_permission_id: Option<String>,
    /// Amazon's charge id.
    pub charge_id: Option<String>,
    pub transactions: TransactionFilter,
    /// Judge (and return) only the newest history entry of each order.
    pub newest_only: bool,
    /// At most this many orders, newest first (1..=[`MAX_SEARCH_COUNT`]).
    pub max_count: u32,
}

impl SearchQuery {
    /// Every order of `merchant` (live and test), newest first, at most `max_count`.
    pub fn all(merchant: MerchantCcid, max_count: u32) -> SearchQuery {
        SearchQuery {
            merchant,
            dummy: DummyFilter::Both,
            order_id: None,
            states: Vec::new(),
            accounting_type: None,
            original_order_id: None,
            consent_states: Vec::new(),
            pay_confirm_screen_type: None,
            charge_permission_id: None,
            charge_id: None,
            transactions: TransactionFilter::default(),
            newest_only: false,
            max_count,
        }
    }

    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.max_count == 0 || self.max_count > MAX_SEARCH_COUNT {
            return Err(StoreError::InvalidQuery(format!(
                "a search returns 1 to {MAX_SEARCH_COUNT} orders, not {}",
                self.max_count
            )));
        }
        Ok(())
    }
}

/// One history entry of a found order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The entry's id (increasing in the order entries were written).
    pub id: i64,
    pub command: String,
    pub mstatus: String,
    pub v_result_code: String,
    pub message: String,
    pub amount: Option<Yen>,
    /// As stored (RFC 3339 UTC).
    pub at: String,
}

/// A found order with its history, oldest entry first (every entry, even with `newest_only`: the
/// caller decides what to show).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundOrder {
    pub order: OrderRecord,
    pub transactions: Vec<Transaction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchResult {
    /// At most `max_count` orders, newest first.
    pub orders: Vec<FoundOrder>,
    /// More orders matched than were returned.
    pub more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_id_filters() {
        assert!(matches!(
            OrderIdFilter::parse("abc-1"),
            Ok(OrderIdFilter::Exact(_))
        ));
        let Ok(OrderIdFilter::Pattern(p)) = OrderIdFilter::parse("ab_c*x*") else {
            panic!("a pattern");
        };
        assert_eq!(p.prefix(), "ab_c");
        assert_eq!(OrderIdFilter::parse(""), Err(PatternError::Empty));
        for bad in ["a%", "a?", "a[b]", "a b", "ä*"] {
            assert_eq!(
                OrderIdFilter::parse(bad),
                Err(PatternError::InvalidCharacters),
                "{bad}"
            );
        }
        assert_eq!(
            OrderIdFilter::parse(&"a".repeat(101)),
            Err(PatternError::TooLong)
        );
    }
}
