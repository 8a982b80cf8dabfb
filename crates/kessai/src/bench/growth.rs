//! Growth runs: a data directory bulk-loaded with historical orders (direct SQL in large
//! transactions, in the gateway's own schema, not through the API), how long `kessai serve` takes
//! to answer on it and how much memory it then holds, before the same flows run on it.

use anyhow::{anyhow, Context};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use std::path::Path;
use std::time::{Duration, Instant};

/// Orders written per transaction.
const CHUNK: u64 = 100_000;
/// Seconds between two historical orders; the newest is an hour before the load.
const SPACING: u64 = 10;

/// What the loader wrote.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    pub orders: u64,
    /// Rows of the order history (an Authorize per order, a Capture and a Refund for some).
    pub history: u64,
    pub took: Duration,
}

impl Loaded {
    pub fn rows_per_sec(&self) -> f64 {
        (self.orders + self.history) as f64 / self.took.as_secs_f64().max(1e-9)
    }
}

/// Writes `n` historical orders of the demo merchant (made here, and named in the settings as
/// `kessai serve` names it, so the gateway started later uses it) into `gateway.sqlite` in
/// `dir`: ids `hist-0000001`…, one every ten seconds up to an hour ago, in four states
/// (Captured, Authorized or, if older than 29 days, Expired, Canceled, PartiallyRefunded), 10 %
/// of them live; every 100th a recurring
/// consent. Each order has its history: Authorize, then Capture and Refund where its state says so.
pub async fn load(dir: &Path, n: u64) -> anyhow::Result<Loaded> {
    // The store makes the file and its schema (its migrations) and the merchant.
    let store = kessai::open_gateway_store(None, dir).await?;
    let (clock, ids) = kessai::system_sources();
    let merchant = kessai::new_merchant("Demo merchant", clock.as_ref(), ids.as_ref())?;
    store.insert_merchant(&merchant).await?;
    let claimed = store
        .claim_setting("demo_merchant", merchant.ccid.as_str())
        .await?;
    anyhow::ensure!(
        claimed == merchant.ccid.as_str(),
        "the data directory already has a demo merchant"
    );
    drop(store);

    let mut conn = SqliteConnectOptions::new()
        .filename(dir.join("gateway.sqlite"))
        .journal_mode(SqliteJournalMode::Wal)
        // A bulk load: nothing is reported before it ends, so no fsync per transaction.
        .synchronous(SqliteSynchronous::Off)
        .pragma("cache_size", "-262144")
        .pragma("temp_store", "MEMORY")
        // Each chunk takes seconds by design: no "slow statement" warnings.
        .disable_statement_logging()
        .connect()
        .await
        .context("opening the gateway's file to load it")?;
    let newest = time::OffsetDateTime::now_utc().unix_timestamp() - 3600;
    let first = u64::try_from(newest)? - n * SPACING;
    let ccid = merchant.ccid.as_str();
    let expired_before = newest - 29 * 24 * 3600;
    let started = Instant::now();
    // The secondary indexes are dropped and made again after the load: one sort per index
    // instead of a B-tree insert per row. Read from the schema, so they are whatever the
    // store's migrations made.
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
           AND tbl_name IN ('orders', 'order_history')",
    )
    .fetch_all(&mut conn)
    .await?;
    for (name, _) in &indexes {
        sqlx::query(&format!("DROP INDEX \"{name}\""))
            .execute(&mut conn)
            .await?;
    }
    let mut history = 0;
    let mut lo = 1;
    while lo <= n {
        let hi = (lo + CHUNK - 1).min(n);
        let mut tx = conn.begin().await?;
        sqlx::query(ORDERS)
            .bind(ccid)
            .bind(first as i64)
            .bind(SPACING as i64)
            .bind(lo as i64)
            .bind(hi as i64)
            .bind(expired_before)
            .execute(&mut *tx)
            .await?;
        for (command, offset, states) in HISTORY {
            let sql = format!(
                "INSERT INTO order_history(merchant_ccid, order_id, command, request, mstatus,
                   v_result_code, message, amount, at)
                 SELECT merchant_ccid, order_id, '{command}', '{{}}', 'success', 'S000000000000000',
                   'Success', CASE '{command}' WHEN 'Refund' THEN refunded ELSE amount END,
                   strftime('%Y-%m-%dT%H:%M:%SZ', unixepoch(created_at) + {offset}, 'unixepoch')
                 FROM orders
                 WHERE merchant_ccid = ?1 AND order_id BETWEEN printf('hist-%07d', ?2)
                   AND printf('hist-%07d', ?3) AND state IN ({states})"
            );
            history += sqlx::query(&sql)
                .bind(ccid)
                .bind(lo as i64)
                .bind(hi as i64)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        lo = hi + 1;
    }
    for (_, sql) in &indexes {
        sqlx::query(sql).execute(&mut conn).await?;
    }
    let took = started.elapsed();
    // Start-up then reads a file as a stopped `kessai serve` leaves it.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(Loaded {
        orders: n,
        history,
        took,
    })
}

