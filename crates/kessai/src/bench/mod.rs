//! `kessai bench`: the machine's bounds (RSA, SQLite commits), full one-time and recurring flows,
//! refused commands and Searches against a gateway and emulator started in this process, in one
//! run; a table on stdout and, with `--json`, a report for machines. `--null-amazon` runs them
//! against an emulator that does no crypto and no disk work (the gateway's own cost);
//! `--growth` runs them again on data directories bulk-loaded with historical orders.

mod bounds;
mod browser;
mod cpu;
mod flows;
mod growth;
mod load;
mod search;
mod servers;

use anyhow::Context;
use flows::{Amount, FlowKind, StepStats, Target};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use servers::Amazon;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which flows a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FlowChoice {
    /// Authorize → buyer → Capture → Refund.
    OneTime,
    /// Authorize with a recurring consent → buyer → ReAuthorize → Capture → Terminate.
    Recurring,
    /// The one-time flows, then the recurring ones.
    Both,
}

impl FlowChoice {
    fn kinds(self) -> &'static [FlowKind] {
        match self {
            FlowChoice::OneTime => &[FlowKind::OneTime],
            FlowChoice::Recurring => &[FlowKind::Recurring],
            FlowChoice::Both => &[FlowKind::OneTime, FlowKind::Recurring],
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Flows run at once (each a merchant and a buyer in a closed loop); refused commands too,
    /// unless --rate is given.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Send the refused commands open loop at this many per second: each started on a fixed
    /// schedule whether or not the earlier ones have answered, its latency measured from its
    /// scheduled start (a stalled server shows as latency). Without it, refused commands run
    /// closed loop, --concurrency at a time.
    #[arg(long)]
    rate: Option<f64>,
    /// Start the flows open loop at this many per second (instead of --concurrency at a time):
    /// each flow on a fixed schedule whether or not the earlier ones have ended, the whole flow's
    /// latency measured from its scheduled start. With --duration, rate × duration flows.
    #[arg(long, value_name = "FLOWS_PER_S")]
    flow_rate: Option<f64>,
    /// Pin the load generator's runtime to these cores (e.g. `1` or `0,1`): one worker thread per
    /// core listed, each pinned to one of them, so the load does not run on the cores it
    /// measures. The gateway and the emulator are not pinned. Linux only.
    #[arg(long, value_delimiter = ',')]
    pin_load: Vec<usize>,
    /// Which flows to run; with both, each runs for the whole --flows or --duration.
    #[arg(long, value_enum, default_value_t = FlowChoice::Both)]
    flow: FlowChoice,
    /// Number of flows of each kind to run (default 200; 5 with --quick).
    #[arg(long, conflicts_with = "duration")]
    flows: Option<u64>,
    /// Run each kind of flow for this many seconds instead of a count.
    #[arg(long)]
    duration: Option<u64>,
    /// Refused commands to send (Captures above the authorized amount; default 2000, 20 with --quick).
    #[arg(long)]
    refusals: Option<u64>,
    /// Searches to send after the flows, by order id, id prefix and state in turn (default 600,
    /// 9 with --quick).
    #[arg(long)]
    searches: Option<u64>,
    /// Seconds each machine bound is measured (default 2; 0.2 with --quick).
    #[arg(long)]
    bound_secs: Option<f64>,
    /// A few flows and short bounds: a smoke test that finishes in seconds.
    #[arg(long)]
    quick: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep the temporary data directory (its path is printed) instead of removing it.
    #[arg(long)]
    keep_data: bool,
    /// Run the gateway on this PostgreSQL database (`postgres://…`) instead of SQLite: in a
    /// schema of the bench's own, dropped at the end (kept with --keep-data); the commit bound is
    /// then PostgreSQL's.
    #[arg(long)]
    database_url: Option<String>,
    /// Run against a null Amazon: the emulator checks no signature and keeps its records in
    /// memory (no file, no fsync), so what is left is the gateway's own cost per command. The
    /// gateway still signs every call. A benchmark-only mode (`kessai serve` has none).
    #[arg(long)]
    null_amazon: bool,
    /// Growth runs, one per number of historical orders (e.g. `10000,100000,1000000`): a fresh
    /// data directory bulk-loaded with that many orders and their history (direct SQL, not the
    /// API), `kessai serve`'s start-up on it (until /health answers) and its resident memory at
    /// rest, then the same flows and Searches on it (no refusals). SQLite only.
    #[arg(long, value_delimiter = ',', conflicts_with = "database_url")]
    growth: Vec<u64>,
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed_precise}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_owned());
    pb
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bound_time = Duration::from_secs_f64(
        args.bound_secs
            .unwrap_or(if args.quick { 0.2 } else { 2.0 })
            .max(0.05),
    );
    let amount = match (args.flows, args.duration) {
        (_, Some(secs)) => Amount::Duration(Duration::from_secs(secs.max(1))),
        (Some(n), None) => Amount::Count(n.max(1)),
        (None, None) => Amount::Count(if args.quick { 5 } else { 200 }),
    };
    let refusals = args.refusals.unwrap_or(if args.quick { 20 } else { 2000 });
    let searches = args.searches.unwrap_or(if args.quick { 9 } else { 600 });
    for (flag, rate) in [("--rate", args.rate), ("--flow-rate", args.flow_rate)] {
        if let Some(rate) = rate {
            anyhow::ensure!(
                rate.is_finite() && rate > 0.0,
                "{flag} must be above 0, not {rate}"
            );
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let dir = std::env::temp_dir().join(format!(
        "kessai-bench-{}-{}",
        std::process::id(),
        kessai::random_hex(4)
    ));
    kessai::prepare_data_dir(&dir)?;

    let schema = match &args.database_url {
        Some(url) => Some(bounds::BenchSchema::create(url).await?),
        None => None,
    };
    let spinner = bar(2, "RSA");
    let rsa = tokio::task::spawn_blocking(move || bounds::rsa(threads, bound_time)).await??;
    spinner.set_position(1);
    let commits = match &schema {
        Some(schema) => {
            spinner.set_message("PostgreSQL");
            bounds::postgres_commits(&schema.url, bound_time).await?
        }
        None => {
            spinner.set_message("SQLite");
            bounds::sqlite_commits(&dir, bound_time).await?
        }
    };
    spinner.finish_and_clear();
    // Made after the bounds (whose threads would inherit its pinning) and before no server:
    // the servers' runtimes are built from the main runtime, unpinned.
    let generator = load::LoadRuntime::new(&args.pin_load)?;

    let amazon = if args.null_amazon {
        Amazon::Null
    } else {
        Amazon::Emulator
    };
    let plan = Plan {
        kinds: args.flow.kinds(),
        concurrency: args.concurrency,
        flow_rate: args.flow_rate,
        amount,
        searches,
    };
    let mut suite = None;
    let mut grown = Vec::new();
    if args.growth.is_empty() {
        let target = Arc::new(
            Target::start(
                &dir.join("kessai"),
                schema.as_ref().map(|s| s.url.clone()),
                amazon,
            )
            .await?,
        );
        let (flows, searched, refused) = {
            let (plan, target) = (plan.clone(), target.clone());
            let (concurrency, rate) = (args.concurrency, args.rate);
            generator
                .run(async move {
                    let (flows, searched) = plan.run(&target).await?;
                    let pb = bar(refusals, "refusals");
                    let refused =
                        flows::run_refusals(&target, refusals, concurrency, rate, &pb).await?;
                    pb.finish_and_clear();
                    anyhow::Ok((flows, searched, refused))
                })
                .await?
        };
        suite = Some(Suite {
            flows,
            refused,
            searched,
        });
    }
    for &orders in &args.growth {
        let data = dir.join(format!("growth-{orders}"));
        kessai::prepare_data_dir(&data)?;
        let spinner = bar(orders, "loading");
        spinner.set_message(format!("loading {orders}"));
        let loaded = growth::load(&data, orders).await?;
        spinner.set_message(format!("starting on {orders}"));
        let file_bytes = growth::gateway_file_bytes(&data);
        // The first start makes the keys and certificates; the second is a restart.
        let first_start = growth::serve_start(&data).await?;
        let restart = growth::serve_start(&data).await?;
        spinner.finish_and_clear();
        let target = Arc::new(Target::start(&data, None, amazon).await?);
        let (flows, searched) = {
            let (plan, target) = (plan.clone(), target.clone());
            generator
                .run(async move { plan.run(&target).await })
                .await?
        };
        drop(target);
        if !args.keep_data {
            if let Err(e) = std::fs::remove_dir_all(&data) {
                tracing::warn!(%e, "cannot remove {}", data.display());
            }
        }
        grown.push(GrowthPoint {
            loaded,
            file_bytes,
            first_start,
            restart,
            flows,
            searched,
        });
    }

    let report = Report {
        threads,
        load_before: load
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        concurrency: args.concurrency,
        load_generator: generator.describe(),
        load_generator_json: json!({
            "runtime_threads": load::LOAD_THREADS,
            "worker_threads": generator.worker_threads,
            "pinned_cores": (!generator.pinned.is_empty()).then(|| generator.pinned.clone()),
            "affinity": generator.affinity(),
            "servers_pinned": false,
        }),
        amazon,
        rsa,
        database: if schema.is_some() {
            Database::Postgres
        } else {
            Database::Sqlite
        },
        commits,
        suite,
        growth: grown,
    };
    print!("{}", report.human());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.json())?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if args.keep_data {
        println!("data kept in {}", dir.display());
        if let Some(schema) = &schema {
            println!("PostgreSQL schema kept: {}", schema.name);
        }
    } else {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(%e, "cannot remove {}", dir.display());
        }
        if let Some(schema) = &schema {
            if let Err(e) = schema.drop_schema().await {
                tracing::warn!(%e, "cannot drop the schema {}", schema.name);
            }
        }
    }
    let runs = report
        .suite
        .iter()
        .map(|s| (&s.flows, &s.searched))
        .chain(report.growth.iter().map(|g| (&g.flows, &g.searched)));
    for (flows, searched) in runs {
        for f in flows {
            anyhow::ensure!(
                f.run.failed == 0,
                "{} {} failed (errors: {:?}); run with RUST_LOG=warn for the first one",
                f.run.failed,
                f.kind.title(),
                f.errors
            );
        }
        anyhow::ensure!(
            searched.errors.is_empty(),
            "searches failed: {:?}",
            searched.errors
        );
    }
    Ok(())
}

