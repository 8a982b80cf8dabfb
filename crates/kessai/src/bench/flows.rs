//! Full one-time and recurring flows and refused commands against a gateway and the built-in
//! emulator, both started in this process on port 0 with a fresh data directory, driven over real
//! HTTP.

use super::browser::Browser;
use super::cpu::Split;
use super::load::{open_loop, OpenRun};
use super::servers::{start_emulator, Amazon, OwnRuntime};
use anyhow::{anyhow, Context};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MERCHANT_SITE: &str = "http://shop.example";

/// A running gateway and emulator, and a merchant to drive them with.
pub struct Target {
    pub gateway: String,
    pub emulator: String,
    /// Which Amazon the gateway talks to.
    pub amazon: Amazon,
    ccid: String,
    secret: String,
    http: reqwest::Client,
    /// The gateway's store, for its count of commits.
    store: Arc<dyn kessai_store::Store>,
    /// Threads born while the emulator started (its SQLite connections), counted as its CPU.
    emulator_born: BTreeSet<u64>,
    // Held only to be dropped, last and in this order: the gateway stops, then the emulator.
    _gateway_runtime: OwnRuntime,
    _emulator_runtime: OwnRuntime,
}

impl Target {
    /// The emulator (`amazon` says which) on a runtime of its own, then the gateway on another,
    /// talking to it over HTTP: on SQLite in `data_dir`, or on the PostgreSQL database at
    /// `database_url`.
    pub async fn start(
        data_dir: &Path,
        database_url: Option<String>,
        amazon: Amazon,
    ) -> anyhow::Result<Target> {
        kessai::prepare_data_dir(data_dir)?;
        let emulator = start_emulator(amazon, data_dir).await?;
        let options = kessai::ServeOptions {
            listen: "127.0.0.1:0".parse()?,
            public_url: None,
            data_dir: data_dir.to_owned(),
            database_url,
            sandbox_listen: "127.0.0.1:0".parse()?,
            amazon_pay_endpoint: Some(emulator.url.clone()),
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
            push_lease: Duration::from_secs(30),
            gateway_tls: kessai::GatewayTls::Off,
            test_helpers: Some(kessai_sandbox::TestHelpers::Open),
            limits: kessai_sandbox::Limits::default(),
        };
        let gateway_runtime = OwnRuntime::new(super::cpu::GATEWAY_THREADS)?;
        // Started and served inside its runtime, so its sockets, pools and tasks belong to it.
        let (gateway, ccid, secret, store) = gateway_runtime
            .handle()?
            .spawn(async move {
                let started = kessai::start(options)
                    .await
                    .context("starting the gateway")?;
                let out = (
                    started.gateway.base_url().to_owned(),
                    started.demo.ccid.to_string(),
                    started.demo.secret_hex.expose().clone(),
                    started.store.clone(),
                );
                tokio::spawn(async move {
                    if let Err(e) = started.serve().await {
                        tracing::error!(%e, "the benchmarked gateway stopped");
                    }
                });
                anyhow::Ok(out)
            })
            .await??;
        Ok(Target {
            gateway,
            emulator: emulator.url.as_str().trim_end_matches('/').to_owned(),
            amazon,
            ccid,
            store,
            secret,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(1024)
                .build()?,
            emulator_born: emulator.born,
            _gateway_runtime: gateway_runtime,
            _emulator_runtime: emulator.runtime,
        })
    }

    /// CPU time so far by part of the process.
    pub fn cpu(&self) -> anyhow::Result<Split> {
        Split::now(&self.emulator_born)
    }

    /// One MDK command in test mode; the `result` object.
    async fn mdk(&self, command: &str, params: Value) -> anyhow::Result<Map<String, Value>> {
        self.mdk_at(&format!("/test-paynow/v2/{command}/amazonpay"), params)
            .await
    }

    /// A signed MDK request in test mode to `path` of the gateway; the `result` object.
    pub async fn mdk_at(&self, path: &str, params: Value) -> anyhow::Result<Map<String, Value>> {
        let mut params = match params {
            Value::Object(m) => m,
            _ => return Err(anyhow!("MDK parameters are an object")),
        };
        params.insert("txnVersion".into(), "2.0.0".into());
        params.insert("dummyRequest".into(), "1".into());
        params.insert("merchantCcid".into(), self.ccid.clone().into());
        let body =
            kessai_gateway::mdk::encode_request(&Value::Object(params), &self.ccid, &self.secret);
        let resp = self
            .http
            .post(format!("{}{path}", self.gateway))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await?;
        let v: Value = resp.json().await?;
        match v.get("result") {
            Some(Value::Object(r)) => Ok(r.clone()),
            _ => Err(anyhow!("an MDK answer without result: {v}")),
        }
    }

