//! Runs the browser suite of `compat/browser`: a real Chromium (Debian's `chromium`, driven by
//! playwright-core) walks the demo shop of `kessai serve`, Kessai's buyer pages and the built-in
//! Amazon Pay emulator's buyer pages. The suite starts the server itself on port 0. Screenshots
//! of the final pages are kept in `target/browser-screenshots`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod node_suite;

use std::path::Path;

#[test]
fn demo_shop_in_a_real_browser() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).exists(),
        "the browser suite needs Chromium at {chromium} (set CHROMIUM to use another path): \
         apt-get install -y chromium fonts-noto-cjk (.ci/run installs them)"
    );
    // The final page of every pattern is kept as a test artifact (target/browser-screenshots),
    // unless KESSAI_SCREENSHOTS names another directory.
    let shots = std::env::var("KESSAI_SCREENSHOTS").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/browser-screenshots")
            .display()
            .to_string()
    });
    node_suite::run(
        "browser",
        "playwright-core",
        &[("CHROMIUM", &chromium), ("KESSAI_SCREENSHOTS", &shots)],
    );
}
