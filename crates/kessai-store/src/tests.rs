//! The store's behaviour, the same for both backends: every test here runs against SQLite and
//! against PostgreSQL (`harness::on_both_backends!`).

mod harness;
pub(crate) mod search;

use crate::*;
use harness::{on_both_backends, TestDb};
use kessai_core::{
    Consent, ConsentState, Frequency, FrequencyUnit, Intent, MerchantCcid, OperationKind,
    OperationStatus, Order, OrderId, OrderState, PushKind, PushStatus, Secret, Yen,
};

on_both_backends!(
    recurring_orders_and_options_round_trip,
    orders_round_trip_and_versions_guard_updates,
    one_pending_operation_per_order_finished_once,
    a_lease_has_one_holder_until_it_runs_out,
    two_gateways_moving_one_order_version_one_wins,
    two_gateways_never_claim_the_same_push,
    pushes_are_finished_listed_and_sent_again,
    idempotency_keys_claim_replay_and_expire,
    notifications_settings_and_merchants,
    orders_are_found_by_state_charge_and_refund,
    a_database_of_a_newer_kessai_is_refused,
    two_gateways_begin_operations_on_one_order_one_wins,
    two_first_requests_with_one_key_one_runs,
    units_applied_at_once_are_each_stored_or_refused_alone,
);

fn now_text() -> String {
    time_text(time::OffsetDateTime::now_utc())
}

fn entry(command: &str) -> HistoryEntry {
    HistoryEntry {
        command: command.into(),
        request: "{}".into(),
        mstatus: "success".into(),
        v_result_code: "S000000000000000".into(),
        message: "ok".into(),
        amount: Some(Yen::new(500)),
        at: now_text(),
    }
}

fn sample_order(ccid: &MerchantCcid, order_id: &str, public_ref: &str) -> OrderRecord {
    OrderRecord {
        merchant: ccid.clone(),
        order_id: OrderId::parse(order_id).unwrap(),
        public_ref: public_ref.into(),
        dummy: true,
        order: Order::new(Yen::new(500)),
        with_capture: false,
        note_to_buyer: None,
        success_url: Some("http://x/ok".into()),
        cancel_url: None,
        error_url: None,
        authorize_push_url: None,
        capture_push_url: None,
        cancel_push_url: None,
        checkout_session_id: Some("cs".into()),
        charge_permission_id: None,
        charge_id: None,
        in_flight: None,
        consent: None,
        original_order_id: None,
        confirm_screen: Default::default(),
        options: Default::default(),
        version: 1,
        created_at: now_text(),
        updated_at: now_text(),
    }
}

/// A pending Capture of 500 yen, the operation `seq` of the order.
fn pending_capture(
    ccid: &MerchantCcid,
    order_id: &OrderId,
    key: &str,
    seq: i64,
) -> OperationRecord {
    OperationRecord {
        key: key.into(),
        merchant: ccid.clone(),
        order_id: order_id.clone(),
        seq,
        intent: Intent {
            kind: OperationKind::Capture,
            amount: Yen::new(500),
            note: None,
        },
        status: OperationStatus::Pending,
        reported: false,
        result_code: None,
        result_message: None,
        amazon_id: None,
        created_at: now_text(),
        finished_at: None,
    }
}

async fn with_merchant(store: &dyn Store, ccid: &str) -> MerchantCcid {
    let ccid = MerchantCcid::parse(ccid).unwrap();
    store
        .insert_merchant(&MerchantRecord {
            consent_auth_default: true,
            ccid: ccid.clone(),
            secret_hex: Secret::new("00ff".into()),
            name: "m".into(),
            created_at: now_text(),
        })
        .await
        .unwrap();
    ccid
}