    /// Amazon Pay notifications the emulator has sent (or queued) so far.
    pub async fn notifications(&self) -> anyhow::Result<usize> {
        let v: Value = self
            .http
            .get(format!("{}/test_helpers/notifications", self.emulator))
            .send()
            .await?
            .json()
            .await?;
        v.get("notifications")
            .and_then(Value::as_array)
            .map(Vec::len)
            .ok_or_else(|| anyhow!("no notification list"))
    }
}

/// Latencies by step and errors by result code, shared by the workers.
#[derive(Default)]
pub struct Recorder {
    latencies: Mutex<BTreeMap<&'static str, Vec<Duration>>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

/// p50, p90, p99 and max of one step, in milliseconds.
#[derive(Debug, Clone)]
pub struct StepStats {
    pub step: &'static str,
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Recorder {
    pub fn record(&self, step: &'static str, took: Duration) {
        if let Ok(mut l) = self.latencies.lock() {
            l.entry(step).or_default().push(took);
        }
    }

    pub fn error(&self, code: String) {
        if let Ok(mut e) = self.errors.lock() {
            *e.entry(code).or_default() += 1;
        }
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Stats of every step, in the order `steps` names them.
    pub fn stats(&self, steps: &[&'static str]) -> Vec<StepStats> {
        let Ok(mut all) = self.latencies.lock() else {
            return Vec::new();
        };
        steps
            .iter()
            .filter_map(|step| {
                let v = all.get_mut(step)?;
                v.sort_unstable();
                let at = |q: f64| {
                    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
                    v[i].as_secs_f64() * 1000.0
                };
                Some(StepStats {
                    step,
                    count: v.len(),
                    p50: at(0.50),
                    p90: at(0.90),
                    p99: at(0.99),
                    max: at(1.0),
                })
            })
            .collect()
    }
}

/// The flows the benchmark can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// Authorize → buyer → Capture → Refund.
    OneTime,
    /// Recurring Authorize (consent and first authorization) → buyer → ReAuthorize of a new
    /// order → Capture of it → Terminate of the consent.
    Recurring,
}

impl FlowKind {
    pub fn title(self) -> &'static str {
        match self {
            FlowKind::OneTime => "One-time flows (Authorize → buyer → Capture → Refund)",
            FlowKind::Recurring => {
                "Recurring flows (Authorize with consent → buyer → ReAuthorize → Capture → Terminate)"
            }
        }
    }

    /// The key of this flow's part of the JSON report.
    pub fn json_key(self) -> &'static str {
        match self {
            FlowKind::OneTime => "flows",
            FlowKind::Recurring => "recurring_flows",
        }
    }

    /// The prefix of the order ids this flow makes (its n-th flow's order is `{prefix}{n}`).
    pub fn order_prefix(self) -> &'static str {
        match self {
            FlowKind::OneTime => "bench-",
            FlowKind::Recurring => "rec-",
        }
    }

    /// The state the orders of a completed flow end in that Search can filter on: the one-time
    /// order refunded, the recurring flow's second order captured.
    pub fn final_state(self) -> &'static str {
        match self {
            FlowKind::OneTime => "Refunded",
            FlowKind::Recurring => "Captured",
        }
    }

    /// The steps of one flow, in order: MDK commands and the buyer's pages.
    pub fn steps(self) -> &'static [&'static str] {
        match self {
            FlowKind::OneTime => &[
                "Authorize",
                "buyer: to Amazon",
                "buyer: sign in",
                "buyer: confirm",
                "buyer: pay",
                "Capture",
                "Refund",
            ],
            FlowKind::Recurring => &[
                "Authorize",
                "buyer: to Amazon",
                "buyer: sign in",
                "buyer: confirm",
                "buyer: pay",
                "ReAuthorize",
                "Capture",
                "Terminate",
            ],
        }
    }

    /// Signed Amazon Pay calls the gateway makes in one flow (each is one ring signature at the
    /// gateway and one verification at the emulator). Both flows: Create Checkout Session
    /// (Authorize), Get Checkout Session (the 確定 page), Update Checkout Session (確定), Complete
    /// Checkout Session and Get Charge (the buyer's return). Then one-time: Capture Charge
    /// (Capture), Create Refund (Refund); recurring: Create Charge (ReAuthorize), Capture Charge
    /// (Capture), Get Charge Permission and Close Charge Permission (Terminate). Each
    /// notification the emulator sends adds one signature at the emulator and at most one signed
    /// fetch (Get Charge or Get Refund) by the gateway.
    pub fn signed_calls(self) -> u64 {
        match self {
            FlowKind::OneTime => 7,
            FlowKind::Recurring => 9,
        }
    }
}

