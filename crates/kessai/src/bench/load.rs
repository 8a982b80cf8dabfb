//! The load generator: a runtime of its own (threads named [`LOAD_THREADS`]), its worker threads
//! optionally pinned to chosen cores so that it does not run on the cores it measures, and an
//! open-loop driver that starts requests on a fixed schedule whatever the server does.

use anyhow::{anyhow, Context};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The name of the load generator's runtime threads.
pub const LOAD_THREADS: &str = "kessai-load";

/// A request that starts more than this after its scheduled time is counted as late.
pub const LATE: Duration = Duration::from_millis(1);

/// The load generator's runtime and where its threads may run.
pub struct LoadRuntime {
    rt: super::servers::OwnRuntime,
    /// The cores asked for with `--pin-load`, or none.
    pub pinned: Vec<usize>,
    pub worker_threads: usize,
    /// The cores the runtime's threads may run on, read back from each thread after pinning.
    affinity: Arc<Mutex<BTreeSet<usize>>>,
}

impl LoadRuntime {
    /// A runtime of one worker per core in `pin` (each pinned to one of them in turn, blocking
    /// threads too), or of one worker per core of the machine, unpinned, when `pin` is empty.
    pub fn new(pin: &[usize]) -> anyhow::Result<LoadRuntime> {
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let allowed: BTreeSet<usize> = cores.iter().map(|c| c.id).collect();
        for c in pin {
            anyhow::ensure!(
                allowed.contains(c),
                "--pin-load {c}: this process may run on cores {allowed:?} only"
            );
        }
        let pin: Vec<usize> = pin
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let worker_threads = if pin.is_empty() {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            pin.len()
        };
        let affinity: Arc<Mutex<BTreeSet<usize>>> = Arc::default();
        let next = Arc::new(AtomicUsize::new(0));
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder
            .worker_threads(worker_threads)
            .thread_name(LOAD_THREADS)
            .enable_all();
        let (seen, targets) = (affinity.clone(), pin.clone());
        builder.on_thread_start(move || {
            if !targets.is_empty() {
                let core = targets[next.fetch_add(1, Ordering::Relaxed) % targets.len()];
                if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                    tracing::warn!("cannot pin a load generator thread to core {core}");
                }
            }
            if let (Some(ids), Ok(mut seen)) = (core_affinity::get_core_ids(), seen.lock()) {
                seen.extend(ids.iter().map(|c| c.id));
            }
        });
        let rt = builder.build().context("starting the load generator")?;
        Ok(LoadRuntime {
            rt: super::servers::OwnRuntime::from_runtime(rt),
            pinned: pin,
            worker_threads,
            affinity,
        })
    }

    /// Runs `fut` on the load generator's runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = anyhow::Result<T>> + Send + 'static,
    ) -> anyhow::Result<T> {
        self.rt.handle()?.spawn(fut).await?
    }

    /// The cores its threads may run on, as read back from them.
    pub fn affinity(&self) -> Vec<usize> {
        self.affinity
            .lock()
            .map(|a| a.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Where the load generator ran, for the report.
    pub fn describe(&self) -> String {
        let on = self.affinity();
        if self.pinned.is_empty() {
            format!(
                "not pinned: {} worker threads, free to run on cores {on:?} (the servers' cores too)",
                self.worker_threads
            )
        } else {
            format!(
                "pinned with --pin-load: {} worker thread(s), one per core of {:?} (affinity read back: {on:?}); the servers are not pinned",
                self.worker_threads, self.pinned
            )
        }
    }
}

/// What an open-loop run did besides its latencies.
#[derive(Debug, Clone, Copy)]
pub struct OpenRun {
    /// The rate asked for, per second.
    pub rate: f64,
    pub count: u64,
    /// Requests started per second, from the first scheduled start to the last actual start.
    pub achieved: f64,
    /// Requests that started more than [`LATE`] after their scheduled time.
    pub late: u64,
    pub max_start_lag: Duration,
    /// From the first scheduled start to the last answer.
    pub wall: Duration,
}

/// Starts `count` requests at `rate` per second on a fixed schedule, each in a task of its own
/// whether or not the earlier ones have answered (open loop); `request(i)` is the i-th. Returns
/// each request's latency measured from its scheduled start, so a stalled server shows as
/// latency rather than as fewer requests, and the run's figures. Must run on a runtime (the load
/// generator's): the schedule is kept by a blocking thread of it, which sleeps to each start.
pub async fn open_loop<F, Fut>(
    rate: f64,
    count: u64,
    request: F,
) -> anyhow::Result<(Vec<Duration>, OpenRun)>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    anyhow::ensure!(
        rate.is_finite() && rate > 0.0,
        "--rate must be above 0, not {rate}"
    );
    let handle = tokio::runtime::Handle::current();
    let period = Duration::from_secs_f64(1.0 / rate);
    let t0 = Instant::now() + Duration::from_millis(5);
    let request = Arc::new(request);
    let tasks = tokio::task::spawn_blocking(move || {
        let mut tasks = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for i in 0..count {
            let scheduled = t0 + period.mul_f64(i as f64);
            let now = Instant::now();
            if scheduled > now {
                std::thread::sleep(scheduled - now);
            }
            let request = request.clone();
            tasks.push(handle.spawn(async move {
                let lag = scheduled.elapsed();
                request(i).await;
                (lag, scheduled.elapsed())
            }));
        }
        tasks
    })
    .await?;
    let mut latencies = Vec::with_capacity(tasks.len());
    let (mut late, mut max_start_lag, mut last_start) = (0, Duration::ZERO, Duration::ZERO);
    for (i, task) in tasks.into_iter().enumerate() {
        let (lag, took) = task
            .await
            .map_err(|e| anyhow!("a request task failed: {e}"))?;
        if lag > LATE {
            late += 1;
        }
        max_start_lag = max_start_lag.max(lag);
        last_start = last_start.max(period.mul_f64(i as f64) + lag);
        latencies.push(took);
    }
    let wall = t0.elapsed();
    let achieved = if count > 1 {
        (count - 1) as f64 / last_start.as_secs_f64().max(1e-9)
    } else {
        rate
    };
    Ok((
        latencies,
        OpenRun {
            rate,
            count,
            achieved,
            late,
            max_start_lag,
            wall,
        },
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_open_loop_starts_requests_without_waiting_for_answers() {
        // Each request takes 50 ms and they are scheduled 5 ms apart: a closed loop of one
        // would never have two in flight.
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (now, max) = (in_flight.clone(), most.clone());
        let (latencies, run) = open_loop(200.0, 20, move |_| {
            let (now, max) = (now.clone(), max.clone());
            async move {
                max.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                now.fetch_sub(1, Ordering::SeqCst);
            }
        })
        .await
        .unwrap();
        assert_eq!(latencies.len(), 20);
        assert_eq!(run.count, 20);
        assert!(latencies.iter().all(|l| *l >= Duration::from_millis(50)));
        assert!(most.load(Ordering::SeqCst) > 1, "{run:?}");
    }

    #[test]
    fn pinning_to_a_core_this_process_may_not_use_is_refused() {
        assert!(LoadRuntime::new(&[usize::MAX / 2]).is_err());
    }
}