async fn recurring_orders_and_options_round_trip(db: TestDb) {
    let store = db.store();
    let ccid = with_merchant(store, "A100000000000001069951cc").await;
    let mut o = sample_order(&ccid, "sub-1", "ref-sub-1");
    o.consent = Some(Consent::new(
        Yen::new(980),
        Frequency::new(FrequencyUnit::Month, 1).unwrap(),
        false,
    ));
    o.confirm_screen = ConfirmScreen::Merchant {
        url: "https://shop.example/confirm".into(),
    };
    o.options = AmazonOptions {
        address_restrictions: Some("{\"type\":\"Allowed\"}".into()),
        suppress_shipping_address_view: Some(true),
        extend_expiration: false,
        platform_id: Some("P1".into()),
    };
    let unit = Unit::new(&ccid, &o.order_id).with(Write::InsertOrder(o.clone()));
    store.apply(&unit).await.unwrap();
    assert_eq!(
        store.order(&ccid, &o.order_id).await.unwrap(),
        Some(o.clone())
    );

    let mut next = o.clone();
    next.version += 1;
    next.consent = next.consent.map(|c| Consent {
        state: ConsentState::Terminated,
        ..c
    });
    let unit = Unit::new(&ccid, &o.order_id).with(Write::UpdateOrder(next.clone()));
    store.apply(&unit).await.unwrap();
    assert_eq!(store.order(&ccid, &o.order_id).await.unwrap(), Some(next));

    let mut charge = sample_order(&ccid, "sub-1-2", "ref-sub-1-2");
    charge.original_order_id = Some(o.order_id.clone());
    let unit = Unit::new(&ccid, &charge.order_id).with(Write::InsertOrder(charge.clone()));
    store.apply(&unit).await.unwrap();
    let back = store.order(&ccid, &charge.order_id).await.unwrap().unwrap();
    assert_eq!(back.accounting_type(), 1);
    assert_eq!(back, charge);
}

async fn orders_round_trip_and_versions_guard_updates(db: TestDb) {
    let store = db.store();
    let ccid = with_merchant(store, "M1").await;
    let mut order = sample_order(&ccid, "o-1", "ref1");
    let insert = Unit::new(&ccid, &order.order_id)
        .with(Write::InsertOrder(order.clone()))
        .with(Write::History(entry("Authorize")));
    store.apply(&insert).await.unwrap();
    assert!(matches!(
        store.apply(&insert).await,
        Err(StoreError::Duplicate)
    ));
    let loaded = store.order(&ccid, &order.order_id).await.unwrap().unwrap();
    assert_eq!(loaded, order);
    assert_eq!(
        store.order_by_ref("ref1").await.unwrap(),
        Some(order.clone())
    );

    order.order = order
        .order
        .apply(kessai_core::Event::BuyerSignedIn)
        .unwrap();
    order.version = 2;
    store
        .apply(
            &Unit::new(&ccid, &order.order_id)
                .with(Write::UpdateOrder(order.clone()))
                .with(Write::History(entry("SignIn"))),
        )
        .await
        .unwrap();
    // a second writer that read version 1 loses, and writes none of its rows
    assert!(matches!(
        store
            .apply(
                &Unit::new(&ccid, &order.order_id)
                    .with(Write::History(entry("Lost")))
                    .with(Write::UpdateOrder(order.clone()))
            )
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.history(&ccid, &order.order_id).await.unwrap().len(),
        2
    );
    assert_eq!(
        store
            .order(&ccid, &order.order_id)
            .await
            .unwrap()
            .unwrap()
            .order
            .state,
        OrderState::PreAuth
    );
}

async fn one_pending_operation_per_order_finished_once(db: TestDb) {
    let store = db.store();
    let ccid = with_merchant(store, "M2").await;
    let order_id = OrderId::parse("o-2").unwrap();
    let order = sample_order(&ccid, "o-2", "ref2");
    store
        .apply(&Unit::new(&ccid, &order_id).with(Write::InsertOrder(order)))
        .await
        .unwrap();
    let op = |key: &str, seq: i64| pending_capture(&ccid, &order_id, key, seq);
    store
        .apply(&Unit::new(&ccid, &order_id).with(Write::BeginOperation(op("k1", 1))))
        .await
        .unwrap();
    assert!(
        matches!(
            store
                .apply(&Unit::new(&ccid, &order_id).with(Write::BeginOperation(op("k2", 2))))
                .await,
            Err(StoreError::Duplicate)
        ),
        "a second pending operation on one order is refused"
    );
    assert_eq!(store.pending_operations(10).await.unwrap().len(), 1);
    let end = OperationEnd {
        key: "k1".into(),
        status: OperationStatus::Done,
        result_code: "S000000000000000".into(),
        result_message: "ok".into(),
        amazon_id: None,
        reported: true,
        at: now_text(),
    };
    let finish = Unit::new(&ccid, &order_id).with(Write::FinishOperation(end));
    store.apply(&finish).await.unwrap();
    assert!(
        matches!(store.apply(&finish).await, Err(StoreError::Conflict)),
        "an operation is finished once"
    );
    assert!(store.pending_operations(10).await.unwrap().is_empty());
    let ops = store.operations(&ccid, &order_id).await.unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].status, OperationStatus::Done);
    assert!(ops[0].reported);
}