/// Times `fut` as `step`; an MDK answer other than success is an error under its vResultCode.
async fn timed<T>(
    rec: &Recorder,
    step: &'static str,
    fut: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let started = Instant::now();
    let out = fut.await;
    rec.record(step, started.elapsed());
    out
}

fn success(rec: &Recorder, step: &str, r: &Map<String, Value>) -> anyhow::Result<()> {
    if r.get("mstatus").and_then(Value::as_str) == Some("success") {
        return Ok(());
    }
    let code = r
        .get("vResultCode")
        .and_then(Value::as_str)
        .unwrap_or("no vResultCode");
    let code = code.get(..4).unwrap_or(code).to_owned();
    rec.error(code.clone());
    Err(anyhow!("{step} answered {code}"))
}

fn authorize_params(order_id: &str, amount: u64) -> Value {
    json!({
        "orderId": order_id,
        "amount": amount.to_string(),
        "withCapture": "false",
        "successUrl": format!("{MERCHANT_SITE}/ok"),
        "cancelUrl": format!("{MERCHANT_SITE}/cancel"),
        "errorUrl": format!("{MERCHANT_SITE}/error"),
    })
}

/// A recurring (随時) Authorize: the buyer's consent to monthly charges of `amount` and a first
/// authorization of it.
fn consent_params(order_id: &str, amount: u64) -> Value {
    let mut params = authorize_params(order_id, amount);
    for (k, v) in [
        ("accountingType", "1"),
        ("consentAuthType", "1"),
        ("frequencyUnit", "Month"),
        ("frequencyValue", "1"),
    ] {
        params[k] = v.into();
    }
    params
}

/// Authorize with `params` and the buyer's pages: the order ends Authorized.
async fn authorize(t: &Target, rec: &Recorder, params: Value) -> anyhow::Result<()> {
    let r = timed(rec, "Authorize", t.mdk("Authorize", params)).await?;
    success(rec, "Authorize", &r)?;
    let html = r
        .get("responseContents")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("Authorize without responseContents"))?;
    let mut browser = Browser::new(&t.http, MERCHANT_SITE);
    let page = timed(
        rec,
        "buyer: to Amazon",
        browser.submit(html, &t.gateway, &[]),
    )
    .await?;
    let page = timed(
        rec,
        "buyer: sign in",
        browser.submit_page(&page, &[("instrument", "visa-1111")]),
    )
    .await?;
    let page = timed(rec, "buyer: confirm", browser.submit_page(&page, &[])).await?;
    let landed = timed(rec, "buyer: pay", browser.submit_page(&page, &[])).await?;
    let url = landed
        .merchant_url
        .ok_or_else(|| anyhow!("the buyer did not land on the shop: {}", landed.url))?;
    let field = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if field("mstatus").as_deref() != Some("success") {
        let code = field("vResultCode").unwrap_or_else(|| "no vResultCode".into());
        let code = code.get(..4).unwrap_or(&code).to_owned();
        rec.error(code.clone());
        return Err(anyhow!("the buyer landed with {code}"));
    }
    Ok(())
}

/// One whole flow of `kind`.
async fn flow(t: &Target, rec: &Recorder, kind: FlowKind, order_id: &str) -> anyhow::Result<()> {
    match kind {
        FlowKind::OneTime => one_time_flow(t, rec, order_id).await,
        FlowKind::Recurring => recurring_flow(t, rec, order_id).await,
    }
}

