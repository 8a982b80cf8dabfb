//! Search latency over the orders the flows made: signed Searches on the test endpoint by exact
//! order id, by an id prefix with `*`, and by order state, sent `concurrency` at a time.

use super::flows::{FlowKind, Recorder, StepStats, Target};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TEST_SEARCH: &str = "/test-paynow-search/v2/Search/search";

/// The kinds of Search timed, in the order they are reported.
pub const SEARCH_STEPS: [&str; 3] = ["Search: id", "Search: id prefix*", "Search: state"];

/// Orders one flow kind made: `{prefix}0` to `{prefix}{count - 1}` (and the recurring flows'
/// second orders, `{prefix}{n}-1`).
#[derive(Debug, Clone, Copy)]
pub struct Made {
    pub kind: FlowKind,
    pub count: u64,
}

pub struct SearchRun {
    pub count: u64,
    pub wall: Duration,
    pub errors: BTreeMap<String, u64>,
    pub steps: Vec<StepStats>,
}

/// The `n`-th Search: its step name, its `common` filters, and the fewest orders it must find.
fn nth(n: u64, made: &[Made]) -> (&'static str, Value, u64) {
    let Some(m) = made.get((n / 3) as usize % made.len().max(1)) else {
        return (SEARCH_STEPS[0], json!({"orderId": "none"}), 0);
    };
    let prefix = m.kind.order_prefix();
    match n % 3 {
        0 => {
            let i = (n / 3).wrapping_mul(7919) % m.count.max(1);
            (
                SEARCH_STEPS[0],
                json!({"orderId": format!("{prefix}{i}")}),
                1,
            )
        }
        // Flows 1, 10–19, 100–199, …: up to maxCount (100) orders once 200 flows ran.
        1 => (
            SEARCH_STEPS[1],
            json!({"orderId": format!("{prefix}1*")}),
            u64::from(m.count > 1),
        ),
        _ => (
            SEARCH_STEPS[2],
            json!({"orderId": format!("{prefix}*"), "orderStatus": [m.kind.final_state()]}),
            1,
        ),
    }
}

fn params(common: Value) -> Value {
    json!({
        "requestId": "bench",
        "serviceTypeCd": ["amazonpay"],
        "newerFlag": "false",
        "containDummyFlag": "1",
        "maxCount": "100",
        "searchParameters": {"common": common},
    })
}

/// The answer's error code, or None when it succeeded with at least `least` orders.
fn judge(answer: &anyhow::Result<Map<String, Value>>, least: u64) -> Option<String> {
    let r = match answer {
        Ok(r) => r,
        Err(_) => return Some("HTTP error".into()),
    };
    if r.get("mstatus").and_then(Value::as_str) != Some("success") {
        let code = r
            .get("vResultCode")
            .and_then(Value::as_str)
            .unwrap_or("no vResultCode");
        return Some(code.get(..4).unwrap_or(code).to_owned());
    }
    let found = r
        .get("searchCount")
        .and_then(Value::as_str)
        .and_then(|c| c.parse::<u64>().ok())
        .unwrap_or(0);
    (found < least).then(|| "fewer orders than made".to_owned())
}

/// `count` Searches over the orders in `made` (only completed flows' orders are expected to be
/// found), `concurrency` at a time, cycling through the kinds of [`SEARCH_STEPS`].
pub async fn run_searches(
    t: &Arc<Target>,
    made: &[Made],
    count: u64,
    concurrency: usize,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<SearchRun> {
    let made: Arc<Vec<Made>> = Arc::new(made.iter().filter(|m| m.count > 0).copied().collect());
    let rec = Arc::new(Recorder::default());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (t, rec, next, made, progress) = (
            t.clone(),
            rec.clone(),
            next.clone(),
            made.clone(),
            progress.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count || made.is_empty() {
                    break;
                }
                let (step, common, least) = nth(n, &made);
                let began = Instant::now();
                let answer = t.mdk_at(TEST_SEARCH, params(common)).await;
                rec.record(step, began.elapsed());
                if let Some(code) = judge(&answer, least) {
                    rec.error(code);
                }
                progress.inc(1);
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    Ok(SearchRun {
        count: if made.is_empty() { 0 } else { count },
        wall: started.elapsed(),
        errors: rec.errors(),
        steps: rec.stats(&SEARCH_STEPS),
    })
}
