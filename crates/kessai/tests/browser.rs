//! Runs the browser suite of `compat/browser`: a real Chromium (Debian's `chromium`, driven by
//! playwright-core) walks the demo shop of `kessai serve`, Kessai's buyer pages and the built-in
//! Amazon Pay emulator's buyer pages. The suite starts the server itself on port 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn demo_shop_in_a_real_browser() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/browser");
    let npm = Command::new("npm").arg("--version").output();
    assert!(
        npm.is_ok_and(|o| o.status.success()),
        "node and npm are needed for the browser suite (.ci/run installs them)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).exists(),
        "the browser suite needs Chromium at {chromium} (set CHROMIUM to use another path): \
         apt-get install -y chromium fonts-noto-cjk (.ci/run installs them)"
    );
    if !dir.join("node_modules/playwright-core").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "npm ci failed in compat/browser");
    }
    let output = Command::new("node")
        .arg("--test")
        .current_dir(&dir)
        .env("KESSAI_BIN", env!("CARGO_BIN_EXE_kessai"))
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Vec<&str> = stdout.lines().filter(|l| l.starts_with("# ")).collect();
    println!("{}", summary.join("\n"));
    assert!(
        output.status.success(),
        "the browser suite failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
}