/// Authorize → buyer → Capture → Refund.
async fn one_time_flow(t: &Target, rec: &Recorder, order_id: &str) -> anyhow::Result<()> {
    authorize(t, rec, authorize_params(order_id, 1000)).await?;
    let r = timed(
        rec,
        "Capture",
        t.mdk("Capture", json!({"orderId": order_id, "amount": "1000"})),
    )
    .await?;
    success(rec, "Capture", &r)?;
    let r = timed(
        rec,
        "Refund",
        t.mdk("Refund", json!({"orderId": order_id, "amount": "1000"})),
    )
    .await?;
    success(rec, "Refund", &r)
}

/// Consent with a first authorization → buyer → ReAuthorize of a new order (authorized only) →
/// Capture of that order → Terminate. Each flow makes its own consent, so the emulator's limit of
/// charges per consent and period (as Amazon's) is never reached.
async fn recurring_flow(t: &Target, rec: &Recorder, order_id: &str) -> anyhow::Result<()> {
    authorize(t, rec, consent_params(order_id, 1000)).await?;
    let charge = format!("{order_id}-1");
    let params = json!({"orderId": charge, "originalOrderId": order_id, "amount": "1000",
                        "withCapture": "false"});
    let r = timed(rec, "ReAuthorize", t.mdk("ReAuthorize", params)).await?;
    success(rec, "ReAuthorize", &r)?;
    let r = timed(
        rec,
        "Capture",
        t.mdk("Capture", json!({"orderId": charge, "amount": "1000"})),
    )
    .await?;
    success(rec, "Capture", &r)?;
    let r = timed(
        rec,
        "Terminate",
        t.mdk("Terminate", json!({"orderId": order_id})),
    )
    .await?;
    success(rec, "Terminate", &r)
}

/// How many flows, or for how long.
#[derive(Debug, Clone, Copy)]
pub enum Amount {
    Count(u64),
    Duration(Duration),
}

/// How the flows are started.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// This many workers, each starting its next flow when its last one ends.
    Closed(usize),
    /// This many flows per second on a fixed schedule ([`super::load::open_loop`]).
    Open(f64),
}

/// The step under which an open loop records each whole flow, from its scheduled start.
pub const WHOLE_FLOW: &str = "whole flow";

pub struct FlowRun {
    /// The open loop's figures (`None`: closed loop).
    pub open: Option<super::load::OpenRun>,
    pub completed: u64,
    pub failed: u64,
    pub wall: Duration,
    /// CPU time by part of the process while the flows ran.
    pub cpu: Split,
    pub notifications: usize,
    /// Transactions the gateway committed while the flows ran (the emulator's are not counted).
    pub gateway_commits: u64,
}

/// Flows that ended, and the first error.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// Runs flow `n` of `kind` and counts its outcome in `tally`.
async fn run_one(t: Arc<Target>, rec: Arc<Recorder>, tally: Arc<Tally>, kind: FlowKind, n: u64) {
    let order_id = format!("{}{n}", kind.order_prefix());
    match flow(&t, &rec, kind, &order_id).await {
        Ok(()) => {
            tally.ok.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            tally.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut first) = tally.first_error.lock() {
                first.get_or_insert_with(|| format!("{order_id}: {e:#}"));
            }
        }
    }
}

