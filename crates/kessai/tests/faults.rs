//! Faults between the gateway and Amazon Pay, and in the gateway's own store, for every operation
//! that moves money or completes a checkout. For each fault the merchant gets the outcome-unknown
//! code (`E500`, mstatus `pending`); a retry, and separately a restart, ends with exactly one
//! operation at the emulator, and `captured ≤ authorized`, `refunded ≤ captured` hold after every
//! step.
//!
//! `cargo test -p kessai --test faults -- --nocapture` prints the table of what was seen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::faults::{arm, code, expect_unknown, name, wait_resolved, Call, Fault, FAULTS};
use common::{first_form, query, Browser, FaultEnv, TestEnv};
use kessai_amazonpay::AmazonPay;
use kessai_core::{OrderState, Yen};
use serde_json::json;
use std::time::Duration;

async fn invariants(env: &TestEnv, order_id: &str) {
    let o = env.order(order_id).await.unwrap();
    assert!(o.order.invariants_hold(), "{order_id}: {:?}", o.order);
}

/// How many charges the emulator holds on the order's charge permission.
async fn charges_of(fe: &FaultEnv, o: &kessai_store::OrderRecord) -> usize {
    fe.emulator_count(
        "charge",
        "/charge/chargePermissionId",
        o.charge_permission_id.as_deref().unwrap(),
    )
    .await
}

struct Row {
    fault: String,
    command: &'static str,
    restart: bool,
    first: String,
    retry: String,
    at_emulator: String,
}

fn print_table(rows: &[Row]) {
    println!("| fault | command | restart | merchant saw | retry saw | at the emulator |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.fault,
            r.command,
            if r.restart { "yes" } else { "no" },
            r.first,
            r.retry,
            r.at_emulator
        );
    }
}

#[tokio::test]
async fn capture_under_every_fault() {
    let mut fe = FaultEnv::start("fault-capture").await;
    let mut rows = Vec::new();
    for (i, fault) in FAULTS.into_iter().enumerate() {
        for restart in [false, true] {
            let id = format!("cap-{i}-{restart}");
            fe.env.buy(&id, 5000, false, "visa-1111").await;
            arm(&fe, Call::Capture, fault);
            let first = fe
                .env
                .mdk("Capture", json!({"orderId": id, "amount": "3000"}))
                .await;
            expect_unknown(&first);
            invariants(&fe.env, &id).await;
            let o = fe.env.order(&id).await.unwrap();
            assert!(o.in_flight.is_some(), "the operation is pending");
            if restart {
                fe.restart().await;
                wait_resolved(&fe.env, &id).await;
                invariants(&fe.env, &id).await;
            }
            let retry = fe
                .env
                .mdk("Capture", json!({"orderId": id, "amount": "3000"}))
                .await;
            assert_eq!(retry["mstatus"], "success", "{fault:?} {retry:?}");
            assert_eq!(
                retry["centerTransactionId"].as_str(),
                o.charge_id.as_deref()
            );
            invariants(&fe.env, &id).await;
            let o = fe.env.order(&id).await.unwrap();
            assert_eq!(
                (o.order.state, o.order.captured),
                (OrderState::Captured, Yen::new(3000))
            );
            // Another retry is now an ordinary second capture: refused, nothing moves.
            let again = fe
                .env
                .mdk("Capture", json!({"orderId": id, "amount": "3000"}))
                .await;
            assert_eq!(again["vResultCode"], "E303F00100000000", "{again:?}");
            let charge = fe
                .env
                .amazon()
                .await
                .get_charge(o.charge_id.as_deref().unwrap())
                .await
                .unwrap();
            assert_eq!(charge.capture_amount.unwrap().amount, "3000");
            let charges = charges_of(&fe, &o).await;
            assert_eq!(charges, 1);
            rows.push(Row {
                fault: name(fault),
                command: "Capture 3000 of 5000",
                restart,
                first: code(&first),
                retry: code(&retry),
                at_emulator: format!(
                    "{charges} charge, {} captured {}",
                    charge.status_details.state, 3000
                ),
            });
        }
    }
    print_table(&rows);
}

