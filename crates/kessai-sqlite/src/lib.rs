//! SQLite on threads of its own: one hand-off per unit of work.
//!
//! Every call is one closure run on a thread that owns a SQLite connection, and one answer back:
//! the caller's task sends the closure and awaits its result, whatever the number of statements
//! inside. (A driver that sends each statement to its connection's thread pays a thread hand-off
//! per statement.) Statements prepared with `prepare_cached` are kept per connection.
//!
//! - **One writer** runs every write. SQLite lets one connection write at a time anyway. It takes
//!   the writes that are waiting (at most [`MAX_BATCH`]) and runs them in one `BEGIN IMMEDIATE`
//!   transaction, each inside a savepoint of its own, so that one that fails is rolled back alone
//!   and told its error while the others go on; then it commits once (group commit). Every caller
//!   hears its result only after that commit: with `synchronous = FULL` nothing is reported before
//!   it is on disk, and a write is never partly stored. With one write at a time a batch is that
//!   one write: the writer adds no waiting of its own.
//! - **Readers**, one connection each (`query_only`), take reads from one queue. In WAL mode they
//!   read the last committed state while the writer writes. With no readers (a database in
//!   memory) reads run on the writer.
//!
//! The threads end when the last handle is dropped. A closure that panics is rolled back and
//! answered with [`DbError::Panicked`]; the thread goes on.

mod migrate;

pub use migrate::{files_and_list, migrate, MigrateError, Migration};

use rusqlite::{Connection, OpenFlags};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Most writes committed together.
pub const MAX_BATCH: usize = 64;
/// Writes (and reads) waiting before a caller waits to hand its own over.
const QUEUE: usize = 1024;
/// Statements each connection keeps prepared.
const STATEMENT_CACHE: usize = 64;

/// What went wrong outside the caller's own closure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    #[error("the database thread has stopped")]
    Stopped,
    #[error("a database closure panicked")]
    Panicked,
    #[error("cannot start a database thread: {0}")]
    Spawn(String),
    #[error("the database would not take journal mode {wanted} (it is in {got} mode)")]
    JournalMode { wanted: &'static str, got: String },
    /// Opening, beginning, a savepoint or the commit of a batch failed.
    #[error("{0}")]
    Sqlite(Arc<rusqlite::Error>),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(Arc::new(e))
    }
}

/// Where the database is.
#[derive(Debug, Clone)]
pub enum Location {
    /// A file, in WAL mode.
    File(PathBuf),
    /// A database in this process's memory under this name (SQLite's `memdb`): no file, no fsync,
    /// gone when the last connection closes. Its journal is in memory; reads run on the writer.
    Memory(String),
}

/// SQLite's `synchronous` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// Every commit is on disk before it is reported.
    Full,
    /// In WAL mode a commit may be lost on power loss (not on a crash of the process).
    Normal,
    Off,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
            Synchronous::Off => "OFF",
        }
    }
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct Settings {
    pub location: Location,
    pub synchronous: Synchronous,
    /// Reader threads (ignored in memory: none).
    pub readers: usize,
    /// How long a connection waits for another process's lock on the file.
    pub busy_timeout: Duration,
    /// `PRAGMA foreign_keys`.
    pub foreign_keys: bool,
}

impl Settings {
    /// A file in WAL mode with `synchronous`, one reader per core (2 to 8), a 10 s busy timeout.
    pub fn file(path: impl Into<PathBuf>, synchronous: Synchronous) -> Settings {
        Settings {
            location: Location::File(path.into()),
            synchronous,
            readers: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2)
                .clamp(2, 8),
            busy_timeout: Duration::from_secs(10),
            foreign_keys: true,
        }
    }

    /// Opens one connection with these settings.
    pub fn connect(&self, read_only: bool) -> Result<Connection, DbError> {
        let conn = match &self.location {
            Location::File(path) => Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?,
            Location::Memory(name) => Connection::open_with_flags(
                format!("file:/{name}?vfs=memdb"),
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )?,
        };
        conn.busy_timeout(self.busy_timeout)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let wanted = match self.location {
            Location::File(_) => "wal",
            Location::Memory(_) => "memory",
        };
        let mode: String =
            conn.query_row(&format!("PRAGMA journal_mode = {wanted}"), [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case(wanted) {
            return Err(DbError::JournalMode { wanted, got: mode });
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {}; PRAGMA foreign_keys = {};",
            self.synchronous.pragma(),
            if self.foreign_keys { "ON" } else { "OFF" }
        ))?;
        if read_only {
            conn.execute_batch("PRAGMA query_only = ON;")?;
        }
        Ok(conn)
    }
}

/// One write: run inside the batch's transaction, then told the commit's outcome.
trait WriteJob: Send {
    /// Runs the write; `false` if it failed (its savepoint is then rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller: the write's own error, or else the commit's outcome.
    fn finish(self: Box<Self>, commit: Result<(), DbError>);
}

