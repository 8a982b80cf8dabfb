//! Runs the conformance suite of `compat/node`: Amazon's official Node.js SDK, unmodified, against
//! the emulator (`kessai sandbox`, started by the suite itself on port 0).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn official_node_sdk_drives_the_emulator() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/node");
    let npm = Command::new("npm").arg("--version").output();
    assert!(
        npm.is_ok_and(|o| o.status.success()),
        "node and npm are needed for the SDK conformance suite (.ci/run installs them)"
    );
    if !dir
        .join("node_modules/@amazonpay/amazon-pay-api-sdk-nodejs")
        .exists()
    {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "npm ci failed in compat/node");
    }
    let output = Command::new("node")
        .arg("--test")
        .current_dir(&dir)
        .env("KESSAI_BIN", env!("CARGO_BIN_EXE_kessai"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Vec<&str> = stdout.lines().filter(|l| l.starts_with("# ")).collect();
    println!("{}", summary.join("\n"));
    assert!(
        output.status.success(),
        "the Node SDK suite failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
}
