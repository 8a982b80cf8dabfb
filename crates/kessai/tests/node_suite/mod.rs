//! Runs a `node --test` suite of `compat/` against this build's `kessai` binary.

use std::path::PathBuf;
use std::process::Command;

/// Installs `compat/<name>` with `npm ci` if `marker` (a path under `node_modules`) is missing,
/// runs `node --test` there with `env`, and asserts that nothing failed.
pub fn run(name: &str, marker: &str, env: &[(&str, &str)]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../compat")
        .join(name);
    let npm = Command::new("npm").arg("--version").output();
    assert!(
        npm.is_ok_and(|o| o.status.success()),
        "node and npm are needed for compat/{name} (.ci/run installs them)"
    );
    if !dir.join("node_modules").join(marker).exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm ci failed in compat/{name}");
    }
    let mut command = Command::new("node");
    command
        .arg("--test")
        .current_dir(&dir)
        .env("KESSAI_BIN", env!("CARGO_BIN_EXE_kessai"));
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Vec<&str> = stdout.lines().filter(|l| l.starts_with("# ")).collect();
    println!("{}", summary.join("\n"));
    assert!(
        output.status.success(),
        "compat/{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
}