#[tokio::test]
async fn partial_refund_under_every_fault() {
    let mut fe = FaultEnv::start("fault-refund").await;
    let mut rows = Vec::new();
    for (i, fault) in FAULTS.into_iter().enumerate() {
        for restart in [false, true] {
            let id = format!("ref-{i}-{restart}");
            fe.env.buy(&id, 5000, true, "visa-1111").await;
            let o = fe.env.order(&id).await.unwrap();
            let charge_id = o.charge_id.clone().unwrap();
            arm(&fe, Call::CreateRefund, fault);
            let first = fe
                .env
                .mdk("Refund", json!({"orderId": id, "amount": "1000"}))
                .await;
            expect_unknown(&first);
            invariants(&fe.env, &id).await;
            if restart {
                fe.restart().await;
                wait_resolved(&fe.env, &id).await;
                invariants(&fe.env, &id).await;
            }
            let retry = fe
                .env
                .mdk("Refund", json!({"orderId": id, "amount": "1000"}))
                .await;
            assert_eq!(retry["mstatus"], "success", "{fault:?} {retry:?}");
            assert_eq!(retry["refundableAmount"], "4000");
            invariants(&fe.env, &id).await;
            let refunds = fe
                .emulator_count("refund", "/refund/chargeId", &charge_id)
                .await;
            assert_eq!(refunds, 1, "{fault:?}: exactly one refund at Amazon");
            let stored = fe
                .env
                .store
                .refunds(&o.merchant, &o.order_id)
                .await
                .unwrap();
            assert_eq!(stored.len(), 1);
            assert_eq!(
                retry["centerTransactionId"].as_str(),
                Some(stored[0].amazon_refund_id.as_str())
            );
            rows.push(Row {
                fault: name(fault),
                command: "Refund 1000 of 5000",
                restart,
                first: code(&first),
                retry: code(&retry),
                at_emulator: format!("{refunds} refund of 1000"),
            });
        }
    }
    print_table(&rows);
}

#[tokio::test]
async fn a_refund_of_another_amount_is_not_blocked_by_a_lost_one() {
    let fe = FaultEnv::start("fault-refund-other").await;
    let id = "ref-other";
    fe.env.buy(id, 5000, true, "visa-1111").await;
    let charge_id = fe.env.order(id).await.unwrap().charge_id.unwrap();
    fe.amazon.arm(Call::CreateRefund, Fault::DropAnswer);
    let first = fe
        .env
        .mdk("Refund", json!({"orderId": id, "amount": "1000"}))
        .await;
    expect_unknown(&first);
    // The merchant sends another amount: the lost refund is resolved first, then this one runs
    // with its own idempotency key.
    let other = fe
        .env
        .mdk("Refund", json!({"orderId": id, "amount": "700"}))
        .await;
    assert_eq!(other["mstatus"], "success", "{other:?}");
    assert_eq!(other["refundableAmount"], "3300");
    // The retry of the lost one gets its real outcome, and refunds nothing more.
    let retry = fe
        .env
        .mdk("Refund", json!({"orderId": id, "amount": "1000"}))
        .await;
    assert_eq!(retry["mstatus"], "success", "{retry:?}");
    assert_eq!(retry["refundableAmount"], "3300");
    assert_eq!(
        fe.emulator_count("refund", "/refund/chargeId", &charge_id)
            .await,
        2
    );
    let o = fe.env.order(id).await.unwrap();
    assert_eq!(o.order.refunded, Yen::new(1700));
    invariants(&fe.env, id).await;
}

#[tokio::test]
async fn cancel_under_every_fault() {
    let mut fe = FaultEnv::start("fault-cancel").await;
    let mut rows = Vec::new();
    for (i, fault) in FAULTS.into_iter().enumerate() {
        for restart in [false, true] {
            let id = format!("can-{i}-{restart}");
            fe.env.buy(&id, 5000, false, "visa-1111").await;
            arm(&fe, Call::CancelCharge, fault);
            let first = fe.env.mdk("Cancel", json!({"orderId": id})).await;
            expect_unknown(&first);
            invariants(&fe.env, &id).await;
            if restart {
                fe.restart().await;
                wait_resolved(&fe.env, &id).await;
            }
            let retry = fe.env.mdk("Cancel", json!({"orderId": id})).await;
            assert_eq!(retry["mstatus"], "success", "{fault:?} {retry:?}");
            let o = fe.env.order(&id).await.unwrap();
            assert_eq!(o.order.state, OrderState::Canceled);
            invariants(&fe.env, &id).await;
            let charge = fe
                .env
                .amazon()
                .await
                .get_charge(o.charge_id.as_deref().unwrap())
                .await
                .unwrap();
            assert_eq!(charge.status_details.state.to_string(), "Canceled");
            let charges = charges_of(&fe, &o).await;
            assert_eq!(charges, 1);
            rows.push(Row {
                fault: name(fault),
                command: "Cancel",
                restart,
                first: code(&first),
                retry: code(&retry),
                at_emulator: format!("{charges} charge, Canceled"),
            });
        }
    }
    print_table(&rows);
}