struct Typed<T, E, F> {
    work: Option<F>,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> WriteJob for Typed<T, E, F>
where
    T: Send,
    E: From<DbError> + Send,
    F: FnOnce(&Connection) -> Result<T, E> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(DbError::Panicked.into()));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), DbError>) {
        let answer = match self.result {
            // Never run: the batch failed before its turn.
            None => Err(commit.err().unwrap_or(DbError::Stopped).into()),
            Some(result) => result.and_then(|value| commit.map(|()| value).map_err(E::from)),
        };
        // A caller that stopped waiting (its request was cut off) learns nothing; its write is
        // stored or not exactly as the others of the batch.
        let _ = self.reply.send(answer);
    }
}

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// A handle to the database's threads.
#[derive(Clone)]
pub struct Db {
    writes: flume::Sender<Box<dyn WriteJob>>,
    /// `None` in memory: reads go to the writer.
    reads: Option<flume::Sender<ReadJob>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("readers", &self.reads.is_some())
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the database with `settings` on the writer's thread, runs `prepare` on the writer's
    /// connection before anything else (the migrations), then starts the readers. Each commit of
    /// the writer that changed at least one row adds one to `commits`, if given (a batch of
    /// writes that found nothing to change, such as a poll for due work, is not counted).
    pub async fn start<E>(
        settings: Settings,
        commits: Option<Arc<AtomicU64>>,
        prepare: impl FnOnce(&Connection) -> Result<(), E> + Send + 'static,
    ) -> Result<Db, E>
    where
        E: From<DbError> + Send + 'static,
    {
        let (writes, queue) = flume::bounded::<Box<dyn WriteJob>>(QUEUE);
        let (ready, started) = oneshot::channel::<Result<(), E>>();
        let writer_settings = settings.clone();
        std::thread::Builder::new()
            .name("kessai-sqlite-writer".into())
            .spawn(move || {
                let conn = match writer_settings.connect(false) {
                    Ok(conn) => conn,
                    Err(e) => {
                        let _ = ready.send(Err(e.into()));
                        return;
                    }
                };
                if let Err(e) = prepare(&conn) {
                    let _ = ready.send(Err(e));
                    return;
                }
                let _ = ready.send(Ok(()));
                write_loop(&conn, &queue, commits.as_deref());
            })
            .map_err(|e| DbError::Spawn(e.to_string()))?;
        started.await.map_err(|_| DbError::Stopped)??;

        let readers = match settings.location {
            Location::File(_) => settings.readers.max(1),
            Location::Memory(_) => 0,
        };
        if readers == 0 {
            return Ok(Db {
                writes,
                reads: None,
            });
        }
        let (reads, read_queue) = flume::bounded::<ReadJob>(QUEUE);
        for n in 0..readers {
            let conn = settings.connect(true)?;
            let queue = read_queue.clone();
            std::thread::Builder::new()
                .name(format!("kessai-sqlite-reader-{n}"))
                .spawn(move || {
                    while let Ok(job) = queue.recv() {
                        job(&conn);
                    }
                })
                .map_err(|e| DbError::Spawn(e.to_string()))?;
        }
        Ok(Db {
            writes,
            reads: Some(reads),
        })
    }

    /// Runs `work` on the writer, in the next batch's transaction; its result once that
    /// transaction is committed. An error from `work` rolls back what it wrote, and only that.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn WriteJob> = Box::new(Typed {
            work: Some(work),
            result: None,
            reply,
        });
        self.writes
            .send_async(job)
            .await
            .map_err(|_| DbError::Stopped)?;
        answer.await.map_err(|_| DbError::Stopped)?
    }

    /// Runs `work` on a reader: it sees the last committed state and cannot write.
    pub async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let Some(reads) = &self.reads else {
            return self.write(work).await;
        };
        let (reply, answer) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let result = catch_unwind(AssertUnwindSafe(|| work(conn)))
                .unwrap_or_else(|_| Err(DbError::Panicked.into()));
            let _ = reply.send(result);
        });
        reads.send_async(job).await.map_err(|_| DbError::Stopped)?;
        answer.await.map_err(|_| DbError::Stopped)?
    }
}

fn write_loop(
    conn: &Connection,
    queue: &flume::Receiver<Box<dyn WriteJob>>,
    commits: Option<&AtomicU64>,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let changes = conn.total_changes();
        let commit = run_batch(conn, &mut batch);
        if let Some(commits) = commits {
            if commit.is_ok() && conn.total_changes() != changes {
                commits.fetch_add(1, Ordering::Relaxed);
            }
        }
        for job in batch {
            job.finish(commit.clone());
        }
    }
}