/// The orders `?4` to `?5`: `?1` merchant, created `?2 + i * ?3` (Unix seconds). Amounts in yen.
/// An authorization made before `?6` has expired (as Amazon's do after 30 days, and as the
/// gateway's recovery worker would have recorded), so no historical order is due for it.
const ORDERS: &str = "WITH RECURSIVE k(i) AS (SELECT ?4 UNION ALL SELECT i + 1 FROM k WHERE i < ?5)
INSERT INTO orders(merchant_ccid, order_id, public_ref, dummy, state, amount, authorized, captured,
  refunded, with_capture, success_url, cancel_url, error_url, checkout_session_id,
  charge_permission_id, charge_id, version, created_at, updated_at, accounting_type,
  consent_state, consent_amount, frequency_unit, frequency_value, consent_auth_type)
SELECT ?1, printf('hist-%07d', i), printf('hist-ref-%07d', i), i % 10 <> 0,
  CASE i % 4 WHEN 0 THEN 'Captured' WHEN 2 THEN 'Canceled' WHEN 3 THEN 'PartiallyRefunded'
    WHEN 1 THEN CASE WHEN ?2 + i * ?3 > ?6 THEN 'Authorized' ELSE 'Expired' END END,
  1000 + i % 5000, 1000 + i % 5000,
  CASE WHEN i % 4 IN (0, 3) THEN 1000 + i % 5000 ELSE 0 END,
  CASE WHEN i % 4 = 3 THEN 100 ELSE 0 END,
  0, 'https://shop.example/ok', 'https://shop.example/cancel', 'https://shop.example/error',
  printf('hist-cs-%07d', i), printf('S03-hist-%07d', i), printf('S03-hist-%07d-C01', i), 1,
  strftime('%Y-%m-%dT%H:%M:%SZ', ?2 + i * ?3, 'unixepoch'),
  strftime('%Y-%m-%dT%H:%M:%SZ', ?2 + i * ?3 + 7200, 'unixepoch'),
  i % 100 = 0,
  CASE WHEN i % 100 = 0 THEN 'Active' END,
  CASE WHEN i % 100 = 0 THEN 1000 + i % 5000 END,
  CASE WHEN i % 100 = 0 THEN 'Month' END,
  CASE WHEN i % 100 = 0 THEN 1 END,
  CASE WHEN i % 100 = 0 THEN 1 END
FROM k";

/// History rows: command, seconds after the order, the states whose orders have one.
const HISTORY: [(&str, u64, &str); 3] = [
    (
        "Authorize",
        0,
        "'Captured', 'Authorized', 'Expired', 'Canceled', 'PartiallyRefunded'",
    ),
    ("Capture", 3600, "'Captured', 'PartiallyRefunded'"),
    ("Refund", 7200, "'PartiallyRefunded'"),
];

/// One start of `kessai serve` on a data directory.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    /// From the process's start until `/health` answered.
    pub to_health: Duration,
    /// Resident memory a second after that, in KiB (`VmRSS`).
    pub rss_kib: u64,
}

/// A free port on the loopback (bound and let go: another process could take it in between).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))
}

/// Starts `kessai serve` (this very executable) on `dir` with its defaults but the ports, times
/// how long until the gateway's `/health` answers, reads its memory a second later, and stops it.
pub async fn serve_start(dir: &Path) -> anyhow::Result<Start> {
    let exe = std::env::current_exe().context("finding the kessai executable")?;
    let port = free_port()?;
    let sandbox_port = free_port()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let health = format!("http://127.0.0.1:{port}/health");
    let started = Instant::now();
    let child = std::process::Command::new(exe)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--sandbox-listen", &format!("127.0.0.1:{sandbox_port}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting kessai serve")?;
    let mut child = Stopped(child);
    let pid = child.0.id();
    let to_health = loop {
        if let Some(status) = child.0.try_wait()? {
            return Err(anyhow!("kessai serve on {} ended: {status}", dir.display()));
        }
        if let Ok(r) = http.get(&health).send().await {
            if r.status().is_success() {
                break started.elapsed();
            }
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(anyhow!("kessai serve did not answer /health in 120 s"));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_kib = rss_kib(pid)?;
    drop(child);
    Ok(Start { to_health, rss_kib })
}

/// A child process stopped (killed and reaped) when this is dropped, whatever happened.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Bytes of `gateway.sqlite` (and its WAL) in `dir`.
pub fn gateway_file_bytes(dir: &Path) -> u64 {
    ["gateway.sqlite", "gateway.sqlite-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}
