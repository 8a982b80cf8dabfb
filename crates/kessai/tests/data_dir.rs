//! Items 4 and 5 of the safe defaults: secrets at rest and on stdout, and one process per data
//! directory. The binary itself is started where stdout and stderr are what is checked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::zombie_processes
)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const CCID: &str = "A10000000000000abcdef0123";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A path in a fresh temporary directory that does not exist yet.
fn new_dir(name: &str) -> PathBuf {
    common::fresh_dir(name).join("data")
}

/// `kessai serve` on port 0; returns the process and its stdout up to the "Data" line.
fn serve(data_dir: &Path, env: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kessai"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--sandbox-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("KESSAI_DEMO_CCID")
        .env_remove("KESSAI_DEMO_SECRET")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap() == 0 {
            let err = stop(child);
            panic!("kessai serve ended: {out}\n{err}");
        }
        out.push_str(&line);
        if line.starts_with("Data") {
            return (child, out);
        }
    }
}

fn stop(mut child: Child) -> String {
    child.kill().unwrap();
    child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

#[test]
fn secrets_are_owner_only_and_a_given_secret_is_not_printed() {
    let dir = new_dir("modes");
    let (child, out) = serve(
        &dir,
        &[("KESSAI_DEMO_CCID", CCID), ("KESSAI_DEMO_SECRET", SECRET)],
    );
    assert!(
        !out.contains(SECRET),
        "the secret given by environment is printed:\n{out}"
    );
    assert!(out.contains(CCID), "{out}");
    assert_eq!(mode(&dir), 0o700, "the data directory");
    for file in [
        "gateway.sqlite",
        "sandbox.sqlite",
        "amazon-pay-private-key.pem",
        "gateway.lock",
    ] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    for wal in ["gateway.sqlite-wal", "sandbox.sqlite-wal"] {
        if dir.join(wal).exists() {
            assert_eq!(mode(&dir.join(wal)), 0o600, "{wal}");
        }
    }
    let err = stop(child);
    assert!(!err.contains("readable by others"), "{err}");

    // A secret Kessai made itself is printed, so that the demo merchant can be used.
    let dir = new_dir("generated");
    let (child, out) = serve(&dir, &[]);
    let secret = out
        .split("secretKey=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert_eq!(secret.len(), 32, "{out}");
    stop(child);
}

#[test]
fn a_data_directory_open_to_others_is_reported() {
    let dir = new_dir("wide");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("gateway.sqlite"), b"").unwrap();
    std::fs::set_permissions(
        dir.join("gateway.sqlite"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (child, _) = serve(&dir, &[]);
    std::thread::sleep(Duration::from_millis(200));
    let err = stop(child);
    for name in [dir.display().to_string(), "gateway.sqlite".to_owned()] {
        assert!(
            err.lines()
                .any(|l| l.contains("readable by others") && l.contains(&name)),
            "no warning about {name}:\n{err}"
        );
    }
}

#[test]
fn a_second_process_on_the_same_data_directory_is_refused() {
    let dir = new_dir("lock");
    let (first, _) = serve(&dir, &[]);
    let first_pid = first.id();
    let second = Command::new(env!("CARGO_BIN_EXE_kessai"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--sandbox-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!second.status.success(), "the second start is refused");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains(&format!("pid {first_pid}")) && err.contains("kessai serve"),
        "the message names the other process: {err}"
    );
    assert!(second.stdout.is_empty(), "the second one served nothing");
    // `kessai sandbox` on the built-in emulator's file is refused too.
    let sandbox = Command::new(env!("CARGO_BIN_EXE_kessai"))
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!sandbox.status.success());
    assert!(String::from_utf8_lossy(&sandbox.stderr).contains(&format!("pid {first_pid}")));
    // When the first one stops, the directory is free again.
    stop(first);
    let (again, _) = serve(&dir, &[]);
    stop(again);
}

/// In one process too (tests, embedders): the second start on a directory fails while the first
/// runs, and succeeds once it is gone.
#[tokio::test]
async fn a_second_start_in_the_same_process_is_refused() {
    let env = common::TestEnv::start("lock-lib").await;
    let options = kessai::ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        data_dir: env.data_dir.clone(),
        database_url: None,
        sandbox_listen: "127.0.0.1:0".parse().unwrap(),
        amazon_pay_endpoint: None,
        amazon_pay_public_key_id: None,
        amazon_pay_store_id: None,
        amazon_pay_private_key: None,
        amazon_pay_region: "jp".into(),
        amazon_pay_merchant_id: None,
        amazon_pay_sandbox: false,
        amazon_pay_public_key: None,
        amazon_pay_ca_file: None,
        sandbox_public_url: None,
        demo_ccid: None,
        demo_secret: None,
        demo_shop: false,
        allow_private_push_targets: false,
        push_lease: std::time::Duration::from_secs(30),
        gateway_tls: kessai::GatewayTls::LocalCa,
        test_helpers: None,
        limits: kessai_sandbox::Limits::default(),
    };
    let err = kessai::start(options).await.err().expect("refused");
    assert!(
        err.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
}
