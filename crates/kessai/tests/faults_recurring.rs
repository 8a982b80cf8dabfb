//! Faults during the operations of recurring orders and re-authorizations: ReAuthorize's charge,
//! UpdateAuthorize's release and new authorization, and Terminate's close. For each fault the
//! merchant gets `E500`; a retry (and separately a restart) ends with exactly one charge or one
//! close at the emulator, never two authorizations held for one order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::faults::{arm, code, expect_unknown, name, wait_resolved, Call, FAULTS};
use common::{walk_buyer, FaultEnv, TestEnv, MERCHANT_SITE};
use kessai_amazonpay::wire::{ChargePermissionState, ChargeState};
use kessai_amazonpay::AmazonPay;
use kessai_core::{ConsentState, OrderState, Yen};
use serde_json::json;

async fn subscribe(env: &TestEnv, order_id: &str) {
    let r = env
        .mdk(
            "Authorize",
            json!({
                "orderId": order_id, "amount": "980", "accountingType": "1",
                "frequencyUnit": "Month", "frequencyValue": "1",
                "successUrl": format!("{MERCHANT_SITE}/ok"),
            }),
        )
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    walk_buyer(env, &r, "visa-1111").await;
}

/// Charges the emulator holds for an order (by its merchant reference).
async fn charges_for(fe: &FaultEnv, order_id: &str) -> usize {
    fe.emulator_count(
        "charge",
        "/charge/merchantMetadata/merchantReferenceId",
        order_id,
    )
    .await
}

#[tokio::test]
async fn reauthorize_under_every_fault() {
    let mut fe = FaultEnv::start("fault-reauthorize").await;
    subscribe(&fe.env, "sub").await;
    for (i, fault) in FAULTS.into_iter().enumerate() {
        for restart in [false, true] {
            let id = format!("re-{i}-{restart}");
            let params = json!({"orderId": id, "originalOrderId": "sub", "amount": "700"});
            arm(&fe, Call::CreateCharge, fault);
            let first = fe.env.mdk("ReAuthorize", params.clone()).await;
            expect_unknown(&first);
            let o = fe
                .env
                .order(&id)
                .await
                .expect("the order is kept with its intent");
            assert!(o.in_flight.is_some(), "{}: pending", name(fault));
            if restart {
                fe.restart().await;
                wait_resolved(&fe.env, &id).await;
            }
            let retry = fe.env.mdk("ReAuthorize", params.clone()).await;
            assert_eq!(retry["mstatus"], "success", "{} {retry:?}", name(fault));
            let o = fe.env.order(&id).await.unwrap();
            assert_eq!(
                (o.order.state, o.order.authorized),
                (OrderState::Authorized, Yen::new(700))
            );
            assert_eq!(
                retry["centerTransactionId"].as_str(),
                o.charge_id.as_deref()
            );
            assert_eq!(
                charges_for(&fe, &id).await,
                1,
                "{}: one charge",
                name(fault)
            );
            // Once answered, the same request is an ordinary duplicate.
            let again = fe.env.mdk("ReAuthorize", params).await;
            assert_eq!(again["vResultCode"], "E301F00100000000", "{again:?}");
            println!(
                "{} restart={restart}: {} then {}",
                name(fault),
                code(&first),
                code(&retry)
            );
        }
    }
}