async fn a_lease_has_one_holder_until_it_runs_out(db: TestDb) {
    let store = db.store();
    let _ = with_merchant(store, "M3").await;
    assert!(store.try_lease("job", "a", 100, 30).await.unwrap());
    assert!(
        !store.try_lease("job", "b", 110, 30).await.unwrap(),
        "a holds it"
    );
    assert!(
        store.try_lease("job", "a", 120, 30).await.unwrap(),
        "a renews"
    );
    assert!(!store.try_lease("job", "b", 149, 30).await.unwrap());
    assert!(
        store.try_lease("job", "b", 150, 30).await.unwrap(),
        "run out: b takes it"
    );
    assert!(!store.try_lease("job", "a", 151, 30).await.unwrap());
    assert!(
        store.try_lease("other", "a", 151, 30).await.unwrap(),
        "leases are per job"
    );
    store.release_lease("job", "a").await.unwrap();
    assert!(
        !store.try_lease("job", "c", 152, 30).await.unwrap(),
        "only the holder releases"
    );
    store.release_lease("job", "b").await.unwrap();
    assert!(
        store.try_lease("job", "c", 152, 30).await.unwrap(),
        "released: free at once"
    );
}

fn push(ccid: &MerchantCcid, order_id: &OrderId, n: usize, due: i64) -> PushRecord {
    PushRecord {
        id: 0,
        merchant: ccid.clone(),
        order_id: order_id.clone(),
        kind: PushKind::Capture,
        url: "http://merchant.example/push".into(),
        dummy: true,
        fields: vec![
            ("orderId".into(), order_id.as_str().into()),
            ("n".into(), n.to_string()),
            ("note".into(), "a&b=c ä".into()),
        ],
        status: PushStatus::Pending,
        attempts: 0,
        next_attempt_at: due,
        lease_until: None,
        push_id: None,
        last_error: None,
        created_at: due,
        delivered_at: None,
    }
}

/// Two gateways (two pools) read version 1 of an order and both try to move it at once: one
/// commits, the other gets a conflict and writes none of its rows.
async fn two_gateways_moving_one_order_version_one_wins(db: TestDb) {
    let a = db.store.clone();
    let b = db.open().await;
    let ccid = with_merchant(a.as_ref(), "M4").await;
    for round in 0..5 {
        let order = sample_order(
            &ccid,
            &format!("race-{round}"),
            &format!("ref-race-{round}"),
        );
        a.apply(&Unit::new(&ccid, &order.order_id).with(Write::InsertOrder(order.clone())))
            .await
            .unwrap();
        let mut next = order.clone();
        next.version = 2;
        next.order = next.order.apply(kessai_core::Event::BuyerSignedIn).unwrap();
        let unit = |who: &str| {
            Unit::new(&ccid, &order.order_id)
                .with(Write::History(entry(who)))
                .with(Write::UpdateOrder(next.clone()))
        };
        let (ua, ub) = (unit("A"), unit("B"));
        let (ra, rb) = tokio::join!(a.apply(&ua), b.apply(&ub));
        let conflicts = [&ra, &rb]
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Conflict)))
            .count();
        let oks = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!((oks, conflicts), (1, 1), "{ra:?} {rb:?}");
        let history = b.history(&ccid, &order.order_id).await.unwrap();
        assert_eq!(history.len(), 1, "only the winner's entry");
        let winner = if ra.is_ok() { "A" } else { "B" };
        assert_eq!(history[0].command, winner);
        assert_eq!(
            a.order(&ccid, &order.order_id)
                .await
                .unwrap()
                .unwrap()
                .version,
            2
        );
    }
}

