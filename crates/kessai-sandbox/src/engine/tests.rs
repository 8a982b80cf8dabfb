//! The engine's rules without a server or a file: money moves only within its limits, and the
//! clock makes Amazon's own transitions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::charge::NewCharge;
use super::clock::{LATE_CAPTURE_AFTER, PENDING_SETTLES_AFTER, REFUND_SETTLES_AFTER};
use super::session::{NewSession, Payment, ReturnUrls};
use super::*;
use kessai_core::{Money, SeededIds};

fn jpy(n: i64) -> Money {
    Money::new(n, Currency::Jpy)
}

fn merchant() -> Merchant {
    Merchant::new(
        MerchantId::new("AMERCHANT"),
        "store-1".into(),
        "jp".into(),
        Currency::Jpy,
    )
}

/// A one-time order of `amount`, authorized at `now`.
fn authorized(
    engine: &mut Engine,
    m: &Merchant,
    amount: i64,
    now: i64,
) -> (PermissionId, ChargeId) {
    let id = engine
        .create_session(
            m,
            NewSession {
                urls: ReturnUrls {
                    review: Some("https://m.example/review".into()),
                    result: Some("https://m.example/result".into()),
                    cancel: None,
                },
                store_id: "store-1".into(),
                kind: None,
                payment: Payment {
                    intent: Some(Intent::Authorize),
                    charge_amount: Some(jpy(amount)),
                    ..Payment::default()
                },
                metadata: Metadata::default(),
                platform_id: None,
                recurring: None,
                delivery: None,
                environment: Environment::Sandbox,
                product: ProductType::default(),
            },
            now,
        )
        .unwrap()
        .id()
        .clone();
    assert_eq!(
        engine.confirm(&id, now).unwrap_err(),
        EngineError::NotPayable,
        "the buyer has not signed in"
    );
    engine
        .sign_in(&id, BuyerChoice::default_choice(), now)
        .unwrap();
    engine.confirm(&id, now).unwrap();
    let s = engine
        .complete_session(m, &id, jpy(amount), None, now)
        .unwrap();
    assert_eq!(s.state(), SessionState::Completed);
    (
        s.permission_id().unwrap().clone(),
        s.charge_id().unwrap().clone(),
    )
}

#[test]
fn captures_and_refunds_stay_within_their_limits() {
    let mut engine = Engine::new(std::sync::Arc::new(SeededIds::seeded(7)));
    let m = merchant();
    let t0 = 1_700_000_000;
    let (cp, charge) = authorized(&mut engine, &m, 1000, t0);
    assert_eq!(
        engine
            .capture(&m, &charge, jpy(1001), None, t0)
            .unwrap_err(),
        EngineError::CaptureExceeded {
            amount: jpy(1001),
            authorized: jpy(1000)
        }
    );
    // A capture more than a week after the authorization completes later.
    let late = t0 + LATE_CAPTURE_AFTER + 1;
    let c = engine.capture(&m, &charge, jpy(600), None, late).unwrap();
    assert!(matches!(c.state(), ChargeState::CaptureInitiated { .. }));
    assert_eq!(
        engine.permission(&m, &cp).unwrap().balance(),
        Some(jpy(1000))
    );
    let fired = engine.settle(late + PENDING_SETTLES_AFTER);
    assert!(fired.iter().any(|f| f.kind == Kind::Charge));
    assert_eq!(
        engine.charge(&m, &charge).unwrap().state(),
        &ChargeState::Captured
    );
    let p = engine.permission(&m, &cp).unwrap();
    assert_eq!(p.balance(), Some(jpy(400)));
    assert_eq!(p.state(), &PermissionState::Chargeable);
    // What is left of the order total can be charged, no more.
    let more = |amount| NewCharge {
        permission_id: cp.clone(),
        amount: jpy(amount),
        capture_now: true,
        can_handle_pending: false,
        soft_descriptor: None,
        metadata: Metadata::default(),
    };
    let now = late + 60;
    assert_eq!(
        engine.create_charge(&m, more(401), None, now).unwrap_err(),
        EngineError::BalanceExceeded {
            amount: jpy(401),
            left: jpy(400)
        }
    );
    engine.create_charge(&m, more(400), None, now).unwrap();
    assert!(matches!(
        engine.permission(&m, &cp).unwrap().state(),
        PermissionState::Closed(_)
    ));
    // Refunds: at most the capture plus 15 %.
    engine
        .create_refund(&m, &charge, jpy(690), None, None, now)
        .unwrap();
    assert!(matches!(
        engine.create_refund(&m, &charge, jpy(1), None, None, now),
        Err(EngineError::RefundExceeded { .. })
    ));
    assert_eq!(engine.charge(&m, &charge).unwrap().refunded(), None);
    engine.settle(now + REFUND_SETTLES_AFTER);
    assert_eq!(
        engine.charge(&m, &charge).unwrap().refunded(),
        Some(jpy(690))
    );
}

#[test]
fn another_merchant_sees_nothing() {
    let mut engine = Engine::new(std::sync::Arc::new(SeededIds::seeded(8)));
    let m = merchant();
    let (cp, charge) = authorized(&mut engine, &m, 500, 1_700_000_000);
    let other = Merchant::new(
        MerchantId::new("AOTHER"),
        "store-2".into(),
        "jp".into(),
        Currency::Jpy,
    );
    assert!(matches!(
        engine.charge(&other, &charge),
        Err(EngineError::NotFound {
            object: Object::Charge,
            ..
        })
    ));
    assert!(matches!(
        engine.close_permission(&other, &cp, "x".into(), true, 1_700_000_001),
        Err(EngineError::NotFound { .. })
    ));
    assert_eq!(
        engine.charge(&m, &charge).unwrap().state(),
        &ChargeState::Authorized
    );
}
