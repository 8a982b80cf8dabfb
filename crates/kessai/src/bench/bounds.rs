//! The machine's bounds, measured in the same run as the flows: RSA signatures and verifications
//! with the code Kessai and its emulator use, and SQLite commits with the gateway's settings.

use anyhow::Context;
use kessai_amazonpay::signing::{self, Algorithm};
use kessai_amazonpay::PrivateKey;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Operations per second on one thread and on `threads` threads at once.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub one_core: f64,
    pub all_cores: f64,
    pub threads: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct RsaBounds {
    /// Signatures as the gateway makes them (ring, PSS-SHA256, salt 32).
    pub sign: Rate,
    /// Verifications as the emulator makes them (`PublicKey::verify_pss_sha256`, salt 32).
    pub verify: Rate,
}

/// A string to sign of the size Amazon Pay calls have (a canonical request's hash in it).
fn sample_string_to_sign() -> String {
    let canonical = "POST\n/sandbox/v2/checkoutSessions\n\naccept:application/json\n\
content-type:application/json\nx-amz-pay-date:20250101T000000Z\nx-amz-pay-host:pay-api.example\n\
x-amz-pay-region:jp\n\naccept;content-type;x-amz-pay-date;x-amz-pay-host;x-amz-pay-region\n\
0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
    signing::string_to_sign(Algorithm::V2, canonical)
}

/// Runs `op` on `threads` threads for `time` and returns operations per second.
fn rate_on<F>(threads: usize, time: Duration, op: F) -> anyhow::Result<f64>
where
    F: Fn() -> anyhow::Result<()> + Sync,
{
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    while !stop.load(Ordering::Relaxed) {
                        op()?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        std::thread::sleep(time);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a bench thread panicked")))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(done.load(Ordering::Relaxed) as f64 / secs)
}

fn rate<F>(threads: usize, time: Duration, op: F) -> anyhow::Result<Rate>
where
    F: Fn() -> anyhow::Result<()> + Sync,
{
    Ok(Rate {
        one_core: rate_on(1, time, &op)?,
        all_cores: rate_on(threads, time, &op)?,
        threads,
    })
}

pub fn rsa(threads: usize, time: Duration) -> anyhow::Result<RsaBounds> {
    let key = PrivateKey::generate().context("generating an RSA-2048 key")?;
    let text = sample_string_to_sign();
    let signature = key
        .sign_pss_sha256(text.as_bytes())
        .context("signing the sample")?;
    let public = key.public_key().clone();
    anyhow::ensure!(
        signing::verify(&public, Algorithm::V2, &text, &signature),
        "the sample signature does not verify"
    );
    let sign = rate(threads, time, || {
        signing::sign(&key, &text)?;
        Ok(())
    })?;
    let verify = rate(threads, time, || {
        anyhow::ensure!(
            signing::verify(&public, Algorithm::V2, &text, &signature),
            "a verification failed"
        );
        Ok(())
    })?;
    Ok(RsaBounds { sign, verify })
}

/// Single-row inserts, each its own transaction, in WAL with `synchronous = FULL` (the gateway's
/// settings, and its SQLite library), in a fresh file under `dir`: commits per second.
pub async fn sqlite_commits(dir: &Path, time: Duration) -> anyhow::Result<f64> {
    let path = dir.join("commits.sqlite");
    tokio::task::spawn_blocking(move || {
        let conn =
            rusqlite::Connection::open(&path).context("opening the commit bench database")?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
        )?;
        let mut insert = conn.prepare("INSERT INTO rows (body) VALUES (?)")?;
        let started = Instant::now();
        let mut commits = 0u64;
        while started.elapsed() < time {
            insert.execute(["a history row of about this size, as the gateway writes one"])?;
            commits += 1;
        }
        Ok(commits as f64 / started.elapsed().as_secs_f64())
    })
    .await?
}

/// As [`sqlite_commits`], on PostgreSQL at `url` (in the bench's own schema, which the caller
/// drops): commits per second of single-row inserts.
pub async fn postgres_commits(url: &str, time: Duration) -> anyhow::Result<f64> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .context("connecting to --database-url")?;
    sqlx::query("CREATE TABLE bench_rows (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&mut conn)
        .await?;
    let started = Instant::now();
    let mut commits = 0u64;
    while started.elapsed() < time {
        sqlx::query("INSERT INTO bench_rows (body) VALUES ($1)")
            .bind("a history row of about this size, as the gateway writes one")
            .execute(&mut conn)
            .await?;
        commits += 1;
    }
    Ok(commits as f64 / started.elapsed().as_secs_f64())
}

/// A schema of the bench's own on the PostgreSQL database at `url`, so a run never reads or
/// writes anything else there; `url` with that schema as the search path.
pub struct BenchSchema {
    server: String,
    pub name: String,
    pub url: String,
}

impl BenchSchema {
    pub async fn create(server: &str) -> anyhow::Result<BenchSchema> {
        use sqlx::{Connection, Executor};
        let name = format!(
            "kessai_bench_{}_{}",
            std::process::id(),
            kessai::random_hex(4)
        );
        let mut conn = sqlx::PgConnection::connect(server)
            .await
            .context("connecting to --database-url")?;
        conn.execute(format!("CREATE SCHEMA {name}").as_str())
            .await
            .context("creating the bench's schema (the user needs CREATE on the database)")?;
        let sep = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{sep}options=-c%20search_path%3D{name}");
        Ok(BenchSchema {
            server: server.to_owned(),
            name,
            url,
        })
    }

    pub async fn drop_schema(&self) -> anyhow::Result<()> {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::PgConnection::connect(&self.server).await?;
        conn.execute("SET lock_timeout = '10s'").await?;
        conn.execute(format!("DROP SCHEMA {} CASCADE", self.name).as_str())
            .await?;
        Ok(())
    }
}
