//! The embedded store: one SQLite file in the data directory, no setup.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use super::{SCHEMA, SigningKeyRecord, Store, StoreError, TokenFilter, TokenRecord};

/// SQLite in `<data_dir>/claimgate.sqlite3`, created with mode 0600 (it holds the signing keys),
/// in WAL mode.
///
/// What restricts a token (a revocation, a spent use, a renewal) and the keys are on disk
/// (fsync, `synchronous = FULL`) before the request is answered. A new token is written before
/// the login is answered, and reaches the disk with the next fsync: a durable commit's, or the
/// checkpointer's a quarter second later at most (`synchronous = NORMAL`). A crash of the
/// process loses nothing; a power cut may lose the tokens of the last quarter second, which
/// fails closed (their holders are refused and log in again), never a revocation or a use. The
/// fsync per group of logins was most of the stored paths' kernel time (benches/README.md);
/// [`SqliteStore::sync_issued_tokens`] brings it back.
///
/// Writes go to one writer thread that commits them in groups: the writes that arrive while a
/// commit is on its way to the disk are committed together by the next one, each answered only
/// after its group is durable. One `fsync` then serves many logins (the way databases commit
/// under load), and each write is still atomic: a statement that fails fails alone, and a
/// commit that fails (a full disk) fails every write of its group, none of which is kept.
/// Reads use their own connection, which WAL mode lets run beside the writer.
#[derive(Clone)]
pub struct SqliteStore {
    writer: std::sync::mpsc::Sender<Job>,
    reader: Arc<Mutex<Connection>>,
    sync_issued_tokens: bool,
}

/// A write: whether its commit must reach the disk before it is answered, and its statement,
/// which runs (or is told the group could not start) and returns what to answer once the
/// group's commit succeeded or failed.
struct Job {
    durable: bool,
    run: Statement,
}
type Statement = Box<dyn FnOnce(Result<&Connection, &StoreError>) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// The most writes one commit carries.
const GROUP: usize = 512;

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path).map_err(StoreError::of)?;
    connection
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
        .map_err(StoreError::of)?;
    Ok(connection)
}

/// The WAL size from which the writer finishes what the checkpointer copied (`run_writer`); also
/// the size SQLite truncates the WAL file to when it starts over (`journal_size_limit`), so that a
/// WAL file larger than this has grown past it since it last started over.
const WAL_SOFT_LIMIT: u64 = 4 << 20;

/// The WAL size past which the writer checkpoints it whole and truncates it, whatever the
/// checkpointer did (a checkpointer that cannot keep up, or a reader that held it back).
const WAL_LIMIT: u64 = 64 << 20;

/// How the checkpointer tells the writer it finished a pass: the number of passes that copied
/// every frame they saw.
type Passes = Arc<std::sync::atomic::AtomicU64>;

