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
    // A suite that hangs fails with what it printed, instead of holding the whole run; it runs
    // in a process group of its own, so that the browser and server it started go with it.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    // What the suite printed so far, kept as it arrives: a suite killed for hanging shows where.
    let printed = |mut from: Box<dyn std::io::Read + Send>| {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = seen.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                keep.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        (seen, reader)
    };
    let (out_seen, out_reader) = printed(Box::new(out));
    let (err_seen, err_reader) = printed(Box::new(err));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("node can be waited for") {
            break Some(status);
        }
        if started.elapsed() > std::time::Duration::from_secs(300) {
            let _ = Command::new("kill")
                .args(["-9", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // After a kill, a process the suite started may still hold its output open: do not wait
    // for the readers then, show what arrived.
    let Some(status) = status else {
        panic!(
            "compat/{name} did not finish within 300 s (killed). It printed:\n{}\n{}",
            String::from_utf8_lossy(&out_seen.lock().unwrap()),
            String::from_utf8_lossy(&err_seen.lock().unwrap())
        );
    };
    let _ = out_reader.join();
    let _ = err_reader.join();
    let output = std::process::Output {
        status,
        stdout: std::mem::take(&mut *out_seen.lock().unwrap()),
        stderr: std::mem::take(&mut *err_seen.lock().unwrap()),
    };
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