/// Runs every job of `batch` in its own savepoint of one transaction and commits once.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn WriteJob>]) -> Result<(), DbError> {
    let ran = (|| {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for job in batch.iter_mut() {
            conn.execute_batch("SAVEPOINT unit")?;
            if !job.run(conn) {
                // ROLLBACK TO keeps the savepoint open; RELEASE after it ends it, nothing kept.
                conn.execute_batch("ROLLBACK TO unit")?;
            }
            conn.execute_batch("RELEASE unit")?;
        }
        conn.execute_batch("COMMIT")
    })();
    if ran.is_err() && !conn.is_autocommit() {
        // The transaction cannot go on: nothing of the batch is stored.
        let _ = conn.execute_batch("ROLLBACK");
    }
    // Whether a failed COMMIT reached the disk is not known to SQLite's caller; the writes that
    // had succeeded are told the commit's error, the ones that had failed keep theirs.
    Ok(ran?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error(transparent)]
        Db(#[from] DbError),
        #[error(transparent)]
        Sqlite(#[from] rusqlite::Error),
        #[error("refused")]
        Refused,
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kessai-sqlite-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let _ = std::fs::create_dir_all(&dir);
        dir.join("t.sqlite")
    }

    async fn open(location: Location) -> (Db, Arc<AtomicU64>) {
        let commits = Arc::new(AtomicU64::new(0));
        let settings = Settings {
            location,
            ..Settings::file("unused", Synchronous::Full)
        };
        let db = Db::start(settings, Some(commits.clone()), |c| {
            c.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")?;
            Ok::<(), TestError>(())
        })
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
        (db, commits)
    }

    async fn count(db: &Db) -> i64 {
        db.read(|c| Ok::<i64, TestError>(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap_or(-1)
    }

    /// Writes waiting together share a commit; one that fails is rolled back alone and told its
    /// own error, the others are stored.
    #[tokio::test]
    async fn a_burst_shares_commits_and_a_failure_stays_its_own() {
        let (db, commits) = open(Location::File(temp("burst"))).await;
        let writes = (0..200).map(|n: i64| {
            let db = db.clone();
            async move {
                db.write(move |c| {
                    c.execute("INSERT INTO t(n) VALUES (?)", [n])?;
                    if n % 50 == 7 {
                        return Err(TestError::Refused);
                    }
                    Ok(())
                })
                .await
            }
        });
        let results = futures_join(writes).await;
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(TestError::Refused)))
            .count();
        assert_eq!(refused, 4);
        assert!(results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(TestError::Refused))));
        assert_eq!(count(&db).await, 196, "the refused writes left nothing");
        let used = commits.load(Ordering::Relaxed);
        assert!(used < 200 / 4, "200 writes took {used} commits");
    }

    /// A read cannot write, and a panicking closure is answered with an error while the threads
    /// go on.
    #[tokio::test]
    async fn readers_cannot_write_and_a_panic_is_contained() {
        let (db, _) = open(Location::File(temp("readonly"))).await;
        let written = db
            .read(|c| Ok::<usize, TestError>(c.execute("INSERT INTO t(n) VALUES (1)", [])?))
            .await;
        assert!(written.is_err(), "a reader wrote: {written:?}");
        let panicked: Result<(), TestError> = db
            .write(|c| {
                c.execute("INSERT INTO t(n) VALUES (2)", [])?;
                #[allow(clippy::panic)]
                {
                    panic!("boom")
                }
            })
            .await;
        assert!(matches!(panicked, Err(TestError::Db(DbError::Panicked))));
        db.write(|c| Ok::<usize, TestError>(c.execute("INSERT INTO t(n) VALUES (3)", [])?))
            .await
            .unwrap_or_else(|e| panic!("after the panic: {e}"));
        assert_eq!(
            count(&db).await,
            1,
            "only the write after the panic is stored"
        );
    }

    /// A commit is counted when its batch changed a row: a write that finds nothing to change (a
    /// poll) and a read count nothing.
    #[tokio::test]
    async fn only_commits_that_change_rows_are_counted() {
        let (db, commits) = open(Location::File(temp("count"))).await;
        let before = commits.load(Ordering::Relaxed);
        db.write(|c| Ok::<usize, TestError>(c.execute("DELETE FROM t WHERE n = 1", [])?))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        count(&db).await;
        assert_eq!(commits.load(Ordering::Relaxed), before);
        db.write(|c| Ok::<usize, TestError>(c.execute("INSERT INTO t(n) VALUES (1)", [])?))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(commits.load(Ordering::Relaxed), before + 1);
    }

    /// In memory, reads run on the writer and see its commits.
    #[tokio::test]
    async fn memory_reads_run_on_the_writer() {
        let (db, _) = open(Location::Memory(format!("t-{}", std::process::id()))).await;
        db.write(|c| Ok::<usize, TestError>(c.execute("INSERT INTO t(n) VALUES (1)", [])?))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(count(&db).await, 1);
    }

    async fn futures_join<F: std::future::Future + Send + 'static>(
        futures: impl Iterator<Item = F>,
    ) -> Vec<F::Output>
    where
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futures.map(tokio::spawn).collect();
        let mut out = Vec::new();
        for h in handles {
            match h.await {
                Ok(v) => out.push(v),
                Err(e) => panic!("a task failed: {e}"),
            }
        }
        out
    }
}