/// What one run of the flows does: which flows, how many at once, how many, then how many
/// Searches.
#[derive(Clone)]
struct Plan {
    kinds: &'static [FlowKind],
    concurrency: usize,
    /// Flows started per second, open loop, instead of `concurrency` at a time.
    flow_rate: Option<f64>,
    amount: Amount,
    searches: u64,
}

impl Plan {
    /// The flows of each kind in turn, then the Searches over the orders they made.
    async fn run(
        &self,
        target: &Arc<Target>,
    ) -> anyhow::Result<(Vec<FlowReport>, search::SearchRun)> {
        let mut reports = Vec::new();
        for &kind in self.kinds {
            let rec = Arc::new(flows::Recorder::default());
            let what = match kind {
                FlowKind::OneTime => "one-time",
                FlowKind::Recurring => "recurring",
            };
            let pb = match self.amount {
                Amount::Count(n) => bar(n, what),
                Amount::Duration(d) => bar(d.as_secs(), &format!("{what} (s)")),
            };
            let load = match self.flow_rate {
                Some(rate) => flows::Load::Open(rate),
                None => flows::Load::Closed(self.concurrency),
            };
            let run = flows::run_flows(target, &rec, kind, load, self.amount, &pb).await?;
            pb.finish_and_clear();
            let steps: Vec<&'static str> = kind
                .steps()
                .iter()
                .copied()
                .chain([flows::WHOLE_FLOW])
                .collect();
            reports.push(FlowReport {
                kind,
                amazon: target.amazon,
                steps: rec.stats(&steps),
                errors: rec.errors(),
                run,
            });
        }
        let made: Vec<search::Made> = reports
            .iter()
            .map(|f| search::Made {
                kind: f.kind,
                count: f.run.completed + f.run.failed,
            })
            .collect();
        let pb = bar(self.searches, "searches");
        let searched =
            search::run_searches(target, &made, self.searches, self.concurrency, &pb).await?;
        pb.finish_and_clear();
        Ok((reports, searched))
    }
}

