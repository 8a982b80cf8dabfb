//! Result pushes to merchants, delivered to real HTTP receivers on port 0: records batched per
//! target, signed with the MDK's `content-hmac` (HMAC-SHA256 with the hex-decoded secret) and
//! Kessai's timestamped signature, retried until a 2xx (receivers that fail, are slow, answer
//! garbage or redirect), each record delivered exactly once; live orders never reach private
//! addresses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use common::TestEnv;
use kessai_core::clock::ManualClock;
use kessai_core::PushStatus;
use kessai_store::PushFilter;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a receiver does with the first `bad` requests before it accepts.
#[derive(Clone, Copy, Debug)]
enum Misbehave {
    Fail,
    Slow,
    Redirect,
}

#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    calls: Arc<AtomicUsize>,
    bad: usize,
    how: Misbehave,
    redirect_to: String,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let n = r.calls.fetch_add(1, Ordering::SeqCst);
    if n < r.bad {
        return match r.how {
            Misbehave::Fail => (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response(),
            Misbehave::Slow => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                (StatusCode::OK, "too late").into_response()
            }
            Misbehave::Redirect => (
                StatusCode::FOUND,
                [("location", r.redirect_to.clone())],
                "moved",
            )
                .into_response(),
        };
    }
    r.got.lock().unwrap().push((headers, body));
    (StatusCode::OK, "Push data Accepted.").into_response()
}