/// Several workers of two gateways claim the outbox at once: every record is claimed exactly once.
async fn two_gateways_never_claim_the_same_push(db: TestDb) {
    let a = db.store.clone();
    let b = db.open().await;
    let ccid = with_merchant(a.as_ref(), "M5").await;
    let order = sample_order(&ccid, "o-push", "ref-push");
    let mut unit = Unit::new(&ccid, &order.order_id).with(Write::InsertOrder(order.clone()));
    const RECORDS: usize = 60;
    for n in 0..RECORDS {
        unit = unit.with(Write::Push(push(&ccid, &order.order_id, n, 100)));
    }
    a.apply(&unit).await.unwrap();
    let mut workers = Vec::new();
    for w in 0..6 {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store.claim_pushes(100, 60, 4).await.unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|p| p.id));
            }
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let claimed = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), claimed, "a record was claimed twice");
    assert_eq!(claimed, RECORDS, "every record was claimed");
    assert!(
        a.claim_pushes(159, 60, 100).await.unwrap().is_empty(),
        "leased until 160"
    );
    assert_eq!(
        b.claim_pushes(160, 60, 100).await.unwrap().len(),
        RECORDS,
        "the leases ran out"
    );
}

async fn pushes_are_finished_listed_and_sent_again(db: TestDb) {
    let store = db.store();
    let ccid = with_merchant(store, "M6").await;
    let order = sample_order(&ccid, "o-6", "ref-6");
    let unit = Unit::new(&ccid, &order.order_id)
        .with(Write::InsertOrder(order.clone()))
        .with(Write::Push(push(&ccid, &order.order_id, 0, 10)))
        .with(Write::Push(push(&ccid, &order.order_id, 1, 10)))
        .with(Write::Push(push(&ccid, &order.order_id, 2, 50)));
    store.apply(&unit).await.unwrap();
    let claimed = store.claim_pushes(10, 30, 10).await.unwrap();
    assert_eq!(claimed.len(), 2, "the third is not due");
    assert!(claimed[0].id < claimed[1].id);
    assert_eq!(
        claimed[0].fields,
        push(&ccid, &order.order_id, 0, 10).fields
    );
    assert_eq!(claimed[0].lease_until, Some(40));
    let (first, second) = (claimed[0].id, claimed[1].id);
    store
        .finish_pushes(
            &[first],
            &PushEnd::Delivered {
                push_id: "p-1".into(),
                at: 12,
            },
        )
        .await
        .unwrap();
    store
        .finish_pushes(
            &[second],
            &PushEnd::Retry {
                error: "503".into(),
                next_attempt_at: 70,
            },
        )
        .await
        .unwrap();
    let all = store
        .pushes(&PushFilter {
            merchant: Some(ccid.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].status, PushStatus::Delivered);
    assert_eq!(all[0].push_id.as_deref(), Some("p-1"));
    assert_eq!(all[0].delivered_at, Some(12));
    assert_eq!(all[0].attempts, 1);
    assert_eq!(all[1].status, PushStatus::Pending);
    assert_eq!(all[1].last_error.as_deref(), Some("503"));
    assert_eq!(all[1].lease_until, None);
    let due = store.claim_pushes(60, 30, 10).await.unwrap();
    assert_eq!(due.iter().map(|p| p.id).collect::<Vec<_>>(), [all[2].id]);
    store
        .finish_pushes(
            &[all[2].id],
            &PushEnd::Refused {
                error: "not allowed".into(),
            },
        )
        .await
        .unwrap();
    store
        .finish_pushes(
            &[second],
            &PushEnd::Failed {
                error: "gave up".into(),
            },
        )
        .await
        .unwrap();
    let pending = |status| PushFilter {
        status: Some(status),
        limit: 10,
        ..Default::default()
    };
    assert!(store
        .pushes(&pending(PushStatus::Pending))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.pushes(&pending(PushStatus::Failed)).await.unwrap()[0].attempts,
        2
    );
    assert_eq!(
        store.pushes(&pending(PushStatus::Refused)).await.unwrap()[0].attempts,
        0
    );
    assert!(store.resend_push(first, 80).await.unwrap());
    assert!(!store.resend_push(first + 1000, 80).await.unwrap());
    let again = store.claim_pushes(80, 30, 10).await.unwrap();
    assert_eq!(again.iter().map(|p| p.id).collect::<Vec<_>>(), [first]);
    let by_order = store
        .pushes(&PushFilter {
            order_id: Some(OrderId::parse("elsewhere").unwrap()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(by_order.is_empty());
}

async fn idempotency_keys_claim_replay_and_expire(db: TestDb) {
    let store = db.store();
    let ccid = with_merchant(store, "M7").await;
    let other = with_merchant(store, "M8").await;
    assert_eq!(
        store.claim_key(&ccid, "k", "fp", 100, 60).await.unwrap(),
        KeyClaim::New
    );
    assert_eq!(
        store.claim_key(&ccid, "k", "fp", 110, 60).await.unwrap(),
        KeyClaim::InFlight
    );
    assert_eq!(
        store.claim_key(&ccid, "k", "other", 110, 60).await.unwrap(),
        KeyClaim::Mismatch
    );
    assert_eq!(
        store.claim_key(&other, "k", "fp2", 110, 60).await.unwrap(),
        KeyClaim::New,
        "keys are per merchant"
    );
    assert_eq!(
        store.claim_key(&ccid, "k", "fp", 160, 60).await.unwrap(),
        KeyClaim::New,
        "abandoned: taken over"
    );
    store.finish_key(&ccid, "k", "answer").await.unwrap();
    assert_eq!(
        store.claim_key(&ccid, "k", "fp", 500, 60).await.unwrap(),
        KeyClaim::Replay("answer".into())
    );
    store.release_key(&ccid, "k").await.unwrap();
    assert_eq!(
        store.claim_key(&ccid, "k", "fp", 500, 60).await.unwrap(),
        KeyClaim::Replay("answer".into()),
        "an answered key is not released"
    );
    store.release_key(&other, "k").await.unwrap();
    assert_eq!(
        store.claim_key(&other, "k", "fp3", 120, 60).await.unwrap(),
        KeyClaim::New,
        "released: free again"
    );
    assert_eq!(store.prune_keys(150).await.unwrap(), 1);
    assert_eq!(store.prune_keys(150).await.unwrap(), 0);
}

async fn notifications_settings_and_merchants(db: TestDb) {
    let store = db.store();
    let ccid = with_merchant(store, "M9").await;
    assert!(!store.ipn_seen("msg-1").await.unwrap());
    store.mark_ipn_seen("msg-1", 5).await.unwrap();
    store.mark_ipn_seen("msg-1", 6).await.unwrap();
    assert!(store.ipn_seen("msg-1").await.unwrap());
    let order = sample_order(&ccid, "o-9", "ref-9");
    store
        .apply(&Unit::new(&ccid, &order.order_id).with(Write::InsertOrder(order.clone())))
        .await
        .unwrap();
    let seen = Unit::new(&ccid, &order.order_id).with(Write::IpnSeen {
        message_id: "msg-2".into(),
        at: 7,
    });
    store.apply(&seen).await.unwrap();
    assert!(
        matches!(store.apply(&seen).await, Err(StoreError::Duplicate)),
        "a second handler of one notification loses"
    );

    assert_eq!(store.setting("s").await.unwrap(), None);
    store.set_setting("s", "1").await.unwrap();
    store.set_setting("s", "2").await.unwrap();
    assert_eq!(store.setting("s").await.unwrap().as_deref(), Some("2"));
    // A claim keeps what is there; the first claim of a new name wins for every later one.
    assert_eq!(store.claim_setting("s", "3").await.unwrap(), "2");
    assert_eq!(store.claim_setting("t", "first").await.unwrap(), "first");
    assert_eq!(store.claim_setting("t", "second").await.unwrap(), "first");
    assert_eq!(store.setting("t").await.unwrap().as_deref(), Some("first"));

    let m = store.merchant(&ccid).await.unwrap().unwrap();
    assert_eq!(m.name, "m");
    assert!(matches!(
        store.insert_merchant(&m).await,
        Err(StoreError::Duplicate)
    ));
    let second = MerchantRecord {
        ccid: MerchantCcid::parse("M10").unwrap(),
        consent_auth_default: false,
        created_at: "2026-01-01T00:00:00.123456Z".into(),
        ..m.clone()
    };
    store.insert_merchant(&second).await.unwrap();
    let all = store.merchants().await.unwrap();
    assert_eq!(all, vec![second.clone(), m], "oldest first");
    assert_eq!(
        store.merchant(&second.ccid).await.unwrap(),
        Some(second),
        "microseconds and flags kept"
    );
}

async fn orders_are_found_by_state_charge_and_refund(db: TestDb) {
    let store = db.store();
    let ccid = with_merchant(store, "M11").await;
    let mut old = sample_order(&ccid, "old", "ref-old");
    old.updated_at = "2026-01-01T00:00:00Z".into();
    old.charge_permission_id = Some("P-1".into());
    old.charge_id = Some("C-1".into());
    let mut charge = sample_order(&ccid, "old-2", "ref-old-2");
    charge.updated_at = "2026-01-01T00:00:01Z".into();
    charge.charge_permission_id = Some("P-1".into());
    charge.original_order_id = Some(old.order_id.clone());
    let mut new = sample_order(&ccid, "new", "ref-new");
    new.updated_at = "2026-01-02T00:00:00Z".into();
    for o in [&charge, &old, &new] {
        store
            .apply(&Unit::new(&ccid, &o.order_id).with(Write::InsertOrder(o.clone())))
            .await
            .unwrap();
    }
    let refund = RefundRecord {
        seq: 1,
        amazon_refund_id: "R-1".into(),
        amount: Yen::new(100),
        state: "Pending".into(),
        created_at: "2026-01-03T00:00:00.5Z".into(),
    };
    store
        .apply(
            &Unit::new(&ccid, &old.order_id)
                .with(Write::Refund(refund.clone()))
                .with(Write::RefundState {
                    amazon_refund_id: "R-1".into(),
                    state: "Refunded".into(),
                }),
        )
        .await
        .unwrap();
    let ids = |v: Vec<OrderRecord>| {
        v.into_iter()
            .map(|o| o.order_id.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store
            .orders_in_state(OrderState::Started, "2026-01-01T12:00:00Z", 10)
            .await
            .unwrap()),
        ["old", "old-2"],
        "oldest first, only before"
    );
    assert_eq!(
        ids(store
            .orders_in_state(OrderState::Started, "2026-01-05T00:00:00Z", 2)
            .await
            .unwrap()),
        ["old", "old-2"]
    );
    assert!(store
        .orders_in_state(OrderState::Captured, "2027-01-01T00:00:00Z", 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.order_by_charge_permission("P-1").await.unwrap(),
        Some(old.clone()),
        "the consent's own order, not the charge against it"
    );
    assert_eq!(
        store.order_by_charge("C-1").await.unwrap(),
        Some(old.clone())
    );
    assert_eq!(store.order_by_charge("C-2").await.unwrap(), None);
    assert_eq!(
        store.order_by_refund("R-1").await.unwrap(),
        Some(old.clone())
    );
    let refunds = store.refunds(&ccid, &old.order_id).await.unwrap();
    assert_eq!(
        refunds,
        vec![RefundRecord {
            state: "Refunded".into(),
            ..refund
        }]
    );
}

async fn a_database_of_a_newer_kessai_is_refused(db: TestDb) {
    db.reopen().await.unwrap();
    db.record_unknown_migration(9999).await;
    let refused = db.reopen().await;
    assert!(
        matches!(refused, Err(StoreError::NewerSchema(9999))),
        "{refused:?}"
    );
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("newer Kessai"), "{message}");
}

/// Two gateways start an operation on the same order at once: one is recorded, the other is a
/// duplicate (the partial unique index), whichever commits first.
async fn two_gateways_begin_operations_on_one_order_one_wins(db: TestDb) {
    let a = db.store.clone();
    let b = db.open().await;
    let ccid = with_merchant(a.as_ref(), "M12").await;
    for round in 0..5 {
        let order = sample_order(&ccid, &format!("op-{round}"), &format!("ref-op-{round}"));
        let order_id = order.order_id.clone();
        a.apply(&Unit::new(&ccid, &order_id).with(Write::InsertOrder(order)))
            .await
            .unwrap();
        let begin = |key: &str, seq: i64| {
            Unit::new(&ccid, &order_id).with(Write::BeginOperation(pending_capture(
                &ccid,
                &order_id,
                &format!("{key}-{round}"),
                seq,
            )))
        };
        let (ua, ub) = (begin("a", 1), begin("b", 2));
        let (ra, rb) = tokio::join!(a.apply(&ua), b.apply(&ub));
        let duplicates = [&ra, &rb]
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Duplicate)))
            .count();
        assert_eq!(
            (ra.is_ok() as u8 + rb.is_ok() as u8, duplicates),
            (1, 1),
            "{ra:?} {rb:?}"
        );
        assert_eq!(b.operations(&ccid, &order_id).await.unwrap().len(), 1);
    }
}

/// Two gateways get the first request with one idempotency key at once: exactly one runs it.
async fn two_first_requests_with_one_key_one_runs(db: TestDb) {
    let a = db.store.clone();
    let b = db.open().await;
    let ccid = with_merchant(a.as_ref(), "M13").await;
    for round in 0..10 {
        let key = format!("key-{round}");
        let (ra, rb) = tokio::join!(
            a.claim_key(&ccid, &key, "fp", 100, 60),
            b.claim_key(&ccid, &key, "fp", 100, 60)
        );
        let mut claims = [ra.unwrap(), rb.unwrap()];
        claims.sort_by_key(|c| c != &KeyClaim::New);
        assert_eq!(claims, [KeyClaim::New, KeyClaim::InFlight]);
    }
}

/// Gateways starting at once on a new PostgreSQL database: the migrations run once, every gateway
/// starts. (SQLite needs no such test: one process opens the file, the data directory is locked.)
#[tokio::test]
async fn gateways_starting_at_once_migrate_once() {
    let schema = harness::Schema::create().await;
    let starts: Vec<_> = (0..4)
        .map(|_| tokio::spawn(PgStore::open_with(harness::schema_options(schema.name()))))
        .collect();
    for start in starts {
        start.await.unwrap().unwrap();
    }
    assert_eq!(schema.count("_sqlx_migrations").await, 1);
    assert_eq!(schema.count("orders").await, 0);
}

/// Many units at once (on SQLite they share transactions: group commit): each is stored whole
/// or refused whole, and its caller hears its own result. Stale updates and duplicate inserts
/// among them change nothing and do not take the others down.
async fn units_applied_at_once_are_each_stored_or_refused_alone(db: TestDb) {
    let store = db.store();
    let ccid = with_merchant(store, "M1").await;
    let order = sample_order(&ccid, "burst", "ref-burst");
    store
        .apply(&Unit::new(&ccid, &order.order_id).with(Write::InsertOrder(order.clone())))
        .await
        .unwrap();
    let mut units = Vec::new();
    for i in 0..120 {
        let unit = match i % 4 {
            // A refused command's attempt: history only.
            0 | 1 => Unit::new(&ccid, &order.order_id).with(Write::History(entry("Refused"))),
            // A writer that read an old version: its history row must not be kept either.
            2 => Unit::new(&ccid, &order.order_id)
                .with(Write::History(entry("Stale")))
                .with(Write::UpdateOrder(order.clone())),
            // A new order each, every fourth one inserted twice.
            _ => {
                let new = sample_order(&ccid, &format!("n-{}", i / 8), &format!("ref-n-{}", i / 8));
                Unit::new(&ccid, &new.order_id)
                    .with(Write::InsertOrder(new))
                    .with(Write::History(entry("Authorize")))
            }
        };
        units.push(unit);
    }
    let results = futures_util::future::join_all(units.iter().map(|u| store.apply(u))).await;
    let mut inserted = std::collections::BTreeMap::new();
    for (i, (unit, result)) in units.iter().zip(&results).enumerate() {
        match i % 4 {
            0 | 1 => assert!(result.is_ok(), "{i}: {result:?}"),
            2 => assert!(
                matches!(result, Err(StoreError::Conflict)),
                "{i}: {result:?}"
            ),
            _ => {
                let counts: &mut (usize, usize) =
                    inserted.entry(unit.order_id.clone()).or_default();
                match result {
                    Ok(()) => counts.0 += 1,
                    Err(StoreError::Duplicate) => counts.1 += 1,
                    other => panic!("{i}: {other:?}"),
                }
            }
        }
    }
    let history = store.history(&ccid, &order.order_id).await.unwrap();
    assert_eq!(history.len(), 60, "every refusal kept, no stale row");
    assert!(history.iter().all(|h| h.command == "Refused"));
    assert_eq!(inserted.len(), 15);
    for (order_id, (ok, duplicate)) in inserted {
        assert_eq!((ok, duplicate), (1, 1), "{order_id}");
        assert_eq!(store.history(&ccid, &order_id).await.unwrap().len(), 1);
        assert!(store.order(&ccid, &order_id).await.unwrap().is_some());
    }
    assert_eq!(
        store.order(&ccid, &order.order_id).await.unwrap().unwrap(),
        order,
        "the order itself is as it was"
    );
}

/// SQLite only: the commit counter `kessai bench` reads counts a unit of work once and a read not
/// at all.
#[tokio::test]
async fn sqlite_commits_count_write_transactions_not_reads() {
    let dir = std::env::temp_dir().join(harness::unique_name("kessai-store-commits"));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(&dir.join("gateway.sqlite"))
        .await
        .unwrap();
    let ccid = with_merchant(&store, "A100000000000001069951cc").await;
    let before = store.commits();
    let order = sample_order(&ccid, "o-1", "ref-o-1");
    let unit = Unit::new(&ccid, &order.order_id)
        .with(Write::InsertOrder(order.clone()))
        .with(Write::History(entry("Authorize")));
    store.apply(&unit).await.unwrap();
    assert_eq!(store.commits(), before + 1, "one unit, one transaction");
    store.order(&ccid, &order.order_id).await.unwrap().unwrap();
    assert_eq!(store.commits(), before + 1, "a read commits nothing");
    let _ = std::fs::remove_dir_all(&dir);
}

/// SQLite only: a burst of units shares commits (group commit), and each is on disk when its
/// caller hears of it: a second store on the same file reads every one.
#[tokio::test]
async fn sqlite_a_burst_of_units_shares_commits() {
    let dir = std::env::temp_dir().join(harness::unique_name("kessai-store-group"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    let ccid = with_merchant(&store, "A100000000000001069951cc").await;
    let order = sample_order(&ccid, "o-1", "ref-o-1");
    store
        .apply(&Unit::new(&ccid, &order.order_id).with(Write::InsertOrder(order.clone())))
        .await
        .unwrap();
    let before = store.commits();
    let units: Vec<Unit> = (0..200)
        .map(|_| Unit::new(&ccid, &order.order_id).with(Write::History(entry("Refused"))))
        .collect();
    let results = futures_util::future::join_all(units.iter().map(|u| store.apply(u))).await;
    assert!(results.iter().all(Result::is_ok));
    let commits = store.commits() - before;
    assert!(
        commits < 200 / 4,
        "200 units at once took {commits} commits"
    );
    let other = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        other.history(&ccid, &order.order_id).await.unwrap().len(),
        200
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// SQLite only: a file migrated by sqlx's migrator (as Kessai did before its store had threads of
/// its own) opens, and a file the store migrated passes sqlx's migrator's checks (the same record
/// of applied migrations, with the same checksums), so either Kessai opens the other's file.
#[tokio::test]
async fn sqlite_migration_records_match_earlier_kessai() {
    use sqlx::sqlite::SqliteConnectOptions;
    let dir = std::env::temp_dir().join(harness::unique_name("kessai-store-migrations"));
    std::fs::create_dir_all(&dir).unwrap();
    let options = |path: &std::path::Path| {
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
    };

    let earlier = dir.join("earlier.sqlite");
    let pool = sqlx::SqlitePool::connect_with(options(&earlier))
        .await
        .unwrap();
    sqlx::migrate!("./migrations/sqlite")
        .run(&pool)
        .await
        .unwrap();
    pool.close().await;
    let store = SqliteStore::open(&earlier).await.unwrap();
    with_merchant(&store, "A100000000000001069951cc").await;

    let ours = dir.join("ours.sqlite");
    drop(SqliteStore::open(&ours).await.unwrap());
    let pool = sqlx::SqlitePool::connect_with(options(&ours))
        .await
        .unwrap();
    sqlx::migrate!("./migrations/sqlite")
        .run(&pool)
        .await
        .expect("sqlx's migrator accepts the store's record");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(applied as usize, files, "each migration recorded once");
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
