//! Item 1 of the safe defaults, through the binary: bound beyond loopback, the emulator's test
//! helpers are behind a token by default, and `kessai serve` registers its own key with it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::zombie_processes
)]

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};

/// Starts the binary and reads stdout until a line starting with `last`.
fn run(args: &[&str], last: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kessai"))
        .args(args)
        .env_remove("KESSAI_TEST_HELPERS")
        .env_remove("KESSAI_TEST_HELPERS_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap() == 0 {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("kessai ended early: {out}");
        }
        out.push_str(&line);
        if line.trim_start().starts_with(last) {
            return (child, out);
        }
    }
}

fn port_after(out: &str, prefix: &str) -> u16 {
    let line = out.lines().find(|l| l.starts_with(prefix)).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap();
    url::Url::parse(url).unwrap().port().unwrap()
}

async fn advance(port: u16, token: Option<&str>) -> u16 {
    let mut req = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/test_helpers/clock/advance"
        ))
        .json(&serde_json::json!({"seconds": 31 * 24 * 3600}));
    if let Some(t) = token {
        req = req.header("x-test-helpers-token", t);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn kessai_sandbox_beyond_loopback_keeps_its_helpers_behind_a_token() {
    let dir = common::fresh_dir("sandbox-token");
    let (mut child, out) = run(
        &[
            "sandbox",
            "--listen",
            "0.0.0.0:0",
            "--data-dir",
            dir.to_str().unwrap(),
        ],
        "data:",
    );
    assert!(out.contains("test helpers: token"), "{out}");
    let port = port_after(&out, "kessai sandbox listening on");
    let token_file = dir.join("test-helpers-token");
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(!out.contains(token.trim()), "the token is not printed");
    assert_eq!(advance(port, None).await, 401);
    assert_eq!(advance(port, Some("guess")).await, 401);
    assert_eq!(advance(port, Some(token.trim())).await, 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn kessai_serve_beyond_loopback_registers_its_key_with_its_own_token() {
    let dir = common::fresh_dir("serve-token");
    let (mut child, out) = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--sandbox-listen",
            "0.0.0.0:0",
            "--data-dir",
            dir.join("data").to_str().unwrap(),
        ],
        "Data",
    );
    // It started, so its key was registered; nobody else may use the helpers.
    let port = port_after(&out, "Amazon Pay");
    assert_eq!(advance(port, None).await, 401);
    let gateway = port_after(&out, "Kessai gateway");
    let shop = reqwest::get(format!("http://127.0.0.1:{gateway}/"))
        .await
        .unwrap();
    assert_eq!(shop.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
}