async fn start_receiver(bad: usize, how: Misbehave, redirect_to: String) -> (String, Receiver) {
    let r = Receiver {
        got: Arc::default(),
        calls: Arc::default(),
        bad,
        how,
        redirect_to,
    };
    let app = axum::Router::new()
        .route("/push", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/push", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, r)
}

/// A "merchant" that answers bytes that are not HTTP to the first `bad` requests, then 200.
async fn start_garbage_receiver(bad: usize) -> (String, Receiver) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let r = Receiver {
        got: Arc::default(),
        calls: Arc::default(),
        bad,
        how: Misbehave::Fail,
        redirect_to: String::new(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/push", listener.local_addr().unwrap());
    let rr = r.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let r = rr.clone();
            tokio::spawn(async move {
                // Read the head, then as many body bytes as content-length says.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut headers = HeaderMap::new();
                for line in head.lines().skip(1) {
                    if let Some((k, v)) = line.split_once(':') {
                        headers.insert(
                            axum::http::HeaderName::from_bytes(
                                k.trim().to_ascii_lowercase().as_bytes(),
                            )
                            .unwrap(),
                            v.trim().parse().unwrap(),
                        );
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .map(|v| v.to_str().unwrap().parse().unwrap())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let n = r.calls.fetch_add(1, Ordering::SeqCst);
                if n < r.bad {
                    let _ = sock.write_all(b"\x00\x01garbage, not HTTP\r\n\r\n").await;
                    return;
                }
                let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                r.got.lock().unwrap().push((headers, body));
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (url, r)
}

fn hmac_hex(secret_hex: &str, msg: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &hex::decode(secret_hex).unwrap());
    hex::encode(ring::hmac::sign(&key, msg).as_ref())
}

/// The MDK's check of a push: `content-hmac: h=HmacSHA256;s=<ccid>;v=<hex>` over the raw body.
fn verify(env: &TestEnv, headers: &HeaderMap, body: &str) {
    let h = headers["content-hmac"].to_str().unwrap();
    assert_eq!(
        h,
        format!(
            "h=HmacSHA256;s={};v={}",
            env.ccid,
            hmac_hex(&env.secret, body.as_bytes())
        )
    );
    let sig = headers["kessai-signature"].to_str().unwrap();
    let (t, v) = sig.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    assert_eq!(v, hmac_hex(&env.secret, format!("{t}.{body}").as_bytes()));
}

fn form(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

/// Every record delivered to `r` (after a 2xx), as (notifyId, fields without suffix).
fn records(env: &TestEnv, r: &Receiver) -> Vec<(String, HashMap<String, String>)> {
    let mut out = Vec::new();
    for (headers, body) in r.got.lock().unwrap().iter() {
        verify(env, headers, body);
        let f = form(body);
        let n: usize = f["numberOfNotify"].parse().unwrap();
        assert_eq!(f["pushTime"].len(), 14);
        assert!(!f["pushId"].is_empty());
        for i in 0..n {
            let suffix = format!("{i:04}");
            let fields: HashMap<String, String> = f
                .iter()
                .filter_map(|(k, v)| k.strip_suffix(&suffix).map(|k| (k.to_owned(), v.clone())))
                .collect();
            out.push((fields["notifyId"].clone(), fields));
        }
    }
    out
}

fn hooks(clock: Arc<ManualClock>) -> kessai::Hooks {
    kessai::Hooks {
        clock: Some(clock),
        push: Some(kessai_gateway::PushSettings {
            tick: Duration::from_millis(20),
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_millis(700),
            ..kessai_gateway::PushSettings::default()
        }),
        ..kessai::Hooks::default()
    }
}

fn with_pushes(mut params: Value, authorize: &str, capture: &str, cancel: &str) -> Value {
    let m = params.as_object_mut().unwrap();
    m.insert("authorizePushUrl".into(), authorize.into());
    m.insert("capturePushUrl".into(), capture.into());
    m.insert("cancelPushUrl".into(), cancel.into());
    params
}

#[tokio::test]
async fn every_result_is_pushed_once_through_failing_slow_garbage_and_redirecting_receivers() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let env = TestEnv::start_with("pushes", hooks(clock.clone())).await;
    // The redirect target counts hits: a redirect must never be followed.
    let (trap_url, trap) = start_receiver(0, Misbehave::Fail, String::new()).await;
    let (auth_url, auth) = start_receiver(2, Misbehave::Fail, String::new()).await;
    let (cap_url, cap) = start_receiver(1, Misbehave::Slow, String::new()).await;
    let (can_url, can) = start_garbage_receiver(2).await;
    let (redir_url, redir) = start_receiver(1, Misbehave::Redirect, trap_url).await;

    // Order 1: authorize, capture, two refunds. Order 2: authorize with pushes to a receiver that
    // redirects once, then cancel.
    let p1 = with_pushes(
        env.authorize_params("p-1", 5000, false),
        &auth_url,
        &cap_url,
        &can_url,
    );
    let r = env.mdk("Authorize", p1).await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    common::walk_buyer(&env, &r, "visa-1111").await;
    let p2 = with_pushes(
        env.authorize_params("p-2", 800, false),
        &redir_url,
        &cap_url,
        &redir_url,
    );
    let r = env.mdk("Authorize", p2).await;
    common::walk_buyer(&env, &r, "visa-1111").await;
    assert_eq!(
        env.mdk("Capture", json!({"orderId": "p-1"})).await["mstatus"],
        "success"
    );
    assert_eq!(
        env.mdk("Refund", json!({"orderId": "p-1", "amount": "1000"}))
            .await["mstatus"],
        "success"
    );
    assert_eq!(
        env.mdk("Refund", json!({"orderId": "p-1", "amount": "500"}))
            .await["mstatus"],
        "success"
    );
    assert_eq!(
        env.mdk("Cancel", json!({"orderId": "p-2"})).await["mstatus"],
        "success"
    );

    // Failed attempts wait for their backoff on the gateway's clock: move it on until every record
    // is delivered.
    let store = env.store.clone();
    for _ in 0..40 {
        let pending = store
            .pushes(&PushFilter {
                status: Some(PushStatus::Pending),
                ..PushFilter::default()
            })
            .await
            .unwrap();
        if pending.is_empty() {
            break;
        }
        clock.advance(time::Duration::seconds(60));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let all = store.pushes(&PushFilter::default()).await.unwrap();
    assert_eq!(
        all.len(),
        6,
        "authorize ×2, capture, refund ×2, cancel: {all:?}"
    );
    assert!(
        all.iter().all(|p| p.status == PushStatus::Delivered),
        "{all:?}"
    );
    assert_eq!(
        trap.calls.load(Ordering::SeqCst),
        0,
        "no redirect was followed"
    );
    assert!(
        auth.calls.load(Ordering::SeqCst) >= 3,
        "failed twice, then accepted"
    );

    let by_url = |r: &Receiver| records(&env, r);
    let a = by_url(&auth);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].1["orderId"], "p-1");
    assert_eq!(a[0].1["txnType"], "Authorize");
    assert_eq!(a[0].1["mstatus"], "success");
    assert_eq!(a[0].1["vResultCode"], "S000000000000000");
    assert_eq!(a[0].1["amount"], "5000");
    assert_eq!(a[0].1["dummy"], "1");
    let c = by_url(&cap);
    assert_eq!(
        c.len(),
        1,
        "the slow receiver's late 200 does not count; sent again, once accepted"
    );
    assert!(
        cap.calls.load(Ordering::SeqCst) >= 2,
        "timed out once, then accepted"
    );
    assert_eq!(
        (c[0].1["txnType"].as_str(), c[0].1["amount"].as_str()),
        ("Capture", "5000")
    );
    let refunds = by_url(&can);
    assert_eq!(
        refunds.len(),
        2,
        "the two refunds, after two garbage answers"
    );
    assert!(
        can.calls.load(Ordering::SeqCst) >= 3,
        "two garbage answers, then accepted"
    );
    let mut amounts: Vec<&str> = refunds.iter().map(|(_, f)| f["amount"].as_str()).collect();
    amounts.sort();
    assert_eq!(amounts, ["1000", "500"]);
    let o = env.order("p-1").await.unwrap();
    let stored = env.store.refunds(&o.merchant, &o.order_id).await.unwrap();
    for (_, f) in &refunds {
        assert_eq!(f["txnType"], "Refund");
        assert!(stored
            .iter()
            .any(|s| s.amazon_refund_id == f["centerTransactionId"]));
    }
    let r2 = by_url(&redir);
    let kinds: Vec<&str> = r2.iter().map(|(_, f)| f["txnType"].as_str()).collect();
    assert_eq!(kinds.len(), 2);
    assert!(
        kinds.contains(&"Authorize") && kinds.contains(&"Cancel"),
        "{kinds:?}"
    );
    // Exactly once: no notifyId was accepted twice anywhere.
    let mut ids: Vec<String> = [a, c, refunds, r2]
        .into_iter()
        .flatten()
        .map(|(id, _)| id)
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a record was delivered twice");
    assert_eq!(n, 6);
}

#[tokio::test]
async fn live_orders_never_push_to_private_addresses() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let env = TestEnv::start_with("pushes-live", hooks(clock.clone())).await;
    let (url, receiver) = start_receiver(0, Misbehave::Fail, String::new()).await;
    // A live order (the /paynow path, dummyRequest 0) whose push URL is on loopback.
    let mut params = with_pushes(env.authorize_params("live-1", 900, false), &url, &url, &url);
    let m = params.as_object_mut().unwrap();
    m.insert("txnVersion".into(), "2.0.0".into());
    m.insert("dummyRequest".into(), "0".into());
    m.insert("merchantCcid".into(), env.ccid.clone().into());
    let body = kessai_gateway::mdk::encode_request(&params, &env.ccid, &env.secret);
    let r = env
        .mdk_path(
            "/paynow/v2/Authorize/amazonpay",
            body,
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    let o = env.order("live-1").await.unwrap();
    assert!(!o.dummy);
    let r = env.mdk_live("Cancel", json!({"orderId": "live-1"})).await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    let store = env.store.clone();
    let mut refused = Vec::new();
    for _ in 0..100 {
        refused = store
            .pushes(&PushFilter {
                status: Some(PushStatus::Refused),
                ..PushFilter::default()
            })
            .await
            .unwrap();
        if !refused.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(refused.len(), 1, "the cancel record is refused");
    assert!(
        refused[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("127.0.0.1"),
        "{:?}",
        refused[0].last_error
    );
    assert_eq!(receiver.calls.load(Ordering::SeqCst), 0, "nothing was sent");
    assert_eq!(
        env.order("live-1").await.unwrap().order.state,
        kessai_core::OrderState::Canceled
    );
}
