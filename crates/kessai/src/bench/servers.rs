//! The gateway and the emulator the flows run against, each on a runtime of its own (threads named
//! after it, see [`super::cpu`]), the gateway reaching the emulator over HTTP as it would reach
//! Amazon Pay.

use super::cpu;
use anyhow::Context;
use std::collections::BTreeSet;
use std::path::Path;

/// Which Amazon the gateway talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amazon {
    /// The emulator as `kessai serve` runs it: every signature verified, records in its SQLite
    /// file in the data directory.
    Emulator,
    /// A null Amazon: the same emulator without signature checks, its records in memory (no
    /// file, no fsync). The gateway still signs every call.
    Null,
}

impl Amazon {
    pub fn describe(self) -> &'static str {
        match self {
            Amazon::Emulator => "the built-in emulator (signatures verified, records in its SQLite file)",
            Amazon::Null => {
                "NULL: the emulator checks no signature and keeps its records in memory (no file, no fsync); the gateway still signs every call"
            }
        }
    }

    pub fn json_name(self) -> &'static str {
        match self {
            Amazon::Emulator => "emulator",
            Amazon::Null => "null",
        }
    }
}

/// A runtime of its own, shut down without waiting when dropped (it may be dropped where
/// blocking is not allowed).
pub struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    /// A multi-threaded runtime of one worker per core, its threads named `name`.
    pub fn new(name: &str) -> anyhow::Result<OwnRuntime> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(name)
            .enable_all()
            .build()
            .with_context(|| format!("starting the {name} runtime"))?;
        Ok(OwnRuntime(Some(rt)))
    }

    /// A runtime built elsewhere, shut down the same way.
    pub fn from_runtime(rt: tokio::runtime::Runtime) -> OwnRuntime {
        OwnRuntime(Some(rt))
    }

    pub fn handle(&self) -> anyhow::Result<&tokio::runtime::Handle> {
        self.0
            .as_ref()
            .map(tokio::runtime::Runtime::handle)
            .context("the runtime was shut down")
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A running emulator: its URL, its runtime, and the threads born while it started.
pub struct RunningEmulator {
    pub url: url::Url,
    pub born: BTreeSet<u64>,
    pub runtime: OwnRuntime,
}

/// Starts the emulator (`amazon` says which) on a runtime of its own; its file, if any, is
/// `sandbox.sqlite` in `data_dir`.
pub async fn start_emulator(amazon: Amazon, data_dir: &Path) -> anyhow::Result<RunningEmulator> {
    let runtime = OwnRuntime::new(cpu::EMULATOR_THREADS)?;
    let before = cpu::thread_ids()?;
    let config = kessai_sandbox::SandboxConfig {
        listen: "127.0.0.1:0".parse()?,
        database: data_dir.join("sandbox.sqlite"),
        public_url: None,
        tls: kessai_sandbox::TlsSetting::Off,
        test_helpers: Some(kessai_sandbox::TestHelpers::Open),
        limits: kessai_sandbox::Limits::default(),
    };
    // Bound inside its runtime, so its sockets and pools belong to that runtime.
    let bound = runtime
        .handle()?
        .spawn(async move {
            let sources = kessai_sandbox::Sources::system();
            match amazon {
                Amazon::Emulator => kessai_sandbox::Sandbox::bind_with(config, sources).await,
                Amazon::Null => {
                    kessai_sandbox::Sandbox::bind_null_for_benchmark(config, sources).await
                }
            }
        })
        .await?
        .context("starting the emulator")?;
    let url = url::Url::parse(bound.base_url())?;
    runtime.handle()?.spawn(async move {
        if let Err(e) = bound.serve().await {
            tracing::error!(%e, "the benchmarked emulator stopped");
        }
    });
    let born = cpu::thread_ids()?
        .difference(&before)
        .copied()
        .collect::<BTreeSet<_>>();
    Ok(RunningEmulator { url, born, runtime })
}