/// Runs flows of `kind`, closed loop (workers each starting its next flow when one ends) or open
/// loop (on a schedule; each whole flow's latency recorded as [`WHOLE_FLOW`]).
pub async fn run_flows(
    t: &Arc<Target>,
    rec: &Arc<Recorder>,
    kind: FlowKind,
    load: Load,
    amount: Amount,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<FlowRun> {
    let next = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Tally::default());
    let notifications_before = t.notifications().await?;
    let cpu_before = t.cpu()?;
    let commits_before = t.store.commit_count().unwrap_or(0);
    let started = Instant::now();
    let deadline = match amount {
        Amount::Duration(d) => Some(started + d),
        Amount::Count(_) => None,
    };
    // One flow: its outcome counted, the first error kept.
    let one = {
        let (t, rec, tally) = (t.clone(), rec.clone(), tally.clone());
        move |n: u64| run_one(t.clone(), rec.clone(), tally.clone(), kind, n)
    };
    let concurrency = match load {
        Load::Closed(concurrency) => concurrency,
        Load::Open(_) => 0,
    };
    let mut open = None;
    if let Load::Open(rate) = load {
        let count = match amount {
            Amount::Count(c) => c,
            Amount::Duration(d) => (d.as_secs_f64() * rate).ceil().max(1.0) as u64,
        };
        let (progress, one) = (progress.clone(), one.clone());
        let (latencies, run) = super::load::open_loop(rate, count, move |n| {
            let (flow, progress) = (one(n), progress.clone());
            async move {
                flow.await;
                match deadline {
                    None => progress.inc(1),
                    Some(_) => progress.set_position(started.elapsed().as_secs()),
                }
            }
        })
        .await?;
        for took in latencies {
            rec.record(WHOLE_FLOW, took);
        }
        open = Some(run);
    }
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (next, progress, one) = (next.clone(), progress.clone(), one.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                match (amount, deadline) {
                    (Amount::Count(c), _) if n >= c => break,
                    (_, Some(d)) if Instant::now() >= d => break,
                    _ => {}
                }
                one(n).await;
                if deadline.is_none() {
                    progress.inc(1);
                } else {
                    progress.set_position(started.elapsed().as_secs());
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let wall = started.elapsed();
    let cpu = t.cpu()?.since(&cpu_before);
    let gateway_commits = t
        .store
        .commit_count()
        .unwrap_or(0)
        .saturating_sub(commits_before);
    if let Ok(first) = tally.first_error.lock() {
        if let Some(e) = first.as_ref() {
            tracing::warn!("first failed flow: {e}");
        }
    }
    Ok(FlowRun {
        open,
        completed: tally.ok.load(Ordering::Relaxed),
        failed: tally.failed.load(Ordering::Relaxed),
        wall,
        cpu,
        notifications: t
            .notifications()
            .await?
            .saturating_sub(notifications_before),
        gateway_commits,
    })
}

pub struct RefusalRun {
    pub count: u64,
    pub wall: Duration,
    pub codes: BTreeMap<String, u64>,
    /// With an open loop, latencies from each request's scheduled start.
    pub stats: Option<StepStats>,
    /// The open loop's figures (`--rate`), or none for the closed loop.
    pub open: Option<OpenRun>,
}

/// One Capture above the authorized amount of `bench-refused`; the answer's result code.
async fn refuse(t: &Target) -> String {
    let params = json!({"orderId": "bench-refused", "amount": "2000"});
    match t.mdk("Capture", params).await {
        Ok(r) => r
            .get("vResultCode")
            .and_then(Value::as_str)
            .map(|c| c.get(..4).unwrap_or(c).to_owned())
            .unwrap_or_else(|| "no vResultCode".into()),
        Err(_) => "HTTP error".into(),
    }
}

/// `count` Captures above the authorized amount of one authorized order (each refused with E306
/// and its attempt written to the order's history): `concurrency` at a time (closed loop), or
/// with `rate`, that many per second on a fixed schedule (open loop).
pub async fn run_refusals(
    t: &Arc<Target>,
    count: u64,
    concurrency: usize,
    rate: Option<f64>,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<RefusalRun> {
    const STEP: &str = "refused Capture";
    let setup = Recorder::default();
    authorize(t, &setup, authorize_params("bench-refused", 1000))
        .await
        .context("authorizing the order whose captures are refused")?;
    let rec = Arc::new(Recorder::default());
    if let Some(rate) = rate {
        let (t, r, pb) = (t.clone(), rec.clone(), progress.clone());
        let (latencies, open) = open_loop(rate, count, move |_| {
            let (t, rec, pb) = (t.clone(), r.clone(), pb.clone());
            async move {
                rec.error(refuse(&t).await);
                pb.inc(1);
            }
        })
        .await?;
        for took in latencies {
            rec.record(STEP, took);
        }
        return Ok(RefusalRun {
            count,
            wall: open.wall,
            codes: rec.errors(),
            stats: rec.stats(&[STEP]).into_iter().next(),
            open: Some(open),
        });
    }
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (t, rec, next, progress) = (t.clone(), rec.clone(), next.clone(), progress.clone());
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let started = Instant::now();
                let code = refuse(&t).await;
                rec.record(STEP, started.elapsed());
                rec.error(code);
                progress.inc(1);
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let wall = started.elapsed();
    Ok(RefusalRun {
        count,
        wall,
        codes: rec.errors(),
        stats: rec.stats(&[STEP]).into_iter().next(),
        open: None,
    })
}
