//! Crash recovery with real processes: the gateway (`kessai serve`) runs as its own process next
//! to an emulator process (`kessai sandbox`), with the test hook `KESSAI_TEST_ABORT_AT` that makes
//! it `abort()` at a named point. For each point × {buyer's return, Capture, Refund, Cancel} the
//! flow runs, the gateway dies there, it is started again on the same files, recovery runs, and
//! then the order satisfies the invariants, the merchant's retry gets the real outcome, and the
//! emulator recorded exactly one operation for the intended one.
//!
//! `cargo test -p kessai --test kill_points -- --nocapture` prints the cases covered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::procs::{sandbox, spawn, Proc};
use common::{first_form, query, Browser, TestEnv, MERCHANT_SITE};
use kessai_core::OrderState;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CCID: &str = "A100000000000000000c0ffe";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

async fn gateway(dir: &Path, listen: &str, emulator: &str, abort_at: Option<&str>) -> Proc {
    let mut env = vec![
        ("KESSAI_DEMO_CCID", CCID),
        ("KESSAI_DEMO_SECRET", SECRET),
        ("KESSAI_PUSH_LEASE_SECS", "1"),
    ];
    if let Some(a) = abort_at {
        env.push((kessai_gateway::crash::ENV, a));
    }
    spawn(
        &[
            "serve",
            "--listen",
            listen,
            "--data-dir",
            dir.to_str().unwrap(),
            "--amazon-pay-endpoint",
            emulator,
            "--no-demo-shop",
        ],
        &env,
        "Kessai gateway",
    )
    .await
}

/// Objects of `kind` in the emulator's file whose value at `pointer` is `value`.
async fn emulator_count(dir: &Path, kind: &str, pointer: &str, value: &str) -> usize {
    let url = format!("sqlite://{}?mode=ro", dir.join("sandbox.sqlite").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let rows: Vec<(String,)> = sqlx::query_as("SELECT json FROM records WHERE kind = ?")
        .bind(kind)
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.iter()
        .filter(|(j,)| {
            kessai_sandbox::stored_as_v2(kind, j)
                .unwrap()
                .pointer(pointer)
                .and_then(Value::as_str)
                == Some(value)
        })
        .count()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    BuyerReturn,
    Capture,
    Refund,
    Cancel,
}

impl Flow {
    fn kind(self) -> &'static str {
        match self {
            Flow::BuyerReturn => "CompleteCheckout",
            Flow::Capture => "Capture",
            Flow::Refund => "Refund",
            Flow::Cancel => "CancelCharge",
        }
    }
}

/// Walks the buyer to Amazon's confirmation and pays; returns the result URL the browser is sent
/// to (not yet loaded).
async fn pay_until_return(env: &TestEnv, order_id: &str) -> String {
    let r = env
        .mdk("Authorize", env.authorize_params(order_id, 6000, false))
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    let mut browser = Browser::new(&env.http);
    let page = browser
        .submit(r["responseContents"].as_str().unwrap(), &env.gateway, &[])
        .await;
    let page = browser.submit_page(page, &[]).await; // Amazon sign-in
    let page = browser.submit_page(page, &[]).await; // Kessai's 確定
    let (method, action, fields) = first_form(&page.html, &[]);
    let url = url::Url::parse(&page.url).unwrap().join(&action).unwrap();
    let resp = browser.send_once(method, url.to_string(), &fields).await;
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    url.join(&location).unwrap().to_string()
}

