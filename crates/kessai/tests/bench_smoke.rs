//! `kessai bench --quick` as CI runs it: the built binary, a few one-time and recurring flows and
//! Searches, a JSON report. It asserts that the flows and Searches complete without errors and
//! that the report has its keys, never a speed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};

fn step_names(steps: &Value) -> Vec<&str> {
    steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect()
}

#[test]
fn quick_bench_completes_flows_and_writes_its_report() {
    let dir = std::env::temp_dir().join(format!(
        "kessai-test-bench-{}-{}",
        std::process::id(),
        kessai::random_hex(4)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let json_path = dir.join("report.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kessai"))
        .args(["bench", "--quick", "--json"])
        .arg(&json_path)
        .env("TMPDIR", &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kessai bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("One-time flows"), "{stdout}");
    assert!(stdout.contains("Recurring flows"), "{stdout}");
    assert!(stdout.contains("Searches"), "{stdout}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    for key in ["rsa_sign_per_s", "rsa_verify_per_s", "sqlite_commits_per_s"] {
        assert!(
            report["bounds"].get(key).is_some(),
            "bounds.{key}: {report}"
        );
    }
    for (part, last) in [("flows", "Refund"), ("recurring_flows", "Terminate")] {
        let flows = &report[part];
        assert!(flows["completed"].as_u64().unwrap() > 0, "{part}: {report}");
        assert_eq!(flows["failed"], 0, "{part}: {report}");
        assert_eq!(flows["errors"], json!({}), "{part}: {report}");
        for key in [
            "flows_per_s",
            "cpu_ms_per_flow",
            "signed_calls_per_flow",
            "rsa_bound_flows_per_s",
            "gateway_commits_per_flow",
            "fraction_of_commit_bound",
            "fraction_of_rsa_bound",
            "steps",
        ] {
            assert!(flows.get(key).is_some(), "{part}.{key}: {report}");
        }
        let steps = step_names(&flows["steps"]);
        assert!(
            steps.contains(&"Authorize") && steps.contains(&last),
            "{part}: {steps:?}"
        );
    }
    assert!(
        step_names(&report["recurring_flows"]["steps"]).contains(&"ReAuthorize"),
        "{report}"
    );
    let searches = &report["searches"];
    assert!(searches["count"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(searches["errors"], json!({}), "{report}");
    assert_eq!(
        step_names(&searches["steps"]),
        ["Search: id", "Search: id prefix*", "Search: state"],
        "{report}"
    );
    for key in ["count", "per_s", "answers", "latency"] {
        assert!(
            report["refusals"].get(key).is_some(),
            "refusals.{key}: {report}"
        );
    }
    assert_eq!(
        report["refusals"]["answers"]["E306"],
        report["refusals"]["count"]
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs `kessai bench` with `args` and `--json`, in a temporary directory of its own; its stdout
/// and its JSON report (the test fails if the bench does).
fn bench(name: &str, args: &[&str]) -> (String, Value) {
    let dir = std::env::temp_dir().join(format!(
        "kessai-test-bench-{name}-{}-{}",
        std::process::id(),
        kessai::random_hex(4)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let json_path = dir.join("report.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kessai"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .arg(&json_path)
        .env("TMPDIR", &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kessai bench {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    (stdout, report)
}

fn assert_flows_completed(flows: &Value, report: &Value) {
    assert!(flows["completed"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(flows["failed"], 0, "{report}");
    assert_eq!(flows["errors"], json!({}), "{report}");
}

/// `kessai bench --quick --null-amazon`: the flows complete against the null Amazon, the output
/// says that Amazon is null, and the report has the gateway's overhead per command and its CPU.
#[test]
fn quick_bench_against_the_null_amazon_completes_flows() {
    let (stdout, report) = bench("null", &["--quick", "--null-amazon"]);
    assert!(stdout.contains("Amazon: NULL"), "{stdout}");
    assert_eq!(report["amazon"], "null", "{report}");
    for (part, last) in [("flows", "Refund"), ("recurring_flows", "Terminate")] {
        let flows = &report[part];
        assert_flows_completed(flows, &report);
        assert_eq!(flows["amazon"], "null", "{report}");
        let commands: Vec<&str> = flows["gateway_overhead_ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["command"].as_str().unwrap())
            .collect();
        assert!(
            commands.contains(&"Authorize") && commands.contains(&last),
            "{part}: {commands:?}"
        );
        assert!(
            !commands.iter().any(|c| c.starts_with("buyer")),
            "{commands:?}"
        );
        for key in [
            "gateway_runtime",
            "emulator",
            "sqlite_threads",
            "load_generator",
        ] {
            assert!(
                flows["cpu_ms_per_flow_by_part"].get(key).is_some(),
                "{part}.cpu_ms_per_flow_by_part.{key}: {report}"
            );
        }
        assert!(flows.get("gateway_cpu_ms_per_flow").is_some(), "{report}");
    }
    assert_eq!(report["searches"]["errors"], json!({}), "{report}");
}

/// `kessai bench --quick --rate 200 --flow-rate 20 --pin-load 0`: the flows start open loop at
/// 20/s and the refused commands at 200/s, from a load generator pinned to core 0; the flows
/// complete, the refusals are all answered (refused, E306) and the report says how they were sent
/// and where the load generator ran. No speed is asserted.
#[test]
fn quick_open_loop_bench_with_a_pinned_load_generator_completes() {
    let (stdout, report) = bench(
        "open",
        &[
            "--quick",
            "--flow",
            "one-time",
            "--rate",
            "200",
            "--flow-rate",
            "20",
            "--pin-load",
            "0",
        ],
    );
    assert!(stdout.contains("open loop at 200/s"), "{stdout}");
    assert!(stdout.contains("open loop at 20.0 flows/s"), "{stdout}");
    assert!(stdout.contains("Load generator: pinned"), "{stdout}");
    let flows = &report["flows"];
    assert_flows_completed(flows, &report);
    assert_eq!(flows["mode"], "open", "{report}");
    assert_eq!(flows["flow_rate_per_s"], 20.0, "{report}");
    let whole = flows["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["step"] == "whole flow")
        .unwrap_or_else(|| panic!("no whole-flow step: {report}"));
    assert_eq!(whole["count"], flows["completed"], "{report}");
    let refusals = &report["refusals"];
    assert_eq!(refusals["mode"], "open", "{report}");
    assert_eq!(refusals["rate_per_s"], 200.0, "{report}");
    let count = refusals["count"].as_u64().unwrap();
    assert!(count > 0, "{report}");
    assert_eq!(refusals["answers"], json!({"E306": count}), "{report}");
    assert_eq!(refusals["latency"]["count"], count, "{report}");
    for key in [
        "achieved_start_rate_per_s",
        "late_starts",
        "max_start_lag_ms",
    ] {
        assert!(refusals.get(key).is_some(), "refusals.{key}: {report}");
    }
    let load = &report["load_generator"];
    assert_eq!(load["pinned_cores"], json!([0]), "{report}");
    assert_eq!(load["affinity"], json!([0]), "{report}");
    assert_eq!(report["searches"]["errors"], json!({}), "{report}");
}

/// `kessai bench --quick --growth 1000`: a thousand historical orders are loaded, `kessai serve`
/// starts on them, and the flows and Searches then complete on the same data directory.
#[test]
fn quick_growth_run_loads_orders_starts_serve_and_completes_flows() {
    let (stdout, report) = bench(
        "growth",
        &["--quick", "--flow", "one-time", "--growth", "1000"],
    );
    assert!(stdout.contains("Growth"), "{stdout}");
    let points = report["growth"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{report}");
    let point = &points[0];
    assert_eq!(point["orders"], 1000, "{report}");
    // An Authorize for each order, a Capture for the half captured, a Refund for a quarter.
    assert_eq!(point["history_rows"], 1750, "{report}");
    for key in [
        "first_start_ms",
        "restart_ms",
        "rss_at_rest_kib",
        "load_rows_per_s",
    ] {
        assert!(point[key].as_f64().unwrap() > 0.0, "{key}: {report}");
    }
    assert_flows_completed(&point["flows"], &report);
    assert_eq!(point["searches"]["errors"], json!({}), "{report}");
    assert!(report.get("refusals").is_none(), "{report}");
}

/// `kessai bench --quick --database-url`: the same flows with the gateway on PostgreSQL, in a
/// schema of the bench's own that is gone afterwards; the bound is PostgreSQL's commits.
#[test]
fn quick_bench_on_postgres_completes_flows_and_leaves_no_schema() {
    let server = std::env::var("KESSAI_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let dir = std::env::temp_dir().join(format!(
        "kessai-test-bench-pg-{}-{}",
        std::process::id(),
        kessai::random_hex(4)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let json_path = dir.join("report.json");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_kessai"))
        .args([
            "bench",
            "--quick",
            "--flow",
            "one-time",
            "--database-url",
            &server,
            "--json",
        ])
        .arg(&json_path)
        .env("TMPDIR", &dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kessai bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PostgreSQL commits/s"), "{stdout}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert!(
        report["bounds"]["postgres_commits_per_s"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        report["bounds"].get("sqlite_commits_per_s").is_none(),
        "{report}"
    );
    assert!(
        report["flows"]["completed"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert_eq!(report["flows"]["failed"], 0, "{report}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let left: i64 = rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&server).await.unwrap();
        sqlx::query_scalar(&format!(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'kessai_bench_{pid}_%'"
        ))
        .fetch_one(&mut conn)
        .await
        .unwrap()
    });
    assert_eq!(left, 0, "the bench's schema is dropped");
}
