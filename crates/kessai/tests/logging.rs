//! Every MDK command leaves one line at `info`: request id, merchant, order, command, result code,
//! duration. Never the secret key, the authHash or the buyer's data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestEnv;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_command_logs_its_outcome_and_no_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let env = TestEnv::start("logging").await;
    env.buy("log-1", 2500, false, "visa-1111").await;
    let r = env
        .mdk(
            "GetAddress",
            json!({"orderId": "log-1", "addInfoRespFlag": "1"}),
        )
        .await;
    assert_eq!(r["mstatus"], "success");
    let buyer_email = r["buyerEmail"].as_str().unwrap().to_owned();
    let postal = r["shippingPostalCode"].as_str().unwrap().to_owned();
    let refused = env
        .mdk("Refund", json!({"orderId": "log-1", "amount": "100"}))
        .await;
    let marchtxn = refused["marchTxn"].as_str().unwrap().to_owned();

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("mdk command")).collect();
    assert_eq!(lines.len(), 3, "one line per command:\n{text}");
    let refusal = lines
        .iter()
        .find(|l| l.contains("command=Refund"))
        .expect("the refused Refund is logged");
    assert!(refusal.contains(" INFO "), "{refusal}");
    assert!(refusal.contains("code=E304F00100000000"), "{refusal}");
    assert!(refusal.contains("order=log-1"), "{refusal}");
    assert!(
        refusal.contains(&format!("merchant={}", env.ccid)),
        "{refusal}"
    );
    assert!(
        refusal.contains(&format!("request_id={marchtxn}")),
        "{refusal}"
    );
    assert!(refusal.contains("duration_ms="), "{refusal}");
    for secret in [env.secret.as_str(), buyer_email.as_str(), postal.as_str()] {
        assert!(
            !text.contains(secret),
            "the log holds something it must not ({secret})"
        );
    }
    assert!(!text.contains("authHash"), "no authHash in the log");
}