/// The flows, refusals and Searches of a run without `--growth`.
struct Suite {
    flows: Vec<FlowReport>,
    refused: flows::RefusalRun,
    searched: search::SearchRun,
}

/// One growth run: the load, `kessai serve`'s starts on the loaded directory, then the flows.
struct GrowthPoint {
    loaded: growth::Loaded,
    file_bytes: u64,
    first_start: growth::Start,
    restart: growth::Start,
    flows: Vec<FlowReport>,
    searched: search::SearchRun,
}

/// The gateway's database in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Database {
    Sqlite,
    Postgres,
}

impl Database {
    fn commits_label(self) -> &'static str {
        match self {
            Database::Sqlite => "SQLite commits/s (WAL, synchronous FULL)",
            Database::Postgres => "PostgreSQL commits/s (one connection)",
        }
    }

    fn json_key(self) -> &'static str {
        match self {
            Database::Sqlite => "sqlite_commits_per_s",
            Database::Postgres => "postgres_commits_per_s",
        }
    }
}

struct Report {
    threads: usize,
    load_before: String,
    concurrency: usize,
    /// Where the load generator ran, in words and for the JSON report.
    load_generator: String,
    load_generator_json: Value,
    amazon: Amazon,
    rsa: bounds::RsaBounds,
    database: Database,
    commits: f64,
    suite: Option<Suite>,
    growth: Vec<GrowthPoint>,
}

