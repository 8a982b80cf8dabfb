//! Group commit: units of work of many requests share one transaction and one fsync.
//!
//! Every [`crate::Store::apply`] of the SQLite store hands its unit to one committer task. The
//! committer takes the units that are waiting (at most [`MAX_BATCH`]), applies each inside a
//! savepoint of its own, so that a unit that fails (a version conflict, a duplicate order) is
//! rolled back alone and told its error while the others go on, then commits once. Every caller
//! hears its result only after that commit (`synchronous = FULL`): nothing is reported before it
//! is on disk, and a unit is never partly stored. With one request at a time a batch is that one
//! unit: the committer adds no waiting of its own.
//!
//! SQLite has one writer at a time anyway; what the batch saves is the fsync per unit, which is
//! what a burst of refused commands (each appending its attempt to the history) used to queue on.

use super::apply_write;
use crate::{StoreError, Unit};
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// Most units committed together.
pub const MAX_BATCH: usize = 64;
/// Units waiting for the committer before `apply` waits to hand its own over.
const QUEUE: usize = 1024;

struct Job {
    unit: Unit,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The handle `apply` sends units through.
#[derive(Debug, Clone)]
pub struct Committer {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("unit", &self.unit).finish()
    }
}

impl Committer {
    /// Starts the committer task on the current runtime.
    pub fn start(pool: SqlitePool) -> Committer {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, queue));
        Committer { jobs }
    }

    /// Applies `unit` in the next batch; `None` when the committer is gone (its runtime ended),
    /// so the caller applies the unit itself.
    pub async fn apply(&self, unit: &Unit) -> Option<Result<(), StoreError>> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            unit: unit.clone(),
            reply,
        };
        self.jobs.send(job).await.ok()?;
        answer.await.ok()
    }
}

async fn run(pool: SqlitePool, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let results = commit(&pool, &jobs).await;
        for (job, result) in jobs.into_iter().zip(results) {
            // A caller that stopped waiting (its request was cut off) learns nothing; its unit
            // is stored or not exactly as the others of the batch.
            let _ = job.reply.send(result);
        }
    }
}

/// Runs one statement of the batch's transaction.
async fn statement(tx: &mut SqliteConnection, sql: &'static str) -> Result<(), StoreError> {
    sqlx::query(sql).execute(tx).await?;
    Ok(())
}

/// `error` for each of `n` jobs.
fn every(n: usize, error: StoreError) -> Vec<Result<(), StoreError>> {
    vec![Err(error); n]
}

/// Applies every job's unit in its own savepoint of one transaction and commits once; one result
/// per job, in order.
async fn commit(pool: &SqlitePool, jobs: &[Job]) -> Vec<Result<(), StoreError>> {
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(e) => return every(jobs.len(), e.into()),
    };
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Err(e) = statement(&mut tx, "SAVEPOINT unit").await {
            let _ = tx.rollback().await;
            return every(jobs.len(), e);
        }
        let mut written = Ok(());
        for write in &job.unit.writes {
            written = apply_write(&mut tx, &job.unit, write).await;
            if written.is_err() {
                break;
            }
        }
        // ROLLBACK TO keeps the savepoint open; RELEASE after it ends it with nothing kept.
        let undone = match &written {
            Ok(()) => Ok(()),
            Err(_) => statement(&mut tx, "ROLLBACK TO unit").await,
        };
        if let Err(e) = undone.and(statement(&mut tx, "RELEASE unit").await) {
            // The transaction cannot go on: nothing of the batch is stored.
            let _ = tx.rollback().await;
            return every(jobs.len(), e);
        }
        results.push(written);
    }
    match tx.commit().await {
        Ok(()) => results,
        // Whether the commit reached the disk is not known to SQLite's caller here; the units
        // that had succeeded are told the commit's error, the ones that had failed keep theirs.
        Err(e) => {
            let e: StoreError = e.into();
            results.into_iter().map(|r| r.and(Err(e.clone()))).collect()
        }
    }
}