async fn wait_settled(env: &TestEnv, order_id: &str) {
    for _ in 0..200 {
        let o = env.order(order_id).await.unwrap();
        if o.in_flight.is_none() && o.order.state != OrderState::Authorizing {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{order_id} was not recovered");
}

#[tokio::test]
async fn the_gateway_dies_at_each_point_and_recovers_to_exactly_one_operation() {
    let emu_dir = common::fresh_dir("kill-emulator");
    let emulator = sandbox(&emu_dir).await;
    let mut covered = Vec::new();
    for point in ["after-intent", "after-amazon", "after-commit"] {
        for flow in [Flow::BuyerReturn, Flow::Capture, Flow::Refund, Flow::Cancel] {
            let dir: PathBuf = common::fresh_dir("kill-gateway");
            let abort = format!("{point}:{}", flow.kind());
            let mut g = gateway(&dir, "127.0.0.1:0", &emulator.url, Some(&abort)).await;
            let listen = g.url.trim_start_matches("http://").to_owned();
            let env = TestEnv::external(&g.url, &emulator.url, CCID, SECRET, dir.clone()).await;
            let id = format!("k-{point}-{}", flow.kind());
            // Run the flow up to the crash.
            let result_url = match flow {
                Flow::BuyerReturn => {
                    let url = pay_until_return(&env, &id).await;
                    assert!(env.http.get(&url).send().await.is_err(), "the gateway died");
                    Some(url)
                }
                _ => {
                    let landed = env.buy(&id, 6000, flow == Flow::Refund, "visa-1111").await;
                    assert!(landed.as_str().starts_with(MERCHANT_SITE));
                    let params = match flow {
                        Flow::Capture => json!({"orderId": id, "amount": "5000"}),
                        Flow::Refund => json!({"orderId": id, "amount": "2500"}),
                        _ => json!({"orderId": id}),
                    };
                    let name = match flow {
                        Flow::Capture => "Capture",
                        Flow::Refund => "Refund",
                        _ => "Cancel",
                    };
                    assert!(env.try_mdk(name, params).await.is_err(), "the gateway died");
                    None
                }
            };
            let status = g.child.wait().await.unwrap();
            assert!(!status.success(), "{abort}: the process aborted ({status})");
            // Start again on the same files and port, without the hook.
            g = gateway(&dir, &listen, &emulator.url, None).await;
            wait_settled(&env, &id).await;
            let o = env.order(&id).await.unwrap();
            assert!(o.order.invariants_hold(), "{abort}: {:?}", o.order);
            // The merchant retries (the buyer reloads): the real outcome, nothing done twice.
            let retried = match flow {
                Flow::BuyerReturn => {
                    let landed = Browser::new(&env.http)
                        .go(reqwest::Method::GET, result_url.clone().unwrap(), None)
                        .await
                        .merchant_url
                        .unwrap();
                    query(&landed, "mstatus").unwrap()
                }
                Flow::Capture => env
                    .mdk("Capture", json!({"orderId": id, "amount": "5000"}))
                    .await["mstatus"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                Flow::Refund => env
                    .mdk("Refund", json!({"orderId": id, "amount": "2500"}))
                    .await["mstatus"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                Flow::Cancel => env.mdk("Cancel", json!({"orderId": id})).await["mstatus"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            };
            assert_eq!(retried, "success", "{abort}");
            let o = env.order(&id).await.unwrap();
            assert!(o.order.invariants_hold());
            let cp = o.charge_permission_id.clone().unwrap();
            let charge_id = o.charge_id.clone().unwrap();
            let charges =
                emulator_count(&emu_dir, "charge", "/charge/chargePermissionId", &cp).await;
            assert_eq!(charges, 1, "{abort}: one charge");
            let (state, at_emulator) = match flow {
                Flow::BuyerReturn => (OrderState::Authorized, "1 charge".to_owned()),
                Flow::Capture => (OrderState::Captured, "1 charge, captured 5000".to_owned()),
                Flow::Refund => {
                    let refunds =
                        emulator_count(&emu_dir, "refund", "/refund/chargeId", &charge_id).await;
                    assert_eq!(refunds, 1, "{abort}: one refund");
                    (
                        OrderState::PartiallyRefunded,
                        format!("{refunds} refund of 2500"),
                    )
                }
                Flow::Cancel => (OrderState::Canceled, "1 charge, canceled".to_owned()),
            };
            assert_eq!(o.order.state, state, "{abort}");
            if flow == Flow::Capture {
                assert_eq!(o.order.captured, kessai_core::Yen::new(5000));
            }
            let ops = env
                .store
                .operations(&o.merchant, &o.order_id)
                .await
                .unwrap();
            assert!(ops
                .iter()
                .all(|op| op.status != kessai_core::OperationStatus::Pending));
            covered.push(format!(
                "| {point} | {flow:?} | retry: {retried} | {at_emulator} |"
            ));
            drop(g);
        }
    }
    println!("| kill point | flow | after restart | at the emulator |\n|---|---|---|---|");
    for c in &covered {
        println!("{c}");
    }
    assert_eq!(covered.len(), 12);
}

/// A push delivered just before the gateway died is sent again after the restart (at least
/// once), with the same notifyId, and marked delivered once.
#[tokio::test]
async fn a_push_delivered_before_a_crash_is_delivered_again_with_its_id() {
    let emu_dir = common::fresh_dir("kill-push-emulator");
    let emulator = sandbox(&emu_dir).await;
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let g2 = got.clone();
    let app = axum::Router::new().route(
        "/push",
        axum::routing::post(move |body: String| {
            let got = g2.clone();
            async move {
                got.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let push_url = format!("http://{}/push", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = common::fresh_dir("kill-push-gateway");
    let mut g = gateway(&dir, "127.0.0.1:0", &emulator.url, Some("push-after-post")).await;
    let listen = g.url.trim_start_matches("http://").to_owned();
    let env = TestEnv::external(&g.url, &emulator.url, CCID, SECRET, dir.clone()).await;
    let mut params = env.authorize_params("kp-1", 1500, false);
    params["authorizePushUrl"] = push_url.clone().into();
    let r = env.mdk("Authorize", params).await;
    // The buyer's return stores the authorization with its push; the worker delivers it and dies.
    let _ = common::walk_buyer(&env, &r, "visa-1111").await;
    let status = g.child.wait().await.unwrap();
    assert!(!status.success());
    assert_eq!(
        got.lock().unwrap().len(),
        1,
        "delivered once before the crash"
    );
    g = gateway(&dir, &listen, &emulator.url, None).await;
    for _ in 0..100 {
        if got.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bodies = got.lock().unwrap().clone();
    assert_eq!(
        bodies.len(),
        2,
        "sent again after the restart (at least once)"
    );
    let ids: Vec<String> = bodies
        .iter()
        .map(|b| {
            url::form_urlencoded::parse(b.as_bytes())
                .find(|(k, _)| k == "notifyId0000")
                .unwrap()
                .1
                .into_owned()
        })
        .collect();
    assert_eq!(
        ids[0], ids[1],
        "the same record: a merchant drops the duplicate"
    );
    let pushes = env
        .store
        .pushes(&kessai_store::PushFilter::default())
        .await
        .unwrap();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].status, kessai_core::PushStatus::Delivered);
    drop(g);
}

/// The gateway dies while handling Amazon's notification (object fetched, change not stored):
/// after the restart the emulator sends the notification again, and the order moves once, with
/// one push.
#[tokio::test]
async fn a_notification_interrupted_by_a_crash_is_handled_once_when_sent_again() {
    let emu_dir = common::fresh_dir("kill-ipn-emulator");
    let emulator = sandbox(&emu_dir).await;
    let dir = common::fresh_dir("kill-ipn-gateway");
    let mut g = gateway(&dir, "127.0.0.1:0", &emulator.url, Some("ipn-after-fetch")).await;
    let listen = g.url.trim_start_matches("http://").to_owned();
    let env = TestEnv::external(&g.url, &emulator.url, CCID, SECRET, dir.clone()).await;
    let mut params = env.authorize_params("kipn", 1200, false);
    params["cancelPushUrl"] = "http://merchant.example/push".into();
    let r = env.mdk("Authorize", params).await;
    common::walk_buyer(&env, &r, "visa-1111").await;
    // 31 days at Amazon: the authorization expires; its notification kills the gateway.
    let resp = env
        .http
        .post(format!("{}/test_helpers/clock/advance", emulator.url))
        .json(&json!({ "seconds": 31 * 24 * 3600 }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let status = tokio::time::timeout(Duration::from_secs(20), g.child.wait())
        .await
        .expect("the notification reached the gateway")
        .unwrap();
    assert!(!status.success());
    assert_eq!(
        env.order("kipn").await.unwrap().order.state,
        OrderState::Authorized,
        "nothing stored before the crash"
    );
    g = gateway(&dir, &listen, &emulator.url, None).await;
    for _ in 0..200 {
        if env.order("kipn").await.unwrap().order.state == OrderState::Expired {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        env.order("kipn").await.unwrap().order.state,
        OrderState::Expired
    );
    let pushes = env
        .store
        .pushes(&kessai_store::PushFilter::default())
        .await
        .unwrap();
    let expiry: Vec<_> = pushes
        .iter()
        .filter(|p| p.kind == kessai_core::PushKind::Cancel)
        .collect();
    assert_eq!(expiry.len(), 1, "one push for the expiry");
    drop(g);
}