/// Marks the calling thread as a batch thread (Linux's `SCHED_BATCH`, same priority): its
/// wakeups no longer preempt the thread that woke it.
///
/// Without it, on a busy core, each login's write woke the writer, which preempted the runtime
/// at once and committed a group of one: a commit, its WAL write and its file locks, and two
/// context switches per login. Marked, the writer runs when the runtime waits for I/O or its
/// time slice ends, by then with every write that arrived meanwhile, and commits them together.
/// Service-token logins on one core: 8,700-9,000/s before, 13,500-14,000/s after, p99 13.6 ms
/// before and 7.1-7.4 ms after (benches/README.md). On a core of its own the writer runs at once
/// as before. Best effort: a thread that cannot be marked works as it did.
fn run_as_batch_thread() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sched_param` is plain integers (and, on some C libraries, private padding),
        // for which all zeroes is a valid value: priority 0, which SCHED_BATCH requires.
        // `sched_setscheduler` reads it for the duration of the call; pid 0 is the calling
        // thread. Any unprivileged thread may choose SCHED_BATCH.
        let parameters: libc::sched_param = unsafe { std::mem::zeroed() };
        let result = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &parameters) };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "the store's thread stays SCHED_OTHER");
        }
    }
}

fn run_writer(connection: Connection, wal: std::path::PathBuf, jobs: std::sync::mpsc::Receiver<Job>, passes: Passes) {
    run_as_batch_thread();
    let mut finished_after = 0;
    // The connection opens with FULL (`open_connection`).
    let mut synchronous_full = true;
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // One durable write makes the whole group's commit durable (and every commit before it:
        // an fsync of the WAL covers all its frames).
        let durable = group.iter().any(|job| job.durable);
        if durable != synchronous_full {
            let pragma = if durable { "PRAGMA synchronous = FULL" } else { "PRAGMA synchronous = NORMAL" };
            match connection.execute_batch(pragma) {
                Ok(()) => synchronous_full = durable,
                // Still FULL: the group commits durably, which is always safe.
                Err(_) if !durable => {}
                Err(e) => {
                    let error = StoreError::of(e);
                    for job in group {
                        (job.run)(Err(&error))(Some(&error));
                    }
                    continue;
                }
            }
        }
        if let Err(e) = connection.execute_batch("BEGIN IMMEDIATE") {
            let error = StoreError::of(e);
            for job in group {
                (job.run)(Err(&error))(Some(&error));
            }
            continue;
        }
        let replies: Vec<Reply> = group.into_iter().map(|job| (job.run)(Ok(&connection))).collect();
        let committed = connection.execute_batch("COMMIT").map_err(StoreError::of);
        if committed.is_err() {
            let _ = connection.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(committed.as_ref().err());
        }
        // The WAL starts over only when a write begins with every frame copied, which under
        // unbroken writes never happens by itself: the checkpointer's copies run beside commits,
        // so each ends with newer frames behind it, and the WAL grows without bound (15 GB and
        // an ever larger shared-memory index in a 10-minute soak). So once the WAL is past
        // WAL_SOFT_LIMIT and the checkpointer has finished a pass, the writer copies the few
        // frames committed since that pass began, between two commits where no write can race
        // it: a pause of a few pages and one fsync, after which the next write starts the WAL
        // over. Copying it all in the writer instead (SQLite's own autocheckpoint, or a
        // TRUNCATE every 64 MiB) paused it for tens of milliseconds at a time, and those pauses
        // were the open-loop tail. TRUNCATE stays as the bound when the checkpointer falls behind.
        let wal_size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        let passed = passes.load(std::sync::atomic::Ordering::Acquire);
        if wal_size > WAL_LIMIT {
            if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                tracing::warn!(%error, "a full WAL checkpoint failed; the next commit retries");
            }
        } else if wal_size > WAL_SOFT_LIMIT && passed != finished_after {
            finished_after = passed;
            if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(%error, "a WAL checkpoint failed; the next one retries");
            }
        }
    }
}

/// Copies the WAL into the database file every quarter second, without blocking the writer
/// (`PASSIVE`), and counts the passes that copied every frame they saw, for the writer to
/// finish (`run_writer`). Stops once every handle of the store is dropped (`alive` no longer
/// upgrades).
fn run_checkpoints(connection: Connection, alive: std::sync::Weak<Mutex<Connection>>, passes: Passes) {
    run_as_batch_thread();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(250));
        if alive.upgrade().is_none() {
            break;
        }
        // (busy, frames in the WAL, frames copied); -1 when the database is not in WAL mode.
        match connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        }) {
            Ok((0, frames, copied)) if frames > 0 && frames == copied => {
                passes.fetch_add(1, std::sync::atomic::Ordering::Release);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "a WAL checkpoint failed; the next one retries"),
        }
    }
}

impl SqliteStore {
    /// Opens (or creates) the store in `data_dir`, creating the folder with mode 0700.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        crate::files::private_dir(data_dir).map_err(|e| StoreError(format!("{}: {e}", data_dir.display())))?;
        let path = SqliteStore::database_file(data_dir);
        crate::files::private_file(&path).map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        let writer = open_connection(&path)?;
        let wal = path.with_extension("sqlite3-wal");
        // A larger page cache for the writer (16 MiB) and the reader (8 MiB) than SQLite's 2 MiB:
        // inserts land at the end of the token index (keys begin with the issue time), but
        // lookups, uses and renewals land all over it (about 50 bytes a live token), and a small
        // cache makes each one read its pages again through the kernel once the store holds
        // ~100k tokens. Fixed sizes, so memory stays bounded
        // however many tokens the store holds; the checkpointer keeps the default.
        writer.execute_batch("PRAGMA cache_size = -16384").map_err(StoreError::of)?;
        for statement in SCHEMA {
            writer.execute(statement, []).map_err(StoreError::of)?;
        }
        // Checkpoints (copying the WAL into the database file, with its own fsync) run on a
        // connection of their own, so that commits never wait behind one.
        writer.execute_batch("PRAGMA wal_autocheckpoint = 0").map_err(StoreError::of)?;
        writer.execute_batch(&format!("PRAGMA journal_size_limit = {WAL_SOFT_LIMIT}")).map_err(StoreError::of)?;
        let checkpointer = open_connection(&path)?;
        let reader = open_connection(&path)?;
        reader.execute_batch("PRAGMA cache_size = -8192").map_err(StoreError::of)?;
        let reader = Arc::new(Mutex::new(reader));
        let alive = Arc::downgrade(&reader);
        let passes = Passes::default();
        let passed = passes.clone();
        std::thread::Builder::new()
            .name("claimgate-sqlite-checkpoint".into())
            .spawn(move || run_checkpoints(checkpointer, alive, passed))
            .map_err(StoreError::of)?;
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("claimgate-sqlite-writer".into())
            .spawn(move || run_writer(writer, wal, queue, passes))
            .map_err(StoreError::of)?;
        Ok(SqliteStore { writer: jobs, reader, sync_issued_tokens: false })
    }

    /// The database file of the store in `data_dir` (its WAL beside it, `-wal` appended).
    pub(crate) fn database_file(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("claimgate.sqlite3")
    }

    /// Whether a new token's commit waits for the disk (fsync) too, as every other write does.
    /// Off by default; see [`SqliteStore`].
    pub fn sync_issued_tokens(mut self, yes: bool) -> SqliteStore {
        self.sync_issued_tokens = yes;
        self
    }

    /// Whether [`Store::insert_token`] commits durably.
    fn issued_durable(&self) -> bool {
        self.sync_issued_tokens
    }

    /// Runs a read on the reader connection, on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let connection = connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&connection).map_err(StoreError::of)
        })
        .await
        .map_err(StoreError::of)?
    }

    /// Runs a write in the writer's next group; answers once the group is committed, and on
    /// disk (fsync).
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.write_as(true, f).await
    }

    /// [`write`](Self::write), durable or not: a write that is not answers once committed,
    /// and reaches the disk with the next fsync (see [`SqliteStore`]).
    async fn write_as<T: Send + 'static>(
        &self,
        durable: bool,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let run = Box::new(move |connection: Result<&Connection, &StoreError>| -> Reply {
            let result = match connection {
                Ok(c) => f(c).map_err(StoreError::of),
                Err(e) => Err(StoreError(e.0.clone())),
            };
            Box::new(move |commit: Option<&StoreError>| {
                let _ = answer.send(match commit {
                    Some(e) => Err(StoreError(format!("the commit failed: {}", e.0))),
                    None => result,
                });
            })
        });
        self.writer.send(Job { durable, run }).map_err(|_| StoreError("the store's writer has stopped".into()))?;
        answered.await.map_err(|_| StoreError("the store's writer has stopped".into()))?
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn insert_token(&self, record: &TokenRecord) -> Result<(), StoreError> {
        let r = record.clone();
        self.write_as(self.issued_durable(), move |c| {
            // Cached statements: the hot paths are parsed once per connection, not per login.
            c.prepare_cached(
                "INSERT INTO tokens (hash, body, expire_time, num_uses, uses_left) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![&r.hash[..], r.body(), r.expire_time, r.num_uses, r.uses_left])
            .map(drop)
        })
        .await
    }

    async fn get_token(&self, hash: &[u8; 32], now: i64) -> Result<Option<TokenRecord>, StoreError> {
        let hash = *hash;
        let row = self
            .read(move |c| {
                c.prepare_cached(
                    "SELECT body, expire_time, uses_left, last_renewal FROM tokens
                     WHERE hash = ?1 AND NOT revoked AND expire_time > ?2 AND (num_uses = 0 OR uses_left > 0)",
                )?
                .query_row(params![&hash[..], now], |row| {
                    Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })
                .optional()
            })
            .await?;
        row.map(|(body, expire, left, renewal)| TokenRecord::from_parts(hash, &body, expire, left, renewal)).transpose()
    }

    async fn use_token(&self, hash: &[u8; 32], now: i64) -> Result<Option<TokenRecord>, StoreError> {
        let hash = *hash;
        let row = self
            .write(move |c| {
                c.prepare_cached(
                    "UPDATE tokens SET uses_left = CASE WHEN num_uses > 0 THEN uses_left - 1 ELSE uses_left END
                     WHERE hash = ?1 AND NOT revoked AND expire_time > ?2 AND (num_uses = 0 OR uses_left > 0)
                     RETURNING body, expire_time, uses_left, last_renewal",
                )?
                .query_row(params![&hash[..], now], |row| {
                    Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })
                .optional()
            })
            .await?;
        row.map(|(body, expire, left, renewal)| TokenRecord::from_parts(hash, &body, expire, left, renewal)).transpose()
    }

    async fn renew_token(&self, hash: &[u8; 32], expire_time: i64, now: i64) -> Result<bool, StoreError> {
        let hash = *hash;
        self.write(move |c| {
            c.execute(
                "UPDATE tokens SET expire_time = ?1, last_renewal = ?2 WHERE hash = ?3 AND NOT revoked AND expire_time > ?2",
                params![expire_time, now, &hash[..]],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn revoke_token(&self, hash: &[u8; 32], now: i64) -> Result<bool, StoreError> {
        let hash = *hash;
        self.write(move |c| {
            c.execute(
                "UPDATE tokens SET revoked = TRUE WHERE hash = ?1 AND NOT revoked AND expire_time > ?2",
                params![&hash[..], now],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn revoke_matching(&self, filter: &TokenFilter, now: i64) -> Result<u64, StoreError> {
        if filter.is_empty() {
            return Ok(0);
        }
        let [accessor, provider, role, identity] = filter.fields().map(|f| f.map(str::to_string));
        // The fields live in the record's JSON body: a scan, which an operator's revocation can
        // afford (logins never run it).
        self.write(move |c| {
            c.execute(
                "UPDATE tokens SET revoked = TRUE
                 WHERE NOT revoked AND expire_time > ?1 AND (num_uses = 0 OR uses_left > 0)
                 AND (?2 IS NULL OR json_extract(body, '$.accessor') = ?2)
                 AND (?3 IS NULL OR json_extract(body, '$.provider') = ?3)
                 AND (?4 IS NULL OR json_extract(body, '$.role') = ?4)
                 AND (?5 IS NULL OR json_extract(body, '$.identity') = ?5)",
                params![now, accessor, provider, role, identity],
            )
            .map(|n| n as u64)
        })
        .await
    }

    async fn purge_expired(&self, before: i64) -> Result<u64, StoreError> {
        self.write(move |c| c.execute("DELETE FROM tokens WHERE expire_time < ?1", params![before]).map(|n| n as u64))
            .await
    }

    async fn signing_keys(&self, now: i64) -> Result<Vec<SigningKeyRecord>, StoreError> {
        self.read(move |c| {
            let mut statement = c.prepare(
                "SELECT kid, pkcs8, activates, retires, published_until FROM signing_keys
                 WHERE published_until > ?1 ORDER BY activates",
            )?;
            let rows = statement.query_map(params![now], |row| {
                Ok(SigningKeyRecord {
                    kid: row.get(0)?,
                    pkcs8: row.get(1)?,
                    activates: row.get(2)?,
                    retires: row.get(3)?,
                    published_until: row.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StoreError> {
        let key = key.clone();
        // One statement on the one writer: atomic against any other writer of the file.
        self.write(move |c| {
            c.execute(
                "INSERT INTO signing_keys (kid, pkcs8, activates, retires, published_until)
                 SELECT ?1, ?2, ?3, ?4, ?5
                 WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE activates <= ?3 AND ?3 < retires)",
                params![key.kid, key.pkcs8, key.activates, key.retires, key.published_until],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn batch_key(&self, candidate: &[u8; 32]) -> Result<Vec<u8>, StoreError> {
        let candidate = candidate.to_vec();
        self.write(move |c| {
            c.execute(
                "INSERT INTO batch_keys (id, secret) VALUES (1, ?1) ON CONFLICT (id) DO NOTHING",
                params![candidate],
            )?;
            c.query_row("SELECT secret FROM batch_keys WHERE id = 1", [], |row| row.get(0))
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TokenKind;

    fn record(n: u8, num_uses: i64) -> TokenRecord {
        TokenRecord {
            hash: [n; 32],
            accessor: format!("a{n}"),
            kind: TokenKind::Service,
            provider: "ci".into(),
            role: "r".into(),
            identity: "i".into(),
            policies: vec!["default".into()],
            metadata: vec![],
            path: "auth/ci/login".into(),
            display_name: "ci-i".into(),
            creation_time: 1000,
            creation_ttl: 600,
            expire_time: 1600,
            explicit_max_ttl: 0,
            max_ttl: 600,
            period: 0,
            num_uses,
            uses_left: num_uses,
            bound_cidrs: vec![],
            last_renewal: None,
        }
    }

    /// The scheduling policy (`/proc`'s field 41) of this process's threads whose name begins
    /// with `prefix` (Linux cuts names to 15 bytes).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn policies_of_threads(prefix: &str) -> Vec<u32> {
        let mut policies = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
            let (head, rest) = stat.rsplit_once(')').unwrap();
            if head.split_once('(').unwrap().1.starts_with(prefix) {
                policies.push(rest.split_whitespace().nth(38).unwrap().parse().unwrap());
            }
        }
        policies
    }

    // glibc only: musl's `sched_setscheduler` is a stub that fails (ENOSYS), and the writer
    // then works as before.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[tokio::test]
    async fn the_writer_threads_do_not_preempt_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        // Answered by the writer: it has started, and marked itself first.
        store.insert_token(&record(1, 0)).await.unwrap();
        let batch = libc::SCHED_BATCH as u32;
        let mut policies = Vec::new();
        for _ in 0..200 {
            policies = policies_of_threads("claimgate-sqlit");
            if policies.len() >= 2 && policies.iter().all(|&p| p == batch) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the store's threads run with policies {policies:?}, not SCHED_BATCH ({batch})");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn group_commits_keep_every_write_and_count_each_use_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let inserts: Vec<_> = (0..200u8)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move { store.insert_token(&record(n, if n == 0 { 50 } else { 0 })).await })
            })
            .collect();
        for insert in inserts {
            insert.await.unwrap().unwrap();
        }
        // A duplicate fails alone; its group's other writes are kept.
        let (again, new) = (record(1, 0), record(250, 0));
        let (duplicate, fresh) = tokio::join!(store.insert_token(&again), store.insert_token(&new));
        assert!(duplicate.is_err());
        fresh.unwrap();
        for n in (0..200u8).chain([250]) {
            assert!(store.get_token(&[n; 32], 1100).await.unwrap().is_some(), "record {n} is kept");
        }
        let uses: Vec<_> = (0..300)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.use_token(&[0; 32], 1100).await.unwrap().is_some() })
            })
            .collect();
        let mut granted = 0;
        for used in uses {
            granted += used.await.unwrap() as usize;
        }
        assert_eq!(granted, 50);
        assert!(store.get_token(&[0; 32], 1100).await.unwrap().is_none(), "used up");
        assert!(store.get_token(&[1; 32], 1600).await.unwrap().is_none(), "expired at its expire_time");
        assert!(store.revoke_token(&[2; 32], 1100).await.unwrap());
        assert!(store.use_token(&[2; 32], 1100).await.unwrap().is_none(), "revoked");
        assert_eq!(store.purge_expired(1700).await.unwrap(), 201);
    }

    /// Under unbroken writes from many tasks the WAL still starts over (SQLite then cuts its
    /// file back to WAL_SOFT_LIMIT), long before the WAL_LIMIT truncation would: the writer
    /// finishes the checkpointer's passes. Bounded by writes, not by time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unbroken_writes_keep_the_wal_near_its_soft_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let wal = dir.path().join("claimgate.sqlite3-wal");
        let size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
        let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (mut grew, mut largest) = (false, 0);
        for _round in 0..400 {
            let writers: Vec<_> = (0..32)
                .map(|_| {
                    let (store, next) = (store.clone(), next.clone());
                    tokio::spawn(async move {
                        for _ in 0..20 {
                            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let mut r = record(0, 0);
                            r.hash[..8].copy_from_slice(&n.to_be_bytes());
                            store.insert_token(&r).await.unwrap();
                        }
                    })
                })
                .collect();
            for writer in writers {
                writer.await.unwrap();
            }
            let now = size();
            largest = largest.max(now);
            grew |= now > WAL_SOFT_LIMIT;
            if grew && now <= WAL_SOFT_LIMIT {
                break;
            }
        }
        assert!(grew, "the WAL never grew past its soft limit: the test wrote too little");
        assert!(size() <= WAL_SOFT_LIMIT, "the WAL never started over ({} bytes, {largest} at most)", size());
        assert!(largest < WAL_LIMIT / 2, "the WAL grew to {largest} bytes before starting over");
    }

    #[tokio::test]
    async fn new_tokens_commit_without_fsync_and_what_restricts_a_token_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let synchronous = |c: &Connection| c.query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0));
        // 1 = NORMAL (the WAL is synced by the next durable commit or checkpoint), 2 = FULL.
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.write_as(false, synchronous).await.unwrap(), 1);
        assert_eq!(store.write(synchronous).await.unwrap(), 2);
        assert_eq!(store.write_as(false, synchronous).await.unwrap(), 1);
        // Relaxed inserts, then a durable use: both found, the use counted.
        store.insert_token(&record(1, 2)).await.unwrap();
        let used = store.use_token(&record(1, 2).hash, 0).await.unwrap().expect("found");
        assert_eq!(used.uses_left, 1);
        // With sync_issued_tokens, every write waits for the disk.
        let other = tempfile::tempdir().unwrap();
        let synced = SqliteStore::open(other.path()).unwrap().sync_issued_tokens(true);
        assert!(!store.issued_durable());
        assert!(synced.issued_durable());
    }

    #[tokio::test]
    async fn a_full_store_refuses_writes_without_losing_or_keeping_half_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store.insert_token(&record(1, 0)).await.unwrap();
        // SQLite's answer when the disk is full and when the database reaches max_page_count
        // is the same (SQLITE_FULL): cap the file at its current size.
        let pages: i64 = store.read(|c| c.query_row("PRAGMA page_count", [], |r| r.get(0))).await.unwrap();
        store.write(move |c| c.execute_batch(&format!("PRAGMA max_page_count = {pages}"))).await.unwrap();
        let mut refused = 0;
        for n in 2..=200u8 {
            let mut big = record(n, 0);
            big.metadata = vec![("padding".into(), "x".repeat(4000))];
            if store.insert_token(&big).await.is_err() {
                refused += 1;
            }
        }
        assert!(refused > 0, "the full store refuses writes");
        // What was kept is whole; what was refused is absent; the store still answers.
        for n in 1..=200u8 {
            if let Some(found) = store.get_token(&[n; 32], 1100).await.unwrap() {
                assert_eq!(found.accessor, format!("a{n}"));
            }
        }
        assert!(store.get_token(&[1; 32], 1100).await.unwrap().is_some());
        store.write(|c| c.execute_batch("PRAGMA max_page_count = 1073741823")).await.unwrap();
        store.insert_token(&record(222, 0)).await.unwrap();
        assert!(store.get_token(&[222; 32], 1100).await.unwrap().is_some(), "writes work again once there is room");
    }
}
