//! How the emulator starts and answers with a large file: not part of the suite (`#[ignore]`),
//! run by hand in two processes so that the second one measures a fresh start:
//!
//! ```sh
//! KESSAI_WS_FILE=/tmp/ws/sandbox.sqlite KESSAI_WS_ORDERS=100000 \
//!   cargo test -p kessai-sandbox --release --test working_set -- --ignored populate --nocapture
//! KESSAI_WS_FILE=/tmp/ws/sandbox.sqlite \
//!   cargo test -p kessai-sandbox --release --test working_set -- --ignored measure --nocapture
//! ```
//!
//! `populate` runs a few dozen real orders through the API (sessions, charge permissions,
//! charges, captures, refunds, idempotent answers), then copies their rows in the file under new
//! ids until it holds `KESSAI_WS_ORDERS` orders. `measure` opens it as a new emulator would
//! (start-up time, resident memory) and times reads of a charge.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kessai_amazonpay::wire::*;
use kessai_amazonpay::{AmazonPay, AmazonPayClient, ClientConfig, PrivateKey};
use kessai_core::{Currency, Money};
use kessai_sandbox::{Sandbox, SandboxConfig};
use serde_json::{json, Value};
use sqlx::Row;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SEED_ORDERS: usize = 40;

fn file() -> PathBuf {
    PathBuf::from(std::env::var("KESSAI_WS_FILE").expect("set KESSAI_WS_FILE"))
}