/// One kind of flow's run: its counts, its steps' latencies and its errors.
struct FlowReport {
    kind: FlowKind,
    amazon: Amazon,
    run: flows::FlowRun,
    steps: Vec<StepStats>,
    errors: std::collections::BTreeMap<String, u64>,
}

impl FlowReport {
    fn flows_per_sec(&self) -> f64 {
        self.run.completed as f64 / self.run.wall.as_secs_f64().max(1e-9)
    }

    fn notifications_per_flow(&self) -> f64 {
        let flows = (self.run.completed + self.run.failed).max(1);
        self.run.notifications as f64 / flows as f64
    }

    /// Flows per second if the cores did nothing but the flows' RSA work: the gateway's
    /// signatures, the emulator's notification signatures and the emulator's verifications.
    fn rsa_bound(&self, rsa: &bounds::RsaBounds) -> f64 {
        let calls = self.kind.signed_calls() as f64;
        let signatures = calls + self.notifications_per_flow();
        let secs = signatures / rsa.sign.all_cores + self.verified_calls() / rsa.verify.all_cores;
        1.0 / secs
    }

    /// Signed calls whose signature the emulator verifies: none with the null Amazon.
    fn verified_calls(&self) -> f64 {
        match self.amazon {
            Amazon::Emulator => self.kind.signed_calls() as f64,
            Amazon::Null => 0.0,
        }
    }

    /// CPU of the RSA work of one flow at the one-core rates, in ms.
    fn rsa_cpu_ms(&self, rsa: &bounds::RsaBounds) -> f64 {
        let calls = self.kind.signed_calls() as f64;
        let signatures = calls + self.notifications_per_flow();
        1000.0 * (signatures / rsa.sign.one_core + self.verified_calls() / rsa.verify.one_core)
    }

    /// `part` of the CPU time per flow, in ms.
    fn per_flow_ms(&self, part: Duration) -> f64 {
        let flows = (self.run.completed + self.run.failed).max(1);
        part.as_secs_f64() * 1000.0 / flows as f64
    }

    fn cpu_ms_per_flow(&self) -> f64 {
        self.per_flow_ms(self.run.cpu.total)
    }

    /// The gateway's CPU per flow: its runtime's threads and, with the null Amazon (whose one
    /// SQLite connection is the emulator's), the SQLite threads.
    fn gateway_cpu_ms_per_flow(&self) -> f64 {
        let c = &self.run.cpu;
        match self.amazon {
            Amazon::Null => self.per_flow_ms(c.gateway + c.sqlite),
            Amazon::Emulator => self.per_flow_ms(c.gateway),
        }
    }

    fn cpu_parts_json(&self) -> Value {
        let c = &self.run.cpu;
        json!({
            "gateway_runtime": self.per_flow_ms(c.gateway),
            "emulator": self.per_flow_ms(c.emulator),
            "sqlite_threads": self.per_flow_ms(c.sqlite),
            "sqlite_threads_are": match self.amazon {
                Amazon::Null => "the gateway's",
                Amazon::Emulator => "the gateway's and the emulator's",
            },
            "load_generator": self.per_flow_ms(c.load),
            "other": self.per_flow_ms(c.other()),
        })
    }

    /// The MDK commands' latencies: with the null Amazon, the gateway's overhead per command.
    fn commands(&self) -> impl Iterator<Item = &StepStats> {
        self.steps
            .iter()
            .filter(|st| !st.step.starts_with("buyer") && st.step != flows::WHOLE_FLOW)
    }

