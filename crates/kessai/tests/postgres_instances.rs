//! Three gateway processes (`kessai serve --database-url`) on one PostgreSQL schema, in front of
//! one emulator process, as behind a load balancer: each order is authorized and paid through one
//! instance, captured through the other two at the same moment, and refunded through two at the
//! same moment. Midway the third instance is killed with SIGKILL while it has commands in flight;
//! the client sends what it could not finish to another instance, as a load balancer would.
//!
//! Afterwards: no operation is left pending (the living instances finished the dead one's work),
//! every order satisfies its invariants and is captured once, its refunds are those that answered
//! success (two identical Refunds at once may be one refund answered twice, never one refund
//! too many), and Amazon Pay (the emulator, asked through its API) holds the same captured and
//! refunded amounts: nothing was done twice or lost. `KESSAI_INSTANCES_FLOWS` sets the number of orders (default 24).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::pg::Schema;
use common::procs::{sandbox, spawn, Proc};
use common::{fresh_dir, walk_buyer, TestEnv};
use kessai_amazonpay::AmazonPay;
use kessai_core::{MerchantCcid, OrderId, OrderState, Yen};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const CCID: &str = "A100000000000000000beef5";
const SECRET: &str = "00112233445566778899aabbccddeeff";
const AMOUNT: u64 = 5000;
const REFUND: u64 = 1000;

async fn gateway(dir: &Path, database_url: &str, emulator: &str) -> Proc {
    spawn(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
            "--database-url",
            database_url,
            "--amazon-pay-endpoint",
            emulator,
            "--no-demo-shop",
        ],
        &[
            ("KESSAI_DEMO_CCID", CCID),
            ("KESSAI_DEMO_SECRET", SECRET),
            ("KESSAI_PUSH_LEASE_SECS", "1"),
        ],
        "Kessai gateway",
    )
    .await
}