/// Walks the buyer to Amazon's confirmation page (the last page before the result URL).
async fn to_amazon_confirmation<'a>(
    env: &TestEnv,
    browser: &mut Browser<'a>,
    order_id: &str,
) -> common::Page {
    let r = env
        .mdk("Authorize", env.authorize_params(order_id, 4000, false))
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    let page = browser
        .submit(r["responseContents"].as_str().unwrap(), &env.gateway, &[])
        .await;
    let page = browser
        .submit_page(page, &[("instrument", "visa-1111")])
        .await; // Amazon sign-in
    let page = browser.submit_page(page, &[]).await; // Kessai's 確定
    assert_eq!(
        page.status, 200,
        "Amazon's confirmation page: {}",
        page.html
    );
    page
}

fn result_url(env: &TestEnv, o: &kessai_store::OrderRecord) -> String {
    format!(
        "{}/amazonpay/result/{}?amazonCheckoutSessionId={}",
        env.gateway,
        o.public_ref,
        o.checkout_session_id.clone().unwrap()
    )
}

#[tokio::test]
async fn buyer_return_under_every_fault() {
    let mut fe = FaultEnv::start("fault-complete").await;
    let mut rows = Vec::new();
    for (i, fault) in FAULTS.into_iter().enumerate() {
        for restart in [false, true] {
            let id = format!("cmp-{i}-{restart}");
            let http = fe.env.http.clone();
            let mut browser = Browser::new(&http);
            let page = to_amazon_confirmation(&fe.env, &mut browser, &id).await;
            arm(&fe, Call::CompleteCheckout, fault);
            // The buyer pays at Amazon and comes back to Kessai's result URL.
            let back = browser.submit_page(page, &[]).await;
            assert!(back.merchant_url.is_none(), "{fault:?}: not decided yet");
            assert_eq!(back.status, 502, "{}", back.html);
            assert!(back.html.contains("E500"), "{}", back.html);
            let o = fe.env.order(&id).await.unwrap();
            assert_eq!(o.order.state, OrderState::Authorizing);
            assert!(o.in_flight.is_some());
            invariants(&fe.env, &id).await;
            if restart {
                fe.restart().await;
                wait_resolved(&fe.env, &id).await;
            }
            // The buyer reloads the page (or the merchant asks): the same authorization.
            let o = fe.env.order(&id).await.unwrap();
            let http = fe.env.http.clone();
            let mut browser = Browser::new(&http);
            let landed = browser
                .go(reqwest::Method::GET, result_url(&fe.env, &o), None)
                .await
                .merchant_url
                .unwrap();
            assert_eq!(query(&landed, "mstatus").as_deref(), Some("success"));
            let o = fe.env.order(&id).await.unwrap();
            assert_eq!(o.order.state, OrderState::Authorized);
            invariants(&fe.env, &id).await;
            let charges = charges_of(&fe, &o).await;
            assert_eq!(charges, 1, "{fault:?}: exactly one charge");
            let capture = fe.env.mdk("Capture", json!({"orderId": id})).await;
            assert_eq!(capture["mstatus"], "success");
            rows.push(Row {
                fault: name(fault),
                command: "buyer's return (Complete Checkout Session)",
                restart,
                first: "page 502 E500".into(),
                retry: format!(
                    "reload → successUrl, mstatus={}",
                    query(&landed, "mstatus").unwrap_or_default()
                ),
                at_emulator: format!("{charges} charge, Authorized"),
            });
        }
    }
    print_table(&rows);
}

#[tokio::test]
async fn a_buyer_who_never_comes_back_is_finished_by_the_next_command() {
    let fe = FaultEnv::start("never-back").await;
    let http = fe.env.http.clone();
    let mut browser = Browser::new(&http);
    let page = to_amazon_confirmation(&fe.env, &mut browser, "gone").await;
    // The buyer pays at Amazon, and the tab closes before the redirect back is followed.
    let (method, action, fields) = first_form(&page.html, &[]);
    let url = url::Url::parse(&page.url).unwrap().join(&action).unwrap();
    let resp = browser.send_once(method, url.to_string(), &fields).await;
    assert!(resp.status().is_redirection());
    assert_eq!(
        fe.env.order("gone").await.unwrap().order.state,
        OrderState::Authorizing
    );
    // The merchant's Capture first finishes the order as Amazon sees it, then captures.
    let r = fe.env.mdk("Capture", json!({"orderId": "gone"})).await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    let o = fe.env.order("gone").await.unwrap();
    assert_eq!(
        (o.order.state, o.order.captured),
        (OrderState::Captured, Yen::new(4000))
    );
    invariants(&fe.env, "gone").await;
}