    fn gateway_commits_per_flow(&self) -> f64 {
        let flows = (self.run.completed + self.run.failed).max(1);
        self.run.gateway_commits as f64 / flows as f64
    }

    /// Flows per second if the gateway's database did nothing but these flows' commits, one after
    /// the other at the measured rate.
    fn commit_bound(&self, commits_per_s: f64) -> f64 {
        commits_per_s / self.gateway_commits_per_flow().max(1e-9)
    }

    fn human(&self, s: &mut String, rsa: &bounds::RsaBounds, commits: f64, concurrency: usize) {
        use std::fmt::Write;
        match &self.run.open {
            None => {
                let _ = writeln!(s, "\n{}, concurrency {concurrency}", self.kind.title());
            }
            Some(o) => {
                let _ = writeln!(
                    s,
                    "\n{}, open loop at {:.1} flows/s (the whole flow's latency from its scheduled start)",
                    self.kind.title(),
                    o.rate
                );
                let _ = writeln!(
                    s,
                    "  started at {:.1}/s; {} of {} started more than {} ms late (latest {:.2} ms)",
                    o.achieved,
                    o.late,
                    o.count,
                    load::LATE.as_millis(),
                    o.max_start_lag.as_secs_f64() * 1000.0
                );
            }
        }
        let _ = writeln!(
            s,
            "  flows            {} completed, {} failed in {:.2} s",
            self.run.completed,
            self.run.failed,
            self.run.wall.as_secs_f64()
        );
        let _ = writeln!(s, "  flows/s          {:.1}", self.flows_per_sec());
        let _ = writeln!(
            s,
            "  CPU per flow     {:.1} ms (whole process: gateway, emulator and load generator; RSA work {:.1} ms)",
            self.cpu_ms_per_flow(),
            self.rsa_cpu_ms(rsa)
        );
        let c = &self.run.cpu;
        let _ = writeln!(
            s,
            "  CPU by part      gateway {:.1} ms, emulator {:.1} ms, SQLite threads ({}) {:.1} ms, load generator {:.1} ms, other {:.1} ms",
            self.per_flow_ms(c.gateway),
            self.per_flow_ms(c.emulator),
            match self.amazon {
                Amazon::Null => "the gateway's",
                Amazon::Emulator => "both sides'",
            },
            self.per_flow_ms(c.sqlite),
            self.per_flow_ms(c.load),
            self.per_flow_ms(c.other()),
        );
        if self.amazon == Amazon::Null {
            let _ = writeln!(
                s,
                "  gateway CPU      {:.1} ms per flow (its runtime and its SQLite threads; Amazon is null)",
                self.gateway_cpu_ms_per_flow()
            );
        }
        let _ = writeln!(
            s,
            "  RSA per flow     {} signed calls (gateway signs, {}) + {:.2} notifications (emulator signs; each may add a signed fetch)",
            self.kind.signed_calls(),
            match self.amazon {
                Amazon::Null => "the null Amazon verifies nothing",
                Amazon::Emulator => "emulator verifies",
            },
            self.notifications_per_flow()
        );
        let bound = self.rsa_bound(rsa);
        let _ = writeln!(
            s,
            "  RSA bound        {bound:.1} flows/s on all cores; this run reached {:.0} %",
            100.0 * self.flows_per_sec() / bound
        );
        if self.run.gateway_commits == 0 {
            let _ = writeln!(s, "  commits          not counted on PostgreSQL");
        } else {
            let bound = self.commit_bound(commits);
            let _ = writeln!(
                s,
                "  commits          {:.1} per flow at the gateway (the emulator's not counted): bound {bound:.1} flows/s; this run reached {:.0} %",
                self.gateway_commits_per_flow(),
                100.0 * self.flows_per_sec() / bound
            );
        }
        let _ = writeln!(s, "  errors           {}", errors_text(&self.errors));
        if self.amazon == Amazon::Null {
            let _ = writeln!(
                s,
                "\n  Amazon is null: each MDK command's time is the gateway's overhead (with the null Amazon's answers and the loopback)"
            );
        }
        steps_table(s, &self.steps);
    }