/// One instance as the client sees it.
fn env_for(url: &str, emulator: &str, store: Arc<dyn kessai_store::Store>) -> TestEnv {
    TestEnv {
        gateway: url.trim_end_matches('/').to_owned(),
        emulator: emulator.to_owned(),
        ccid: CCID.into(),
        secret: SECRET.into(),
        store,
        data_dir: fresh_dir("pg-instances-client"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        schema: None,
    }
}

/// An MDK command that may find its instance gone: `None` when the connection failed.
async fn try_mdk(env: &TestEnv, command: &str, params: Value) -> Option<Map<String, Value>> {
    let body = env.mdk_body(params, true);
    let resp = env
        .http
        .post(format!(
            "{}/test-paynow/v2/{command}/amazonpay",
            env.gateway
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .ok()?;
    let v: Value = resp.json().await.ok()?;
    v["result"].as_object().cloned()
}

/// The client: sends a command to `first`, and if that instance is gone, to the next living one,
/// as a load balancer does.
struct Client {
    envs: Vec<TestEnv>,
    dead: Vec<AtomicBool>,
}

impl Client {
    async fn send(&self, first: usize, command: &str, params: Value) -> Map<String, Value> {
        for step in 0..self.envs.len() * 2 {
            let i = (first + step) % self.envs.len();
            if self.dead[i].load(Ordering::SeqCst) {
                continue;
            }
            if let Some(r) = try_mdk(&self.envs[i], command, params.clone()).await {
                // A concurrent command or an unknown outcome is retried, as a merchant does.
                let code = r["vResultCode"].as_str().unwrap_or_default();
                if code.starts_with("E500") || code.starts_with("E504") {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue;
                }
                return r;
            }
        }
        panic!("no instance answered {command} {params}");
    }
}

fn success(r: &Map<String, Value>) -> bool {
    r["mstatus"] == "success"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_share_the_work_and_survive_one_killed() {
    let flows: usize = std::env::var("KESSAI_INSTANCES_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let schema = Schema::create().await;
    let url = schema.database_url();
    let emulator_dir = fresh_dir("pg-instances-amazon");
    let emulator = sandbox(&emulator_dir).await;
    let emulator_url = emulator.url.trim_end_matches('/').to_owned();
    let mut procs = Vec::new();
    for i in 0..3 {
        let dir = fresh_dir(&format!("pg-instances-{i}"));
        procs.push(gateway(&dir, &url, &emulator_url).await);
    }
    let store: Arc<dyn kessai_store::Store> =
        Arc::new(kessai_store::PgStore::open(&url).await.unwrap());
    let client = Arc::new(Client {
        envs: procs
            .iter()
            .map(|p| env_for(&p.url, &emulator_url, store.clone()))
            .collect(),
        dead: (0..3).map(|_| AtomicBool::new(false)).collect(),
    });

    // Orders run 6 at a time; when half are done, instance 2 is killed under load.
    let done = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..6 {
        let (client, done, next) = (client.clone(), done.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut refunds = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= flows {
                    return refunds;
                }
                let order_id = format!("multi-{i}");
                // Authorized and paid through instance 0 or 1 (the buyer's pages are the
                // instance's own); the commands then go to the others.
                let home = i % 2;
                let env = &client.envs[home];
                let r = client
                    .send(
                        home,
                        "Authorize",
                        env.authorize_params(&order_id, AMOUNT, false),
                    )
                    .await;
                assert!(success(&r), "{order_id}: {r:?}");
                let landed = walk_buyer(env, &r, "visa-1111").await;
                assert!(
                    landed.as_str().contains("mstatus=success"),
                    "{order_id}: {landed}"
                );
                let capture = json!({"orderId": order_id, "amount": AMOUNT.to_string()});
                let (c1, c2) = tokio::join!(
                    client.send(home + 1, "Capture", capture.clone()),
                    client.send(home + 2, "Capture", capture.clone()),
                );
                // The second of two identical Captures is the same command sent again: it is
                // refused (already captured) or answered with the first one's result.
                assert!(
                    success(&c1) || success(&c2),
                    "{order_id}: a Capture succeeds: {c1:?} {c2:?}"
                );
                let refund = json!({"orderId": order_id, "amount": REFUND.to_string()});
                let (r1, r2) = tokio::join!(
                    client.send(2, "Refund", refund.clone()),
                    client.send(home + 1, "Refund", refund.clone()),
                );
                let refunded = [&r1, &r2].iter().filter(|r| success(r)).count() as u64;
                refunds.push((order_id, refunded));
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    while done.load(Ordering::SeqCst) < flows / 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.dead[2].store(true, Ordering::SeqCst);
    let mut victim = procs.remove(2);
    victim.child.start_kill().unwrap(); // SIGKILL
    victim.child.wait().await.unwrap();
    let mut refunds = Vec::new();
    for w in workers {
        refunds.extend(w.await.unwrap());
    }
    assert_eq!(refunds.len(), flows);

    // The dead instance's pending work is finished by the living ones.
    let mut pending = usize::MAX;
    for _ in 0..240 {
        pending = store.pending_operations(1000).await.unwrap().len();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(pending, 0, "operations left pending after the kill");

    // Amazon Pay as the gateway's merchant sees it, once its refunds have settled (so a refund
    // the gateway does not know of would show in the charge's refundedAmount).
    let advanced = reqwest::Client::new()
        .post(format!("{emulator_url}/test_helpers/clock/advance"))
        .json(&json!({"seconds": 120}))
        .send()
        .await
        .unwrap();
    assert_eq!(advanced.status(), 200);
    let pem = store
        .setting("amazon_pay_private_key")
        .await
        .unwrap()
        .expect("the key is in the database");
    let key = kessai_amazonpay::PrivateKey::from_pem(&pem).unwrap();
    let endpoint = url::Url::parse(&emulator_url).unwrap();
    let reg = kessai::registration(&endpoint, &key, None).await.unwrap();
    let amazon = kessai_amazonpay::AmazonPayClient::new(
        kessai_amazonpay::ClientConfig {
            endpoint,
            public_key_id: reg.public_key_id,
            region: "jp".into(),
            store_id: reg.store_id,
            timeout: Duration::from_secs(30),
        },
        Arc::new(key),
    )
    .unwrap();
    let ccid = MerchantCcid::parse(CCID).unwrap();
    let minor = |p: &Option<kessai_amazonpay::wire::Price>| -> u64 {
        p.as_ref()
            .map(|p| p.amount.parse::<f64>().unwrap() as u64)
            .unwrap_or(0)
    };
    let (mut refunds_ok, mut refunds_total) = (0u64, 0u64);
    for (order_id, refunded) in &refunds {
        let o = store
            .order(&ccid, &OrderId::parse(order_id).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(o.order.invariants_hold(), "{order_id}: {:?}", o.order);
        assert!(o.in_flight.is_none(), "{order_id}");
        assert_eq!(o.order.captured, Yen::new(AMOUNT), "{order_id}");
        // Two identical Refunds at once: the second is another refund if it came after the
        // first was done, or the same command sent again while it was in flight.
        let rows = store.refunds(&ccid, &o.order_id).await.unwrap().len() as u64;
        assert!(*refunded >= 1, "{order_id}: a Refund succeeds");
        assert!(
            (1..=*refunded).contains(&rows),
            "{order_id}: {rows} refunds"
        );
        assert_eq!(o.order.refunded, Yen::new(REFUND * rows), "{order_id}");
        assert!(matches!(
            o.order.state,
            OrderState::PartiallyRefunded | OrderState::Captured
        ));
        let charge = amazon
            .get_charge(o.charge_id.as_deref().unwrap())
            .await
            .unwrap();
        assert_eq!(
            minor(&charge.capture_amount),
            AMOUNT,
            "{order_id} at Amazon"
        );
        assert_eq!(
            minor(&charge.refunded_amount),
            REFUND * rows,
            "{order_id}: refunded at Amazon as at the gateway"
        );
        refunds_ok += rows;
        refunds_total += refunded;
    }
    println!(
        "{flows} orders over 3 instances (one killed after {}): {flows} captures, {refunds_ok} refunds made for {refunds_total} success answers; Amazon Pay agrees on every amount",
        flows / 2
    );
    drop(emulator);
}