#[tokio::test]
async fn the_result_url_before_the_buyer_confirmed_decides_nothing() {
    let fe = FaultEnv::start("early-result").await;
    let http = fe.env.http.clone();
    let mut browser = Browser::new(&http);
    let page = to_amazon_confirmation(&fe.env, &mut browser, "early").await;
    let o = fe.env.order("early").await.unwrap();
    assert_eq!(o.order.state, OrderState::Authorizing);
    // A reload, a prefetch or the back button loads the result URL before the buyer paid.
    let early = Browser::new(&http)
        .go(reqwest::Method::GET, result_url(&fe.env, &o), None)
        .await;
    assert!(early.merchant_url.is_none(), "not sent to errorUrl");
    assert_eq!(early.status, 409, "{}", early.html);
    assert!(early.html.contains("E311"), "{}", early.html);
    let o = fe.env.order("early").await.unwrap();
    assert_eq!(o.order.state, OrderState::Authorizing, "not declined");
    assert!(o.in_flight.is_none());
    // A merchant command meanwhile answers "in progress" and changes nothing.
    let r = fe.env.mdk("Capture", json!({"orderId": "early"})).await;
    assert_eq!(r["vResultCode"], "E311F00100000000", "{r:?}");
    // The buyer then pays at Amazon and lands on the merchant's success URL.
    let landed = browser.submit_page(page, &[]).await.merchant_url.unwrap();
    assert_eq!(query(&landed, "mstatus").as_deref(), Some("success"));
    let o = fe.env.order("early").await.unwrap();
    assert_eq!(o.order.state, OrderState::Authorized);
    invariants(&fe.env, "early").await;
}

#[tokio::test]
async fn no_return_url_is_signed_without_the_merchants_secret() {
    let fe = FaultEnv::start("no-secret").await;
    let http = fe.env.http.clone();
    let mut browser = Browser::new(&http);
    let page = to_amazon_confirmation(&fe.env, &mut browser, "sec-1").await;
    // The merchant's secret cannot be read when the buyer comes back.
    fe.faulty_store.fail_merchant_lookups(true);
    let back = browser.submit_page(page, &[]).await;
    assert!(
        back.merchant_url.is_none(),
        "no return URL with a tamper check signed by an empty secret"
    );
    assert_eq!(back.status, 503, "{}", back.html);
    let o = fe.env.order("sec-1").await.unwrap();
    assert_eq!(
        o.order.state,
        OrderState::Authorized,
        "the payment is stored"
    );
    // When the secret can be read again, a reload returns a correctly signed URL.
    fe.faulty_store.fail_merchant_lookups(false);
    let landed = Browser::new(&http)
        .go(reqwest::Method::GET, result_url(&fe.env, &o), None)
        .await
        .merchant_url
        .unwrap();
    let values = ["orderId", "mstatus", "vResultCode"].map(|k| query(&landed, k).unwrap());
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut h, fe.env.ccid.as_bytes());
    for v in &values {
        sha2::Digest::update(&mut h, v.as_bytes());
    }
    sha2::Digest::update(&mut h, fe.env.secret.as_bytes());
    let expected = hex::encode(sha2::Digest::finalize(h));
    assert_eq!(
        query(&landed, "vAuthInfo").as_deref(),
        Some(expected.as_str())
    );
}

#[tokio::test]
async fn the_recovery_worker_finishes_an_abandoned_checkout_on_its_own() {
    let hooks = kessai::Hooks {
        recovery: Some(kessai_gateway::RecoverySettings {
            every: Duration::from_millis(100),
            waiting_after: Duration::ZERO,
        }),
        ..kessai::Hooks::default()
    };
    let env = TestEnv::start_with("recovery-worker", hooks).await;
    let http = env.http.clone();
    let mut browser = Browser::new(&http);
    let page = to_amazon_confirmation(&env, &mut browser, "left").await;
    // The buyer pays at Amazon; the browser never comes back.
    let (method, action, fields) = first_form(&page.html, &[]);
    let url = url::Url::parse(&page.url).unwrap().join(&action).unwrap();
    let resp = browser.send_once(method, url.to_string(), &fields).await;
    assert!(resp.status().is_redirection());
    // No merchant command: the worker asks Amazon and finishes the order.
    let mut state = OrderState::Authorizing;
    for _ in 0..100 {
        state = env.order("left").await.unwrap().order.state;
        if state != OrderState::Authorizing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, OrderState::Authorized);
    invariants(&env, "left").await;
}