    fn json(&self, rsa: &bounds::RsaBounds, commits: f64, concurrency: usize) -> Value {
        let open = self.run.open.as_ref();
        json!({
            "mode": if open.is_some() { "open" } else { "closed" },
            "concurrency": if open.is_some() { Value::Null } else { json!(concurrency) },
            "flow_rate_per_s": open.map(|o| o.rate),
            "achieved_start_rate_per_s": open.map(|o| o.achieved),
            "late_starts": open.map(|o| o.late),
            "max_start_lag_ms": open.map(|o| o.max_start_lag.as_secs_f64() * 1000.0),
            "completed": self.run.completed,
            "failed": self.run.failed,
            "wall_s": self.run.wall.as_secs_f64(),
            "flows_per_s": self.flows_per_sec(),
            "amazon": self.amazon.json_name(),
            "cpu_ms_per_flow": self.cpu_ms_per_flow(),
            "cpu_ms_per_flow_by_part": self.cpu_parts_json(),
            "gateway_cpu_ms_per_flow": self.gateway_cpu_ms_per_flow(),
            "rsa_cpu_ms_per_flow": self.rsa_cpu_ms(rsa),
            "signed_calls_per_flow": self.kind.signed_calls(),
            "notifications_per_flow": self.notifications_per_flow(),
            "rsa_bound_flows_per_s": self.rsa_bound(rsa),
            "fraction_of_rsa_bound": self.flows_per_sec() / self.rsa_bound(rsa),
            "gateway_commits_per_flow": self.gateway_commits_per_flow(),
            "commit_bound_flows_per_s": self.commit_bound(commits),
            "fraction_of_commit_bound": self.flows_per_sec() / self.commit_bound(commits),
            "errors": self.errors,
            "steps": self.steps.iter().map(step_json).collect::<Vec<_>>(),
            // With the null Amazon, what each MDK command costs at the gateway.
            "gateway_overhead_ms": match self.amazon {
                Amazon::Null => Value::from(self.commands().map(|st| json!({
                    "command": st.step, "p50_ms": st.p50, "p99_ms": st.p99,
                })).collect::<Vec<_>>()),
                Amazon::Emulator => Value::Null,
            },
        })
    }
}

fn errors_text(errors: &std::collections::BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        "none".to_owned()
    } else {
        format!("{errors:?}")
    }
}

fn steps_table(s: &mut String, steps: &[StepStats]) {
    use std::fmt::Write;
    let _ = writeln!(
        s,
        "\n  {:<20} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "step (ms)", "count", "p50", "p90", "p99", "max"
    );
    for st in steps {
        let _ = writeln!(
            s,
            "  {:<20} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            st.step, st.count, st.p50, st.p90, st.p99, st.max
        );
    }
}

fn step_json(st: &StepStats) -> Value {
    json!({"step": st.step, "count": st.count, "p50_ms": st.p50, "p90_ms": st.p90,
           "p99_ms": st.p99, "max_ms": st.max})
}

impl Report {
    fn human(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let r = &self.rsa;
        let _ = writeln!(
            s,
            "kessai bench — {} cores, load average before the run {}",
            self.threads, self.load_before
        );
        let _ = writeln!(s, "Amazon: {}", self.amazon.describe());
        let _ = writeln!(s, "Load generator: {}", self.load_generator);
        let _ = writeln!(s, "\nMachine bounds");
        let _ = writeln!(s, "  {:<44} {:>10} {:>12}", "", "one core", "all cores");
        let _ = writeln!(
            s,
            "  {:<44} {:>10.0} {:>12.0}",
            "RSA-2048 PSS-SHA256 signatures/s (ring)", r.sign.one_core, r.sign.all_cores
        );
        let _ = writeln!(
            s,
            "  {:<44} {:>10.0} {:>12.0}",
            "RSA-2048 PSS-SHA256 verifications/s (emulator)", r.verify.one_core, r.verify.all_cores
        );
        let _ = writeln!(
            s,
            "  {:<44} {:>10.0}",
            self.database.commits_label(),
            self.commits
        );
        if let Some(suite) = &self.suite {
            for f in &suite.flows {
                f.human(&mut s, &self.rsa, self.commits, self.concurrency);
            }
            let f = &suite.refused;
            match &f.open {
                None => {
                    let _ = writeln!(
                        s,
                        "\nRefused commands (Capture above the authorized amount), closed loop, concurrency {}",
                        self.concurrency
                    );
                }
                Some(o) => {
                    let _ = writeln!(
                        s,
                        "\nRefused commands (Capture above the authorized amount), open loop at {:.0}/s (latency from each request's scheduled start)",
                        o.rate
                    );
                    let _ = writeln!(
                        s,
                        "  started at {:.0}/s; {} of {} started more than {} ms late (latest {:.2} ms)",
                        o.achieved,
                        o.late,
                        o.count,
                        load::LATE.as_millis(),
                        o.max_start_lag.as_secs_f64() * 1000.0
                    );
                }
            }
            let _ = writeln!(
                s,
                "  {} in {:.2} s: {:.0} refusals/s; answers {:?}",
                f.count,
                f.wall.as_secs_f64(),
                f.count as f64 / f.wall.as_secs_f64().max(1e-9),
                f.codes
            );
            if let Some(st) = &f.stats {
                let _ = writeln!(
                    s,
                    "  latency ms: p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
                    st.p50, st.p90, st.p99, st.max
                );
            }
            searches_human(&mut s, &suite.searched, self.concurrency);
        }
        if !self.growth.is_empty() {
            self.growth_human(&mut s);
        }
        s
    }

