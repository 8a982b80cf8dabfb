//! Runs the conformance suite of `compat/python`: Amazon's official Python SDK (`amazon-pay`
//! 2.7.1, unmodified) drives the emulator's MWS face (Auto Pay billing agreements) over HTTP.
//!
//! The SDK is installed with pip into a virtual environment under the target directory, made once
//! per content of `requirements.txt`. The emulator runs in this process on port 0 with a fresh
//! SQLite file for each test module; the module (`python -m unittest -v test_…`) gets its address
//! in `KESSAI_EMULATOR_URL`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kessai_sandbox::{Sandbox, SandboxConfig};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one module may run before it is killed (each takes a few seconds).
const SUITE_LIMIT: Duration = Duration::from_secs(90);

#[test]
fn official_python_sdk_drives_the_mws_face() {
    let suite = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/python");
    let python = virtual_env(&suite);
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // Each module gets an emulator of its own, as the tests move its clock by up to a month.
    // KESSAI_PYTHON_TESTS narrows the run to some modules, classes or tests (unittest names,
    // space-separated, e.g. "test_errors test_ipn.Notifications"), run on one emulator.
    let chosen = std::env::var("KESSAI_PYTHON_TESTS").unwrap_or_default();
    let runs: Vec<Vec<String>> = if chosen.trim().is_empty() {
        let mut modules: Vec<String> = std::fs::read_dir(&suite)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("test_") && n.ends_with(".py"))
            .map(|n| n.trim_end_matches(".py").to_owned())
            .collect();
        modules.sort();
        modules.into_iter().map(|m| vec![m]).collect()
    } else {
        vec![chosen.split_whitespace().map(str::to_owned).collect()]
    };
    assert!(!runs.is_empty(), "no test module in compat/python");

    let mut failures = Vec::new();
    for names in &runs {
        let dir = std::env::temp_dir().join(format!(
            "kessai-python-suite-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (base, server) = runtime.block_on(async {
            let sandbox = Sandbox::bind(SandboxConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                database: dir.join("sandbox.sqlite"),
                public_url: None,
                tls: kessai_sandbox::TlsSetting::Off,
                test_helpers: None,
                limits: kessai_sandbox::Limits::default(),
            })
            .await
            .unwrap();
            let base = format!("http://{}", sandbox.local_addr());
            (base, tokio::spawn(sandbox.serve()))
        });
        let output = run_suite(&python, &suite, &base, names);
        server.abort();
        let _ = std::fs::remove_dir_all(&dir);

        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        // unittest reports on stderr: one line per test (-v), then "Ran N tests" and "OK" or
        // "FAILED (…)".
        let summary: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("Ran ") || l.starts_with("OK") || l.starts_with("FAILED"))
            .collect();
        println!("compat/python {}: {}", names.join(" "), summary.join(" "));
        let ran = summary
            .iter()
            .any(|l| l.starts_with("Ran ") && !l.starts_with("Ran 0 "));
        if !output.status.success() || !ran || stderr.contains("skipped") {
            failures.push(format!(
                "compat/python {} failed (or ran no test, or skipped one):\n{}\n{stderr}",
                names.join(" "),
                String::from_utf8_lossy(&output.stdout)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The virtual environment's python, made (once per content of `requirements.txt`) under the
/// target directory with `python3 -m venv` and `pip install -r requirements.txt`.
fn virtual_env(suite: &Path) -> PathBuf {
    let requirements = std::fs::read(suite.join("requirements.txt")).unwrap();
    let key = hex::encode(&Sha256::digest(&requirements)[..8]);
    let root = target_dir().join("compat-python");
    let venv = root.join(format!("venv-{key}"));
    let python = venv.join("bin").join("python");
    if venv.join("installed").exists() {
        // A Python upgraded under an existing environment leaves it unusable: make it again.
        let usable = Command::new(&python)
            .args(["-c", "import amazon_pay.client, OpenSSL.crypto"])
            .output()
            .is_ok_and(|o| o.status.success());
        if usable {
            return python;
        }
        let _ = std::fs::remove_dir_all(&venv);
    }
    std::fs::create_dir_all(&root).unwrap();
    // Built beside its final place and renamed when complete, so that an interrupted install is
    // never taken for a finished one.
    let building = root.join(format!("building-{key}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&building)
        .output();
    let made = made.unwrap_or_else(|e| {
        panic!("python3 is needed for compat/python (scripts/test installs it): {e}")
    });
    assert!(
        made.status.success(),
        "python3 -m venv failed (Debian: apt-get install python3-venv; scripts/test does):\n{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let pip = Command::new(building.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "-q",
            "-r",
        ])
        .arg(suite.join("requirements.txt"))
        .output()
        .unwrap();
    assert!(
        pip.status.success(),
        "pip install -r compat/python/requirements.txt failed:\n{}\n{}",
        String::from_utf8_lossy(&pip.stdout),
        String::from_utf8_lossy(&pip.stderr)
    );
    std::fs::write(building.join("installed"), &requirements).unwrap();
    if std::fs::rename(&building, &venv).is_err() {
        // Another run finished first: use its environment.
        let _ = std::fs::remove_dir_all(&building);
        assert!(venv.join("installed").exists(), "no virtual environment");
    }
    python
}

/// `target/` of this build: the test binary runs from `target/<profile>/deps/`.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .expect("the test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// Runs `python -m unittest -v <names>` in `compat/python` in a process group of its own, killed
/// whole after `SUITE_LIMIT`, and returns what it printed.
fn run_suite(python: &Path, suite: &Path, base: &str, names: &[String]) -> std::process::Output {
    let mut command = Command::new(python);
    command.args(["-m", "unittest", "-v"]).args(names);
    command
        .current_dir(suite)
        .env("KESSAI_EMULATOR_URL", base)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        // The suite talks only to loopback: never through a proxy from the environment.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .expect("the virtual environment's python runs");
    let out = keep(Box::new(child.stdout.take().unwrap()));
    let err = keep(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > SUITE_LIMIT {
            let _ = Command::new("kill")
                .args(["-9", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            // Show what arrived; a process of the group may still hold the pipes open, so the
            // readers are not waited for.
            panic!(
                "compat/python did not finish within {} s (killed). It printed:\n{}\n{}",
                SUITE_LIMIT.as_secs(),
                String::from_utf8_lossy(&out.0.lock().unwrap()),
                String::from_utf8_lossy(&err.0.lock().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = out.1.join();
    let _ = err.1.join();
    let stdout = std::mem::take(&mut *out.0.lock().unwrap());
    let stderr = std::mem::take(&mut *err.0.lock().unwrap());
    std::process::Output {
        status,
        stdout,
        stderr,
    }
}

type Kept = (Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>);

/// Reads a pipe to its end on a thread of its own, keeping what arrives as it arrives.
fn keep(mut from: Box<dyn Read + Send>) -> Kept {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    (seen, reader)
}