fn config(db: PathBuf) -> SandboxConfig {
    SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: db,
        public_url: None,
        tls: kessai_sandbox::TlsSetting::Off,
        test_helpers: None,
        limits: kessai_sandbox::Limits::default(),
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn client(base: &str, key: Arc<PrivateKey>, key_id: &str, store_id: &str) -> AmazonPayClient {
    AmazonPayClient::new(
        ClientConfig {
            endpoint: url::Url::parse(base).unwrap(),
            public_key_id: key_id.into(),
            region: "jp".into(),
            store_id: store_id.into(),
            timeout: Duration::from_secs(30),
        },
        key,
    )
    .unwrap()
}

#[tokio::test]
#[ignore]
async fn populate() {
    let orders: usize = std::env::var("KESSAI_WS_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let db = file();
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let sandbox = Sandbox::bind(config(db.clone())).await.unwrap();
    let base = sandbox.base_url().to_owned();
    let server = tokio::spawn(sandbox.serve());
    let http = reqwest::Client::new();
    let key = Arc::new(PrivateKey::generate().unwrap());
    let v: Value = http
        .post(format!("{base}/test_helpers/publicKeys"))
        .json(&json!({"publicKey": key.public_key().to_pem().unwrap()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_id = v["publicKeyId"].as_str().unwrap().to_owned();
    let store_id = v["storeId"].as_str().unwrap().to_owned();
    let api = client(&base, key.clone(), &key_id, &store_id);
    let mut a_charge = String::new();
    for i in 0..SEED_ORDERS {
        let amount = Price::from_money(Money::new(1000 + i as i64, Currency::Jpy));
        let cs = api
            .create_checkout_session(
                &CreateCheckoutSessionRequest {
                    web_checkout_details: WebCheckoutDetailsRequest {
                        checkout_review_return_url: Some("https://m.example/review".into()),
                        checkout_result_return_url: Some("https://m.example/result".into()),
                        ..Default::default()
                    },
                    store_id: store_id.clone(),
                    payment_details: Some(PaymentDetailsRequest {
                        payment_intent: Some("Authorize".into()),
                        charge_amount: Some(amount.clone()),
                        ..Default::default()
                    }),
                    merchant_metadata: Some(MerchantMetadataRequest {
                        merchant_reference_id: Some(format!("order-{i}")),
                        merchant_store_name: Some("Working set shop".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                &format!("cs-{i}"),
            )
            .await
            .unwrap();
        let id = cs.checkout_session_id;
        for step in ["sign_in", "confirm"] {
            let r = http
                .post(format!("{base}/test_helpers/checkoutSessions/{id}/{step}"))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{step}: {}", r.status());
        }
        let done = api
            .complete_checkout_session(
                &id,
                &CompleteCheckoutSessionRequest {
                    charge_amount: amount.clone(),
                    total_order_amount: None,
                },
                &format!("complete-{i}"),
            )
            .await
            .unwrap();
        let charge_id = done.charge_id.unwrap();
        if i % 2 == 0 {
            api.capture_charge(
                &charge_id,
                &CaptureChargeRequest {
                    capture_amount: amount.clone(),
                    soft_descriptor: None,
                },
                &format!("capture-{i}"),
            )
            .await
            .unwrap();
            if i % 4 == 0 {
                api.create_refund(
                    &CreateRefundRequest {
                        charge_id: charge_id.clone(),
                        refund_amount: Price::from_money(Money::new(100, Currency::Jpy)),
                        soft_descriptor: None,
                    },
                    &format!("refund-{i}"),
                )
                .await
                .unwrap();
            }
        }
        a_charge = charge_id;
    }
    server.abort();
    let _ = server.await;
    // Copy the rows under new ids.
    let url = format!("sqlite://{}", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let table: String = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('objects', 'records')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let with_columns = table == "records";
    let rows = sqlx::query(&format!("SELECT * FROM {table}"))
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut ids: Vec<String> = rows.iter().map(|r| r.get::<String, _>("id")).collect();
    ids.sort_by_key(|id| std::cmp::Reverse(id.len()));
    let idem = sqlx::query("SELECT * FROM idempotency")
        .fetch_all(&pool)
        .await
        .unwrap();
    // The ids each text holds, found once (longest first, so none is a part of another).
    let holds = |text: &str| -> Vec<String> {
        ids.iter()
            .filter(|id| text.contains(id.as_str()))
            .cloned()
            .collect()
    };
    let renamed = |text: &str, found: &[String], k: usize| {
        let mut out = text.to_owned();
        for id in found {
            out = out.replace(id.as_str(), &format!("{id}x{k}"));
        }
        out
    };
    let row_ids: Vec<Vec<String>> = rows
        .iter()
        .map(|r| holds(&r.get::<String, _>("json")))
        .collect();
    let idem_ids: Vec<Vec<String>> = idem
        .iter()
        .map(|r| holds(&r.get::<String, _>("body")))
        .collect();
    let copies = orders.div_ceil(SEED_ORDERS);
    let started = Instant::now();
    for k in 1..copies {
        let mut tx = pool.begin().await.unwrap();
        for (r, found) in rows.iter().zip(&row_ids) {
            let id: String = r.get("id");
            let json: String = r.get("json");
            if with_columns {
                let parent: Option<String> = r.get("parent_id");
                let deadline: Option<i64> = r.get("deadline");
                sqlx::query("INSERT INTO records(kind, id, merchant_id, parent_id, deadline, json) VALUES (?, ?, ?, ?, ?, ?)")
                    .bind(r.get::<String, _>("kind"))
                    .bind(format!("{id}x{k}"))
                    .bind(r.get::<String, _>("merchant_id"))
                    .bind(parent.map(|p| format!("{p}x{k}")))
                    .bind(deadline)
                    .bind(renamed(&json, found, k))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            } else {
                sqlx::query("INSERT INTO objects(kind, id, merchant_id, json) VALUES (?, ?, ?, ?)")
                    .bind(r.get::<String, _>("kind"))
                    .bind(format!("{id}x{k}"))
                    .bind(r.get::<String, _>("merchant_id"))
                    .bind(renamed(&json, found, k))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
        }
        for (r, found) in idem.iter().zip(&idem_ids) {
            let body: String = r.get("body");
            sqlx::query("INSERT INTO idempotency(merchant_id, key, fingerprint, status, body, created_at) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(r.get::<String, _>("merchant_id"))
                .bind(format!("{}x{k}", r.get::<String, _>("key")))
                .bind(r.get::<String, _>("fingerprint"))
                .bind(r.get::<i64, _>("status"))
                .bind(renamed(&body, found, k))
                .bind(r.get::<String, _>("created_at"))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    std::fs::write(
        db.with_extension("key.json"),
        json!({"pem": key.to_pem(), "keyId": key_id, "storeId": store_id, "charge": a_charge})
            .to_string(),
    )
    .unwrap();
    let size = std::fs::metadata(&db).unwrap().len();
    println!(
        "populated {} orders ({count} objects, {:.1} MB) in {:.1} s",
        copies * SEED_ORDERS,
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test]
#[ignore]
async fn measure() {
    let db = file();
    let before = rss_kib();
    let started = Instant::now();
    let sandbox = Sandbox::bind(config(db.clone())).await.unwrap();
    let bind = started.elapsed();
    let after = rss_kib();
    let base = sandbox.base_url().to_owned();
    tokio::spawn(sandbox.serve());
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(db.with_extension("key.json")).unwrap())
            .unwrap();
    let key = Arc::new(PrivateKey::from_pem(saved["pem"].as_str().unwrap()).unwrap());
    let api = client(
        &base,
        key,
        saved["keyId"].as_str().unwrap(),
        saved["storeId"].as_str().unwrap(),
    );
    let charge = saved["charge"].as_str().unwrap();
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        api.get_charge(charge).await.unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "start-up {:.3} s, resident memory {:.1} MB before / {:.1} MB after start-up, Get Charge p50 {:.2} ms",
        bind.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        times[times.len() / 2].as_secs_f64() * 1000.0
    );
}

/// Reads while changes queue for the lock: 64 writers create checkout sessions in a loop on a
/// fresh emulator while one reader times Get Checkout Session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn reads_under_load() {
    let dir = std::env::temp_dir().join(format!("kessai-ws-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("sandbox.sqlite");
    let _ = std::fs::remove_file(&db);
    let sandbox = Sandbox::bind(config(db)).await.unwrap();
    let base = sandbox.base_url().to_owned();
    tokio::spawn(sandbox.serve());
    let http = reqwest::Client::new();
    let key = Arc::new(PrivateKey::generate().unwrap());
    let v: Value = http
        .post(format!("{base}/test_helpers/publicKeys"))
        .json(&json!({"publicKey": key.public_key().to_pem().unwrap()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_id = v["publicKeyId"].as_str().unwrap().to_owned();
    let store_id = v["storeId"].as_str().unwrap().to_owned();
    let api = Arc::new(client(&base, key, &key_id, &store_id));
    let request = CreateCheckoutSessionRequest {
        web_checkout_details: WebCheckoutDetailsRequest {
            checkout_review_return_url: Some("https://m.example/review".into()),
            ..Default::default()
        },
        store_id: store_id.clone(),
        ..Default::default()
    };
    let first = api
        .create_checkout_session(&request, "load-first")
        .await
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..64 {
        let (api, request, stop) = (api.clone(), request.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                api.create_checkout_session(&request, &format!("load-{w}-{n}"))
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        api.get_checkout_session(&first.checkout_session_id)
            .await
            .unwrap();
        times.push(t.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut writes = 0;
    for w in writers {
        writes += w.await.unwrap();
    }
    times.sort();
    println!(
        "with 64 writers ({writes} sessions made): Get Checkout Session p50 {:.1} ms, p90 {:.1} ms",
        times[times.len() / 2].as_secs_f64() * 1000.0,
        times[times.len() * 9 / 10].as_secs_f64() * 1000.0,
    );
}