#[tokio::test]
async fn update_authorize_under_every_fault() {
    let mut fe = FaultEnv::start("fault-update-authorize").await;
    for (step, call) in [
        ("release", Call::CancelCharge),
        ("new authorization", Call::CreateCharge),
    ] {
        for (i, fault) in FAULTS.into_iter().enumerate() {
            for restart in [false, true] {
                let id = format!("ua-{step:.3}-{i}-{restart}");
                fe.env.buy(&id, 5000, false, "visa-1111").await;
                arm(&fe, call, fault);
                let params = json!({"orderId": id, "amount": "4000"});
                let first = fe.env.mdk("UpdateAuthorize", params.clone()).await;
                expect_unknown(&first);
                if restart {
                    fe.restart().await;
                    wait_resolved(&fe.env, &id).await;
                }
                let retry = fe.env.mdk("UpdateAuthorize", params).await;
                assert_eq!(
                    retry["mstatus"],
                    "success",
                    "{step} {} {retry:?}",
                    name(fault)
                );
                let o = fe.env.order(&id).await.unwrap();
                assert_eq!(
                    (o.order.state, o.order.authorized),
                    (OrderState::Authorized, Yen::new(4000))
                );
                // Exactly one authorization is held, the new one.
                let amazon = fe.env.amazon().await;
                let held = charges_for(&fe, &id).await;
                let charge = amazon
                    .get_charge(o.charge_id.as_deref().unwrap())
                    .await
                    .unwrap();
                assert_eq!(charge.status_details.state, ChargeState::Authorized);
                assert_eq!(charge.charge_amount.amount, "4000");
                assert_eq!(
                    held,
                    2,
                    "{step} {}: the old charge and one new one",
                    name(fault)
                );
                assert_eq!(
                    fe.env.mdk("Capture", json!({"orderId": id})).await["mstatus"],
                    "success"
                );
            }
        }
    }
}

#[tokio::test]
async fn terminate_under_every_fault() {
    let mut fe = FaultEnv::start("fault-terminate").await;
    for (i, fault) in FAULTS.into_iter().enumerate() {
        for restart in [false, true] {
            let id = format!("t-{i}-{restart}");
            subscribe(&fe.env, &id).await;
            arm(&fe, Call::CloseChargePermission, fault);
            let first = fe.env.mdk("Terminate", json!({"orderId": id})).await;
            expect_unknown(&first);
            if restart {
                fe.restart().await;
                wait_resolved(&fe.env, &id).await;
            }
            let retry = fe.env.mdk("Terminate", json!({"orderId": id})).await;
            assert_eq!(retry["mstatus"], "success", "{} {retry:?}", name(fault));
            let o = fe.env.order(&id).await.unwrap();
            assert_eq!(o.consent.unwrap().state, ConsentState::Terminated);
            let cp = fe
                .env
                .amazon()
                .await
                .get_charge_permission(o.charge_permission_id.as_deref().unwrap())
                .await
                .unwrap();
            assert_eq!(cp.status_details.state, ChargePermissionState::Closed);
        }
    }
}

/// The new amount is declined, the old amount authorized again, and the outcome's commit fails:
/// the retry goes on with the old amount's authorization (never asks for the new amount a second
/// time, which Amazon may not answer the same way), so one authorization is held. A ReAuthorize
/// order: its recurring charge permission has no balance that would refuse a second one anyway.
#[tokio::test]
async fn a_lost_outcome_after_a_declined_new_amount_holds_one_authorization() {
    let fe = FaultEnv::start("fault-update-declined").await;
    subscribe(&fe.env, "ud").await;
    let r = fe
        .env
        .mdk(
            "ReAuthorize",
            json!({"orderId": "ud-1", "originalOrderId": "ud", "amount": "1000"}),
        )
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    let before = fe.env.order("ud-1").await.unwrap();
    fe.env
        .simulate_next_charge_decline(before.charge_permission_id.as_deref().unwrap())
        .await;
    fe.faulty_store.fail_next_outcome();
    let params = json!({"orderId": "ud-1", "amount": "900"});
    let first = fe.env.mdk("UpdateAuthorize", params.clone()).await;
    expect_unknown(&first);
    let retry = fe.env.mdk("UpdateAuthorize", params).await;
    assert_eq!(retry["mstatus"], "failure", "{retry:?}");
    assert!(
        retry["merrMsg"]
            .as_str()
            .unwrap()
            .contains("previous amount (1000 yen) is authorized again"),
        "{retry:?}"
    );
    let o = fe.env.order("ud-1").await.unwrap();
    assert_eq!(
        (o.order.state, o.order.authorized),
        (OrderState::Authorized, Yen::new(1000))
    );
    let amazon = fe.env.amazon().await;
    let held = amazon
        .get_charge(o.charge_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(held.status_details.state, ChargeState::Authorized);
    assert_eq!(held.charge_amount.amount, "1000");
    // The first charge (released) and the old amount again (a declined Create Charge makes no
    // charge): nothing else.
    assert_eq!(
        charges_for(&fe, "ud-1").await,
        2,
        "no second try of the new amount"
    );
}
