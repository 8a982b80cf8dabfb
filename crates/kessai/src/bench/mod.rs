//! `kessai bench`: the machine's bounds (RSA, SQLite commits), full one-time and recurring flows,
//! refused commands and Searches against a gateway and emulator started in this process, in one
//! run; a table on stdout and, with `--json`, a report for machines.

mod bounds;
mod browser;
mod flows;
mod search;

use anyhow::Context;
use flows::{Amount, FlowKind, StepStats, Target};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
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
    /// Flows run at once (each a merchant and a buyer in a closed loop).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
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
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat`.
pub fn process_cpu() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc/self/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(fields.get(i).context("short /proc/self/stat")?.parse()?)
    };
    // Linux reports them in USER_HZ, 100 on every mainstream architecture.
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
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

    let target =
        Arc::new(Target::start(&dir.join("kessai"), schema.as_ref().map(|s| s.url.clone())).await?);
    let mut flow_reports = Vec::new();
    for &kind in args.flow.kinds() {
        let rec = Arc::new(flows::Recorder::default());
        let what = match kind {
            FlowKind::OneTime => "one-time",
            FlowKind::Recurring => "recurring",
        };
        let pb = match amount {
            Amount::Count(n) => bar(n, what),
            Amount::Duration(d) => bar(d.as_secs(), &format!("{what} (s)")),
        };
        let run = flows::run_flows(&target, &rec, kind, args.concurrency, amount, &pb).await?;
        pb.finish_and_clear();
        flow_reports.push(FlowReport {
            kind,
            steps: rec.stats(kind.steps()),
            errors: rec.errors(),
            run,
        });
    }
    let pb = bar(refusals, "refusals");
    let refused = flows::run_refusals(&target, refusals, args.concurrency, &pb).await?;
    pb.finish_and_clear();
    let made: Vec<search::Made> = flow_reports
        .iter()
        .map(|f| search::Made {
            kind: f.kind,
            count: f.run.completed + f.run.failed,
        })
        .collect();
    let pb = bar(searches, "searches");
    let searched = search::run_searches(&target, &made, searches, args.concurrency, &pb).await?;
    pb.finish_and_clear();

    let report = Report {
        threads,
        load_before: load
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        concurrency: args.concurrency,
        rsa,
        database: if schema.is_some() {
            Database::Postgres
        } else {
            Database::Sqlite
        },
        commits,
        flows: flow_reports,
        refused,
        searched,
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
    for f in &report.flows {
        anyhow::ensure!(
            f.run.failed == 0,
            "{} {} failed (errors: {:?}); run with RUST_LOG=warn for the first one",
            f.run.failed,
            f.kind.title(),
            f.errors
        );
    }
    anyhow::ensure!(
        report.searched.errors.is_empty(),
        "searches failed: {:?}",
        report.searched.errors
    );
    Ok(())
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
    rsa: bounds::RsaBounds,
    database: Database,
    commits: f64,
    flows: Vec<FlowReport>,
    refused: flows::RefusalRun,
    searched: search::SearchRun,
}

/// One kind of flow's run: its counts, its steps' latencies and its errors.
struct FlowReport {
    kind: FlowKind,
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
        let secs = signatures / rsa.sign.all_cores + calls / rsa.verify.all_cores;
        1.0 / secs
    }

    /// CPU of the RSA work of one flow at the one-core rates, in ms.
    fn rsa_cpu_ms(&self, rsa: &bounds::RsaBounds) -> f64 {
        let calls = self.kind.signed_calls() as f64;
        let signatures = calls + self.notifications_per_flow();
        1000.0 * (signatures / rsa.sign.one_core + calls / rsa.verify.one_core)
    }

    fn cpu_ms_per_flow(&self) -> f64 {
        let flows = (self.run.completed + self.run.failed).max(1);
        self.run.cpu.as_secs_f64() * 1000.0 / flows as f64
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
        let _ = writeln!(s, "\n{}, concurrency {concurrency}", self.kind.title());
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
        let _ = writeln!(
            s,
            "  RSA per flow     {} signed calls (gateway signs, emulator verifies) + {:.2} notifications (emulator signs; each may add a signed fetch)",
            self.kind.signed_calls(),
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
        steps_table(s, &self.steps);
    }

    fn json(&self, rsa: &bounds::RsaBounds, commits: f64, concurrency: usize) -> Value {
        json!({
            "concurrency": concurrency,
            "completed": self.run.completed,
            "failed": self.run.failed,
            "wall_s": self.run.wall.as_secs_f64(),
            "flows_per_s": self.flows_per_sec(),
            "cpu_ms_per_flow": self.cpu_ms_per_flow(),
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
        for f in &self.flows {
            f.human(&mut s, &self.rsa, self.commits, self.concurrency);
        }
        let f = &self.refused;
        let _ = writeln!(
            s,
            "\nRefused commands (Capture above the authorized amount), concurrency {}",
            self.concurrency
        );
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
        let q = &self.searched;
        let _ = writeln!(
            s,
            "\nSearches (maxCount 100) over the flows' orders, concurrency {}",
            self.concurrency
        );
        let _ = writeln!(
            s,
            "  {} in {:.2} s: {:.0} searches/s; errors {}",
            q.count,
            q.wall.as_secs_f64(),
            q.count as f64 / q.wall.as_secs_f64().max(1e-9),
            errors_text(&q.errors)
        );
        steps_table(&mut s, &q.steps);
        s
    }

    fn json(&self) -> Value {
        let rate = |r: &bounds::Rate| json!({"one_core": r.one_core, "all_cores": r.all_cores, "threads": r.threads});
        let mut report = json!({
            "machine": {"cores": self.threads, "load_before": self.load_before},
            "bounds": {
                "rsa_sign_per_s": rate(&self.rsa.sign),
                "rsa_verify_per_s": rate(&self.rsa.verify),
            },
            "refusals": {
                "count": self.refused.count,
                "concurrency": self.concurrency,
                "wall_s": self.refused.wall.as_secs_f64(),
                "per_s": self.refused.count as f64 / self.refused.wall.as_secs_f64().max(1e-9),
                "answers": self.refused.codes,
                "latency": self.refused.stats.as_ref().map(step_json),
            },
            "searches": {
                "count": self.searched.count,
                "concurrency": self.concurrency,
                "max_count": 100,
                "wall_s": self.searched.wall.as_secs_f64(),
                "per_s": self.searched.count as f64 / self.searched.wall.as_secs_f64().max(1e-9),
                "errors": self.searched.errors,
                "steps": self.searched.steps.iter().map(step_json).collect::<Vec<_>>(),
            },
        });
        report["bounds"][self.database.json_key()] = json!(self.commits);
        for f in &self.flows {
            report[f.kind.json_key()] = f.json(&self.rsa, self.commits, self.concurrency);
        }
        report
    }
}
