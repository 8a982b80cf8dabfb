//! A flaky network between the gateway and Amazon Pay: a seeded fault injector loses the answer,
//! times out or answers 5xx on a share of the calls that complete a checkout, capture, cancel,
//! refund or read a charge. Many one-time flows (authorize, buyer, capture or cancel, refunds) are
//! driven through it with merchants and buyers that retry as documented (send the same command
//! again after `E500`; reload the page); every order must end consistent with the emulator.
//!
//! `KESSAI_FLAKY_FLOWS` (default 1000) sets the number of flows; `KESSAI_FLAKY_SEED` the seed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{check_order_against, query, Browser, EmulatorView, FaultEnv, TestEnv};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Sends a command until its answer is final (not outcome-unknown); returns it and the tries.
async fn until_final(env: &TestEnv, command: &str, params: Value) -> (Map<String, Value>, u32) {
    for attempt in 1..=40 {
        let r = env.mdk(command, params.clone()).await;
        let code = r["vResultCode"].as_str().unwrap();
        if !code.starts_with("E50") {
            return (r, attempt);
        }
    }
    panic!("{command} {params} never got a final answer");
}

/// One flow; returns how many retries the merchant and the buyer needed.
async fn flow(env: &TestEnv, i: u64) -> u32 {
    let id = format!("f-{i}");
    let amount = 1000 + i * 7;
    let with_capture = i.is_multiple_of(5);
    let r = env
        .mdk("Authorize", env.authorize_params(&id, amount, with_capture))
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    let mut browser = Browser::new(&env.http);
    let page = browser
        .submit(r["responseContents"].as_str().unwrap(), &env.gateway, &[])
        .await;
    let page = browser.submit_page(page, &[]).await; // Amazon sign-in
    let page = browser.submit_page(page, &[]).await; // Kessai's 確定
    let mut landed = browser.submit_page(page, &[]).await; // pay at Amazon, back to Kessai
    let mut retries = 0;
    let o = env.order(&id).await.unwrap();
    let result_url = format!(
        "{}/amazonpay/result/{}?amazonCheckoutSessionId={}",
        env.gateway,
        o.public_ref,
        o.checkout_session_id.clone().unwrap()
    );
    while landed.merchant_url.is_none() {
        // The result page said "try again" (the outcome at Amazon was not known): reload.
        assert_eq!(landed.status, 502, "{}", landed.html);
        retries += 1;
        assert!(retries < 40, "{id}: the buyer never got through");
        landed = Browser::new(&env.http)
            .go(reqwest::Method::GET, result_url.clone(), None)
            .await;
    }
    let url = landed.merchant_url.unwrap();
    assert_eq!(query(&url, "mstatus").as_deref(), Some("success"), "{url}");

    if !with_capture {
        if i % 7 == 3 {
            let (r, n) = until_final(env, "Cancel", json!({"orderId": id})).await;
            assert_eq!(r["mstatus"], "success", "{r:?}");
            return retries + n - 1;
        }
        let capture = amount - (i % 100);
        let (r, n) = until_final(
            env,
            "Capture",
            json!({"orderId": id, "amount": capture.to_string()}),
        )
        .await;
        assert_eq!(r["mstatus"], "success", "{r:?}");
        retries += n - 1;
    }
    let refunds = if i.is_multiple_of(3) { 2 } else { 1 };
    for k in 0..refunds {
        let (r, n) = until_final(
            env,
            "Refund",
            json!({"orderId": id, "amount": (100 + k * 50 + i % 50).to_string()}),
        )
        .await;
        assert_eq!(r["mstatus"], "success", "{r:?}");
        retries += n - 1;
    }
    retries
}

#[tokio::test]
async fn many_flows_through_a_flaky_network_end_consistent() {
    let flows = env_number("KESSAI_FLAKY_FLOWS", 1000);
    let seed = env_number("KESSAI_FLAKY_SEED", 20261201);
    let fe = FaultEnv::start("flaky").await;
    // One in five money-moving calls fails.
    fe.amazon.chaos(seed, 200);
    let started = std::time::Instant::now();
    let mut retries = 0;
    let ids: Vec<u64> = (0..flows).collect();
    for batch in ids.chunks(16) {
        let runs = batch.iter().map(|i| flow(&fe.env, *i));
        retries += futures_util::future::join_all(runs)
            .await
            .into_iter()
            .sum::<u32>();
    }
    let flows_took = started.elapsed();
    let view = EmulatorView::load(&fe.env.data_dir.join("sandbox.sqlite")).await;
    let mut checked = 0;
    for i in 0..flows {
        let id = format!("f-{i}");
        if let Err(e) = check_order_against(&fe.env, &id, &view).await {
            panic!("{e}");
        }
        checked += 1;
    }
    let faults = fe.amazon.fired.load(Ordering::SeqCst);
    println!(
        "flaky network: {flows} flows, {faults} injected faults, {retries} retries, {checked} orders consistent with the emulator; flows {:.1} s, checks {:.1} s (seed {seed})",
        flows_took.as_secs_f64(),
        (started.elapsed() - flows_took).as_secs_f64()
    );
    assert!(faults > 0, "faults were injected");
}
