//! PostgreSQL restarted (`pg_ctlcluster … restart`) under a running gateway that is capturing
//! orders: requests in that window get a clear retryable answer (`E504`, or `E500` for an operation
//! whose outcome was cut off), never a hang; the gateway serves again by itself; every order is
//! captured exactly once, at the gateway and at Amazon Pay.
//!
//! It restarts the machine's local cluster, so it is ignored in the ordinary run (other tests
//! share that server); `scripts/test` runs it on its own afterwards:
//! `cargo test -p kessai --test postgres_restart -- --ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::pg::Schema;
use common::{ok, TestEnv};
use kessai_amazonpay::AmazonPay;
use kessai_core::{OrderState, Yen};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ORDERS: usize = 12;

/// Restarts the local PostgreSQL cluster (the one `scripts/test` and CI start).
fn restart_cluster() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("a local PostgreSQL cluster (/etc/postgresql)")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("a PostgreSQL version under /etc/postgresql");
    let status = std::process::Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .status()
        .expect("pg_ctlcluster runs");
    assert!(status.success(), "pg_ctlcluster restart: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "restarts the local PostgreSQL cluster; scripts/test runs it alone"]
async fn a_postgres_restart_under_load_gets_retryable_answers_and_moves_money_once() {
    let schema = Schema::create().await;
    let env = Arc::new(TestEnv::start_on_database("pg-restart", &schema.database_url()).await);
    for i in 0..ORDERS {
        let landed = env
            .buy(&format!("restart-{i}"), 3000, false, "visa-1111")
            .await;
        assert!(landed.as_str().contains("mstatus=success"), "{landed}");
    }

    // Captures in a loop, each retried while the answer says "retry", with the restart in the
    // middle of them.
    let mut workers = Vec::new();
    for i in 0..ORDERS {
        let env = env.clone();
        workers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150 * i as u64)).await;
            let started = Instant::now();
            let mut codes = Vec::new();
            loop {
                let params = json!({"orderId": format!("restart-{i}"), "amount": "3000"});
                let r =
                    tokio::time::timeout(Duration::from_secs(40), env.try_mdk("Capture", params))
                        .await
                        .expect(
                            "every request is answered within the timeouts, never left hanging",
                        );
                match r {
                    Ok(r) if r["mstatus"] == "success" => return codes,
                    Ok(r) => {
                        let code = r["vResultCode"].as_str().unwrap().to_owned();
                        assert!(
                            code.starts_with("E504") || code.starts_with("E500"),
                            "restart-{i}: only retryable answers while the database is away: {r:?}"
                        );
                        codes.push(code[..4].to_owned());
                    }
                    Err(e) => panic!("restart-{i}: the gateway must answer: {e}"),
                }
                assert!(
                    started.elapsed() < Duration::from_secs(90),
                    "restart-{i}: not captured after 90 s: {codes:?}"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    tokio::task::spawn_blocking(restart_cluster).await.unwrap();
    let mut retried = Vec::new();
    for w in workers {
        retried.extend(w.await.unwrap());
    }

    let health = env
        .http
        .get(format!("{}/health", env.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let amazon = env.amazon().await;
    for i in 0..ORDERS {
        let o = env.order(&format!("restart-{i}")).await.unwrap();
        assert_eq!(
            (o.order.state, o.order.captured),
            (OrderState::Captured, Yen::new(3000)),
            "restart-{i}"
        );
        assert!(o.order.invariants_hold());
        let charge = amazon
            .get_charge(o.charge_id.as_deref().unwrap())
            .await
            .unwrap();
        assert_eq!(
            charge.capture_amount.map(|p| p.amount).as_deref(),
            Some("3000"),
            "restart-{i}: captured once at Amazon Pay"
        );
    }
    // After the restart the gateway still works end to end.
    let landed = env.buy("restart-after", 1000, false, "visa-1111").await;
    assert!(landed.as_str().contains("mstatus=success"), "{landed}");
    ok(&env
        .mdk(
            "Capture",
            json!({"orderId": "restart-after", "amount": "1000"}),
        )
        .await);
    println!(
        "{ORDERS} Captures across a PostgreSQL restart: {} retryable answers ({:?}), every order captured once",
        retried.len(),
        retried
    );
}