    fn growth_human(&self, s: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            s,
            "\nGrowth: historical orders bulk-loaded into the gateway's SQLite file, then `kessai serve` started on it twice (the first start makes keys and certificates), then the flows, concurrency {}",
            self.concurrency
        );
        let _ = writeln!(
            s,
            "  {:>9} {:>8} {:>9} {:>8} {:>9} {:>9} {:>8}",
            "orders", "load s", "rows/s", "file MB", "start ms", "restart", "RSS MB"
        );
        for g in &self.growth {
            let _ = writeln!(
                s,
                "  {:>9} {:>8.1} {:>9.0} {:>8.0} {:>9.0} {:>9.0} {:>8.1}",
                g.loaded.orders,
                g.loaded.took.as_secs_f64(),
                g.loaded.rows_per_sec(),
                g.file_bytes as f64 / 1e6,
                g.first_start.to_health.as_secs_f64() * 1000.0,
                g.restart.to_health.as_secs_f64() * 1000.0,
                g.restart.rss_kib as f64 / 1024.0,
            );
        }
        let _ = writeln!(
            s,
            "\n  {:>9} {:<10} {:>8} {:>9} {:>10} {:>10} {:>13} {:>13}",
            "orders",
            "flow",
            "flows/s",
            "CPU ms",
            "gateway ms",
            "p99 max",
            "Authorize p99",
            "Capture p99"
        );
        for g in &self.growth {
            for f in &g.flows {
                let p99 = |step: &str| {
                    f.steps
                        .iter()
                        .find(|st| st.step == step)
                        .map_or(f64::NAN, |st| st.p99)
                };
                let worst = f.commands().map(|st| st.p99).fold(0.0, f64::max);
                let _ = writeln!(
                    s,
                    "  {:>9} {:<10} {:>8.1} {:>9.1} {:>10.1} {:>10.1} {:>13.1} {:>13.1}",
                    g.loaded.orders,
                    match f.kind {
                        FlowKind::OneTime => "one-time",
                        FlowKind::Recurring => "recurring",
                    },
                    f.flows_per_sec(),
                    f.cpu_ms_per_flow(),
                    f.gateway_cpu_ms_per_flow(),
                    worst,
                    p99("Authorize"),
                    p99("Capture"),
                );
            }
        }
        let _ = writeln!(
            s,
            "\n  {:>9} {:>11} {:>20} {:>20} {:>20}",
            "orders", "searches/s", "id p50/p99", "prefix* p50/p99", "state p50/p99"
        );
        for g in &self.growth {
            let q = &g.searched;
            let cell = |step: &str| {
                q.steps.iter().find(|st| st.step == step).map_or_else(
                    || "-".to_owned(),
                    |st| format!("{:.1} / {:.1}", st.p50, st.p99),
                )
            };
            let _ = writeln!(
                s,
                "  {:>9} {:>11.0} {:>20} {:>20} {:>20}",
                g.loaded.orders,
                q.count as f64 / q.wall.as_secs_f64().max(1e-9),
                cell(search::SEARCH_STEPS[0]),
                cell(search::SEARCH_STEPS[1]),
                cell(search::SEARCH_STEPS[2]),
            );
        }
        let errors: Vec<String> = self
            .growth
            .iter()
            .flat_map(|g| {
                g.flows
                    .iter()
                    .map(|f| &f.errors)
                    .chain([&g.searched.errors])
            })
            .filter(|e| !e.is_empty())
            .map(errors_text)
            .collect();
        let _ = writeln!(
            s,
            "  errors: {}",
            if errors.is_empty() {
                "none".to_owned()
            } else {
                errors.join(", ")
            }
        );
    }

    fn json(&self) -> Value {
        let rate = |r: &bounds::Rate| json!({"one_core": r.one_core, "all_cores": r.all_cores, "threads": r.threads});
        let mut report = json!({
            "machine": {"cores": self.threads, "load_before": self.load_before},
            "load_generator": self.load_generator_json,
            "amazon": self.amazon.json_name(),
            "bounds": {
                "rsa_sign_per_s": rate(&self.rsa.sign),
                "rsa_verify_per_s": rate(&self.rsa.verify),
            },
        });
        report["bounds"][self.database.json_key()] = json!(self.commits);
        if let Some(suite) = &self.suite {
            let open = suite.refused.open.as_ref();
            report["refusals"] = json!({
                "count": suite.refused.count,
                "mode": if open.is_some() { "open" } else { "closed" },
                "concurrency": if open.is_some() { Value::Null } else { json!(self.concurrency) },
                "rate_per_s": open.map(|o| o.rate),
                "achieved_start_rate_per_s": open.map(|o| o.achieved),
                "late_starts": open.map(|o| o.late),
                "late_threshold_ms": open.map(|_| load::LATE.as_secs_f64() * 1000.0),
                "max_start_lag_ms": open.map(|o| o.max_start_lag.as_secs_f64() * 1000.0),
                "latency_from": if open.is_some() { "scheduled start" } else { "send" },
                "wall_s": suite.refused.wall.as_secs_f64(),
                "per_s": suite.refused.count as f64 / suite.refused.wall.as_secs_f64().max(1e-9),
                "answers": suite.refused.codes,
                "latency": suite.refused.stats.as_ref().map(step_json),
            });
            report["searches"] = searches_json(&suite.searched, self.concurrency);
            for f in &suite.flows {
                report[f.kind.json_key()] = f.json(&self.rsa, self.commits, self.concurrency);
            }
        }
        if !self.growth.is_empty() {
            report["growth"] = self
                .growth
                .iter()
                .map(|g| {
                    let mut point = json!({
                        "orders": g.loaded.orders,
                        "history_rows": g.loaded.history,
                        "load_s": g.loaded.took.as_secs_f64(),
                        "load_rows_per_s": g.loaded.rows_per_sec(),
                        "gateway_file_bytes": g.file_bytes,
                        "first_start_ms": g.first_start.to_health.as_secs_f64() * 1000.0,
                        "first_start_rss_kib": g.first_start.rss_kib,
                        "restart_ms": g.restart.to_health.as_secs_f64() * 1000.0,
                        "rss_at_rest_kib": g.restart.rss_kib,
                        "searches": searches_json(&g.searched, self.concurrency),
                    });
                    for f in &g.flows {
                        point[f.kind.json_key()] =
                            f.json(&self.rsa, self.commits, self.concurrency);
                    }
                    point
                })
                .collect();
        }
        report
    }
}

fn searches_human(s: &mut String, q: &search::SearchRun, concurrency: usize) {
    use std::fmt::Write;
    let _ = writeln!(
        s,
        "\nSearches (maxCount 100) over the flows' orders, concurrency {concurrency}"
    );
    let _ = writeln!(
        s,
        "  {} in {:.2} s: {:.0} searches/s; errors {}",
        q.count,
        q.wall.as_secs_f64(),
        q.count as f64 / q.wall.as_secs_f64().max(1e-9),
        errors_text(&q.errors)
    );
    steps_table(s, &q.steps);
}

fn searches_json(q: &search::SearchRun, concurrency: usize) -> Value {
    json!({
        "count": q.count,
        "concurrency": concurrency,
        "max_count": 100,
        "wall_s": q.wall.as_secs_f64(),
        "per_s": q.count as f64 / q.wall.as_secs_f64().max(1e-9),
        "errors": q.errors,
        "steps": q.steps.iter().map(step_json).collect::<Vec<_>>(),
    })
}
