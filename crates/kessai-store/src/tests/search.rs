//! Search, the same for both backends.

use super::harness::{on_both_backends, TestDb};
use crate::search::{
    DummyFilter, Mstatus, OrderIdFilter, Range, SearchQuery, SearchResult, TransactionFilter,
};
use crate::{HistoryEntry, MerchantRecord, OrderRecord, Store, StoreError, Unit, Write};
use kessai_core::{
    Consent, ConsentState, Frequency, FrequencyUnit, MerchantCcid, Order, OrderId, OrderState,
    Secret, Yen,
};
use time::macros::datetime;

on_both_backends!(
    filters_select_the_right_orders,
    transaction_filters_and_the_newest_entry,
    max_count_history_and_other_merchants,
    wildcards_match_only_what_glob_would,
);

pub const M: &str = "A100000000000001069951cc";
pub const OTHER: &str = "A100000000000001069951dd";

pub async fn add_merchant(store: &dyn Store, ccid: &str) {
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

fn order(ccid: &str, id: &str, created: &str) -> OrderRecord {
    OrderRecord {
        merchant: MerchantCcid::parse(ccid).unwrap(),
        order_id: OrderId::parse(id).unwrap(),
        public_ref: format!("ref-{ccid}-{id}"),
        dummy: false,
        order: Order::new(Yen::new(1000)),
        with_capture: false,
        note_to_buyer: None,
        success_url: None,
        cancel_url: None,
        error_url: None,
        authorize_push_url: None,
        capture_push_url: None,
        cancel_push_url: None,
        checkout_session_id: None,
        charge_permission_id: None,
        charge_id: None,
        in_flight: None,
        consent: None,
        original_order_id: None,
        confirm_screen: Default::default(),
        options: Default::default(),
        version: 1,
        created_at: created.into(),
        updated_at: created.into(),
    }
}

fn entry(command: &str, mstatus: &str, amount: Option<u64>, at: &str) -> HistoryEntry {
    HistoryEntry {
        command: command.into(),
        request: "{}".into(),
        mstatus: mstatus.into(),
        v_result_code: "S000000000000000".into(),
        message: "m".into(),
        amount: amount.map(Yen::new),
        at: at.into(),
    }
}

async fn put(store: &dyn Store, o: &OrderRecord, history: Vec<HistoryEntry>) {
    let mut unit = Unit::new(&o.merchant, &o.order_id).with(Write::InsertOrder(o.clone()));
    for h in history {
        unit = unit.with(Write::History(h));
    }
    store.apply(&unit).await.unwrap();
}

fn ids(r: &SearchResult) -> Vec<&str> {
    r.orders.iter().map(|f| f.order.order_id.as_str()).collect()
}

/// A small world: five orders of M (one of them a test order), one of another merchant.
pub async fn world(s: &dyn Store) {
    add_merchant(s, M).await;
    add_merchant(s, OTHER).await;
    let a = order(M, "a_1", "2026-03-01T00:00:01Z");
    put(
        s,
        &a,
        vec![
            entry("Authorize", "success", Some(1000), "2026-03-01T00:00:01Z"),
            entry("Capture", "success", Some(1000), "2026-03-02T10:00:00.5Z"),
        ],
    )
    .await;
    let mut b = order(M, "axb-2", "2026-03-01T00:00:02Z");
    b.order.state = OrderState::Authorized;
    b.charge_permission_id = Some("P01-1".into());
    b.charge_id = Some("P01-1-C1".into());
    put(
        s,
        &b,
        vec![
            entry("Authorize", "success", Some(500), "2026-03-01T00:00:02Z"),
            entry("Capture", "failure", Some(900), "2026-03-03T00:00:00Z"),
        ],
    )
    .await;
    let mut c = order(M, "sub-1", "2026-03-01T00:00:03.25Z");
    c.consent = Some(Consent {
        state: ConsentState::Active,
        ..Consent::new(
            Yen::new(980),
            Frequency::new(FrequencyUnit::Month, 1).unwrap(),
            false,
        )
    });
    put(
        s,
        &c,
        vec![entry(
            "Authorize",
            "success",
            None,
            "2026-03-01T00:00:03.25Z",
        )],
    )
    .await;
    let mut d = order(M, "sub-1-2", "2026-03-01T00:00:04Z");
    d.original_order_id = Some(OrderId::parse("sub-1").unwrap());
    put(
        s,
        &d,
        vec![entry(
            "ReAuthorize",
            "success",
            Some(980),
            "2026-03-01T00:00:04Z",
        )],
    )
    .await;
    let mut t = order(M, "a_test", "2026-03-01T00:00:05Z");
    t.dummy = true;
    put(
        s,
        &t,
        vec![entry(
            "Authorize",
            "success",
            Some(1),
            "2026-03-01T00:00:05Z",
        )],
    )
    .await;
    let x = order(OTHER, "a_1", "2026-03-01T00:00:06Z");
    put(
        s,
        &x,
        vec![entry(
            "Authorize",
            "success",
            Some(1000),
            "2026-03-01T00:00:06Z",
        )],
    )
    .await;
}

pub fn query() -> SearchQuery {
    SearchQuery::all(MerchantCcid::parse(M).unwrap(), 100)
}

async fn found(s: &dyn Store, q: SearchQuery) -> Vec<String> {
    let r = s.search(&q).await.unwrap();
    ids(&r).into_iter().map(str::to_owned).collect()
}

async fn filters_select_the_right_orders(db: TestDb) {
    let s = db.store();
    world(s).await;
    let all = found(s, query()).await;
    assert_eq!(
        all,
        ["a_test", "sub-1-2", "sub-1", "axb-2", "a_1"],
        "newest first, own only"
    );

    let mut q = query();
    q.dummy = DummyFilter::LiveOnly;
    assert_eq!(
        found(s, q.clone()).await,
        ["sub-1-2", "sub-1", "axb-2", "a_1"]
    );
    q.dummy = DummyFilter::DummyOnly;
    assert_eq!(found(s, q).await, ["a_test"]);

    // `_` is literal: "a_*" does not match "axb-2".
    let mut q = query();
    q.order_id = Some(OrderIdFilter::parse("a_*").unwrap());
    assert_eq!(found(s, q.clone()).await, ["a_test", "a_1"]);
    q.order_id = Some(OrderIdFilter::parse("*-*").unwrap());
    assert_eq!(found(s, q.clone()).await, ["sub-1-2", "sub-1", "axb-2"]);
    q.order_id = Some(OrderIdFilter::parse("A_*").unwrap());
    assert!(found(s, q.clone()).await.is_empty(), "case-sensitive");
    q.order_id = Some(OrderIdFilter::parse("sub-1").unwrap());
    assert_eq!(found(s, q).await, ["sub-1"]);

    let mut q = query();
    q.states = vec![OrderState::Authorized, OrderState::Captured];
    assert_eq!(found(s, q).await, ["axb-2"]);

    let mut q = query();
    q.accounting_type = Some(1);
    assert_eq!(found(s, q.clone()).await, ["sub-1-2", "sub-1"]);
    q.accounting_type = Some(0);
    assert_eq!(found(s, q).await, ["a_test", "axb-2", "a_1"]);

    let mut q = query();
    q.original_order_id = Some(OrderId::parse("sub-1").unwrap());
    assert_eq!(found(s, q).await, ["sub-1-2"]);
    let mut q = query();
    q.consent_states = vec![ConsentState::Active];
    assert_eq!(found(s, q.clone()).await, ["sub-1"]);
    q.consent_states = vec![ConsentState::Terminated];
    assert!(found(s, q).await.is_empty());

    let mut q = query();
    q.charge_permission_id = Some("P01-1".into());
    assert_eq!(found(s, q).await, ["axb-2"]);
    let mut q = query();
    q.charge_id = Some("P01-1-C1".into());
    assert_eq!(found(s, q).await, ["axb-2"]);
    let mut q = query();
    q.pay_confirm_screen_type = Some(1);
    assert!(found(s, q).await.is_empty());
}

async fn transaction_filters_and_the_newest_entry(db: TestDb) {
    let s = db.store();
    world(s).await;
    let with = |t: TransactionFilter, newest: bool| {
        let mut q = query();
        q.transactions = t;
        q.newest_only = newest;
        q
    };
    let capture = TransactionFilter {
        commands: vec!["Capture".into()],
        ..Default::default()
    };
    assert_eq!(
        found(s, with(capture.clone(), false)).await,
        ["axb-2", "a_1"]
    );
    let failed_capture = TransactionFilter {
        mstatuses: vec![Mstatus::Failure],
        ..capture.clone()
    };
    assert_eq!(found(s, with(failed_capture, false)).await, ["axb-2"]);
    // Newest entry only: the Authorize of a_1 no longer counts.
    let authorize = TransactionFilter {
        commands: vec!["Authorize".into()],
        ..Default::default()
    };
    assert_eq!(
        found(s, with(authorize.clone(), false)).await,
        ["a_test", "sub-1", "axb-2", "a_1"]
    );
    assert_eq!(found(s, with(authorize, true)).await, ["a_test", "sub-1"]);

    // Time range, to the second and inclusive at both ends, whatever the stored fraction:
    // a_1's Capture at 10:00:00.5 is inside [10:00:00, 10:00:00].
    let at = |from, to| TransactionFilter {
        at: Range {
            from: Some(from),
            to: Some(to),
        },
        ..Default::default()
    };
    let second = datetime!(2026-03-02 10:00:00 UTC);
    assert_eq!(found(s, with(at(second, second), false)).await, ["a_1"]);
    let before = datetime!(2026-03-02 09:59:59 UTC);
    assert!(found(s, with(at(before, before), false)).await.is_empty());
    let third = datetime!(2026-03-01 00:00:03 UTC);
    assert_eq!(found(s, with(at(third, third), false)).await, ["sub-1"]);

    let amount = |from: Option<u64>, to: Option<u64>| TransactionFilter {
        amount: Range {
            from: from.map(Yen::new),
            to: to.map(Yen::new),
        },
        ..Default::default()
    };
    assert_eq!(
        found(s, with(amount(Some(900), Some(980)), false)).await,
        ["sub-1-2", "axb-2"]
    );
    assert_eq!(
        found(s, with(amount(None, Some(1)), false)).await,
        ["a_test"]
    );
}

async fn max_count_history_and_other_merchants(db: TestDb) {
    let s = db.store();
    world(s).await;
    let mut q = query();
    q.max_count = 2;
    let r = s.search(&q).await.unwrap();
    assert_eq!(ids(&r), ["a_test", "sub-1-2"]);
    assert!(r.more);
    q.max_count = 5;
    let r = s.search(&q).await.unwrap();
    assert_eq!(r.orders.len(), 5);
    assert!(!r.more, "exactly max_count is not more");
    let a1 = r
        .orders
        .iter()
        .find(|f| f.order.order_id.as_str() == "a_1")
        .unwrap();
    let commands: Vec<_> = a1.transactions.iter().map(|t| t.command.as_str()).collect();
    assert_eq!(
        commands,
        ["Authorize", "Capture"],
        "the order's own history, oldest first"
    );
    assert!(a1.transactions[0].id < a1.transactions[1].id);
    assert_eq!(a1.transactions[1].amount, Some(Yen::new(1000)));

    let other = SearchQuery::all(MerchantCcid::parse(OTHER).unwrap(), 100);
    let r = s.search(&other).await.unwrap();
    assert_eq!(ids(&r), ["a_1"]);
    assert_eq!(r.orders[0].transactions.len(), 1, "not M's a_1 history");

    q.max_count = 0;
    assert!(matches!(
        s.search(&q).await,
        Err(StoreError::InvalidQuery(_))
    ));
}

/// Beyond the world's ids: `*` spans any run (also none), matching is anchored at both ends, and
/// `_` and `-` are literal.
async fn wildcards_match_only_what_glob_would(db: TestDb) {
    let s = db.store();
    add_merchant(s, M).await;
    for (i, id) in ["ab", "a_b", "aXb", "xab", "abx", "a-b", "A_b"]
        .iter()
        .enumerate()
    {
        let o = order(M, id, &format!("2026-03-01T00:00:0{i}Z"));
        put(s, &o, vec![]).await;
    }
    for (pattern, expected) in [
        ("a*b", vec!["a-b", "aXb", "a_b", "ab"]),
        ("a_*", vec!["a_b"]),
        ("*b", vec!["A_b", "a-b", "xab", "aXb", "a_b", "ab"]),
        ("ab*", vec!["abx", "ab"]),
        ("*X*", vec!["aXb"]),
        ("x*", vec!["xab"]),
    ] {
        let mut q = query();
        q.order_id = Some(OrderIdFilter::parse(pattern).unwrap());
        assert_eq!(found(s, q).await, expected, "{pattern}");
    }
}
