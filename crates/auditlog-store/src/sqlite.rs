//! The embedded backend: SQLite (bundled) in WAL mode with `synchronous=FULL`, one writer
//! thread doing group commit, and a small pool of reader connections.
//!
//! Layout of the data directory:
//! - `auditlog.db` (+ `-wal`, `-shm`): events, tiles, checkpoints, dictionaries, tokens;
//! - `keys/<tenant>.key` (mode 0600): the tenant's Ed25519 signer key in signed-note form;
//! - `lock`: held with `flock` by the one process that appends (a server or a direct ingest).
//!
//! Events are stored as zstd frames of the client part of their canonical form (see `codec`),
//! with `seq` and `received_at` as columns; splicing them back gives exactly the bytes that
//! were hashed.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auditlog_core::event::{MonotonicClock, Timestamp, canonical_event};
use auditlog_core::tenant::TenantId;
use auditlog_ledger::Hash;
use auditlog_ledger::merkle::{self, NodeReader};
use auditlog_ledger::note::{Checkpoint, NoteSigner, sign_checkpoint};
use auditlog_ledger::tiles::{TileReader, TileWriter};
use fs4::fs_std::FileExt as _;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use crate::admin;
use crate::codec::{self, Decoder, Dictionaries};
use crate::people::{Credential, NewSession, PersonInfo, Role, SessionInfo, SessionLimits};
use crate::tokens::{self, Principal, Scopes, TokenInfo};
use crate::trail::{Actor, TrailEvent};
use crate::{
    AppendDone, AppendOutcome, Health, PreparedEvent, Receipt, Store, StoreError, StoredCheckpoint,
    StoredEvent, VerifyReport,
};

const DB_FILE: &str = "auditlog.db";
/// How often the writer looks for trail records queued by other processes.
const OUTBOX_POLL: Duration = Duration::from_secs(1);
const SCHEMA_VERSION: i64 = 2;

/// Settings of the embedded store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// A checkpoint is signed at most this often per tenant while events arrive, and at the
    /// latest this long after the last event.
    pub checkpoint_interval: Duration,
    /// zstd level for stored events.
    pub compression_level: i32,
    /// Most events one group commit takes before it commits.
    pub max_group_events: usize,
    /// Checkpoint origin (and note key name) is `<origin_prefix><tenant>`.
    pub origin_prefix: String,
    /// Where the tenants' signing keys live (`<tenant>.key`); default `<data>/keys`.
    pub key_dir: Option<PathBuf>,
    /// Called with every checkpoint once it is on disk (from the syncer thread: it must not
    /// block; hand the note to another thread).
    pub on_checkpoint: Option<CheckpointHook>,
    /// `verify` reads the database through a memory map (~10% faster: no kernel copy), at
    /// the price that a disk read error kills the process (SIGBUS) instead of being an
    /// error. For the one-shot `auditlog verify`; never for a server.
    pub verify_mmap: bool,
}

/// What a [`CheckpointHook`] calls: tenant, tree size, signed note.
pub type CheckpointFn = dyn Fn(&TenantId, u64, &str) + Send + Sync;

/// A function given each signed checkpoint.
#[derive(Clone)]
pub struct CheckpointHook(pub Arc<CheckpointFn>);

impl std::fmt::Debug for CheckpointHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckpointHook")
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            checkpoint_interval: Duration::from_secs(1),
            compression_level: 1,
            max_group_events: 50_000,
            origin_prefix: "auditlog/".to_owned(),
            key_dir: None,
            on_checkpoint: None,
            verify_mmap: false,
        }
    }
}

struct Shared {
    dir: PathBuf,
    options: StoreOptions,
    readers: Mutex<Vec<Connection>>,
    dicts: Dictionaries,
    /// Set when a commit or fsync failed: writes stay stopped until restart (no fsync retry).
    poisoned: Mutex<Option<String>>,
    /// Per tenant, the newest checkpoint known to be on disk. Checkpoints are committed before
    /// their fsync; serving one that a power loss could still take away would let the log sign
    /// a different tree of the same size after restart. Tenants absent here have nothing
    /// unsynced (the writer syncs the WAL at start).
    durable_checkpoint: Mutex<HashMap<TenantId, u64>>,
    /// Decoders with their dictionary contexts, reused across reads: loading a dictionary into
    /// a fresh context costs more than decompressing a page of events.
    decoders: Mutex<Vec<Decoder>>,
    /// Frames in the WAL at the checkpointer's last pass.
    wal_frames: AtomicI64,
}

impl Shared {
    /// Stop all writes until restart (the first problem is the one reported).
    fn stop_writes(&self, problem: &str) {
        tracing::error!("{problem}");
        self.poisoned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| problem.to_owned());
    }

    /// A decoder from the pool (or a new one); give it back with [`Shared::put_decoder`].
    fn take_decoder(&self) -> Decoder {
        self.decoders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    fn put_decoder(&self, decoder: Decoder) {
        let mut pool = self.decoders.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 16 {
            pool.push(decoder);
        }
    }
}

/// The SQLite store. `open` takes the directory lock and starts the writer; `open_shared`
/// works beside a running writer (reads, tokens) and refuses appends.
pub struct SqliteStore {
    shared: Arc<Shared>,
    writer: Mutex<Option<Sender<Job>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    _lock: Option<File>,
}

enum Job {
    Append {
        tenant: TenantId,
        events: Vec<SealedEvent>,
        done: AppendDone,
    },
    SignNow(mpsc::SyncSender<Result<(), StoreError>>),
    /// Trail records wait in the outbox: take them into the log now.
    Drain,
}

/// An event compressed by the caller's thread, ready for the writer.
struct SealedEvent {
    prepared: PreparedEvent,
    dict_id: i64,
    blob: Vec<u8>,
}

/// The wall clock as the store records it: the one place auditlog reads it for events (the
/// default `time`, `received_at`, checkpoint times). Microseconds are enough for ordering and
/// keep the canonical form short.
pub fn now() -> Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    // Microseconds are enough for ordering and keep the canonical form short.
    let micros = since.as_micros() as i64;
    Timestamp::from_unix_nanos(micros * 1000)
}

fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl SqliteStore {
    /// Open the data directory for appending: creates it if needed, takes its lock (a second
    /// appender fails with [`StoreError::Locked`]), recovers and starts the writer.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<SqliteStore, StoreError> {
        create_dir_private(dir)?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| StoreError::io(format!("open {}", lock_path.display()), e))?;
        match lock.try_lock_exclusive() {
            Ok(true) => {}
            Ok(false) => {
                return Err(StoreError::Locked(format!(
                    "data directory {} is in use by another auditlog process (a running server?); \
                     stop it, or send events to it with --url",
                    dir.display()
                )));
            }
            Err(e) => return Err(StoreError::io(format!("lock {}", lock_path.display()), e)),
        }
        let store = Self::open_inner(dir, options, Some(lock))?;
        let conn = open_connection(&store.shared.dir)?;
        // The writer's commits write the WAL without waiting for the disk; the syncer thread
        // fsyncs it and only then are the requests answered (see `Syncer`). NORMAL in WAL mode
        // still syncs the WAL before every checkpoint copies it into the database.
        conn.execute_batch("PRAGMA synchronous = NORMAL;")?;
        let shared = store.shared.clone();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("auditlog-writer".into())
            .spawn(move || Writer::new(shared, conn).run(rx))
            .map_err(|e| StoreError::io("start writer thread", e))?;
        *store.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        *store
            .writer_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(thread);
        Ok(store)
    }

    /// Whether `dir` holds an auditlog database (commands that only read refuse one without).
    pub fn holds_data(dir: &Path) -> bool {
        dir.join(DB_FILE).exists()
    }

    /// Open without the lock and without a writer: reads, verify and token administration
    /// work beside a running server.
    pub fn open_shared(dir: &Path, options: StoreOptions) -> Result<SqliteStore, StoreError> {
        if !Self::holds_data(dir) {
            return Err(StoreError::NotFound(format!(
                "no auditlog data in {} (start `auditlog serve` or give --data)",
                dir.display()
            )));
        }
        Self::open_inner(dir, options, None)
    }

    fn open_inner(
        dir: &Path,
        options: StoreOptions,
        lock: Option<File>,
    ) -> Result<SqliteStore, StoreError> {
        create_dir_private(&options.key_dir.clone().unwrap_or_else(|| dir.join("keys")))?;
        let conn = open_connection(dir)?;
        migrate(&conn)?;
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            options,
            readers: Mutex::new(vec![conn]),
            dicts: Dictionaries::default(),
            poisoned: Mutex::new(None),
            durable_checkpoint: Mutex::new(HashMap::new()),
            decoders: Mutex::new(Vec::new()),
            wal_frames: AtomicI64::new(0),
        });
        Ok(SqliteStore {
            shared,
            writer: Mutex::new(None),
            writer_thread: Mutex::new(None),
            _lock: lock,
        })
    }

    /// Tell the writer (if this process has one) that trail records wait in the outbox.
    fn wake_writer(&self) {
        if let Some(sender) = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = sender.send(Job::Drain);
        }
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Stop the writer after it has committed what it was given and signed a last checkpoint.
    pub fn close(&self) {
        let sender = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(sender);
        if let Some(thread) = self
            .writer_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = thread.join();
        }
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        with_conn(&self.shared, f)
    }

    fn tenant_row(conn: &Connection, tenant: &TenantId) -> Result<Option<(i64, u64)>, StoreError> {
        Ok(conn
            .query_row(
                "SELECT id, tree_size FROM tenants WHERE name = ?1",
                params![tenant.as_str()],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)? as u64)),
            )
            .optional()?)
    }

    /// The tenant's row id, if its tree has at least `size` (≥ 1) leaves.
    fn tree_of_size(conn: &Connection, tenant: &TenantId, size: u64) -> Result<i64, StoreError> {
        let Some((tenant_id, tree_size)) = Self::tenant_row(conn, tenant)? else {
            return Err(StoreError::NotFound("the log is empty".into()));
        };
        if size == 0 || size > tree_size {
            return Err(StoreError::BadRequest(format!(
                "size {size} is not between 1 and the tree size {tree_size}"
            )));
        }
        Ok(tenant_id)
    }

    fn tenant_id(conn: &Connection, tenant: &TenantId) -> Result<Option<i64>, StoreError> {
        Ok(Self::tenant_row(conn, tenant)?.map(|(id, _)| id))
    }
}

/// A token as the trail shows it: never the secret or its hash.
fn token_json(
    name: &str,
    scopes: Scopes,
    created_at: i64,
    revoked_at: Option<i64>,
) -> auditlog_core::json::Value {
    use crate::trail::{object, string, time_value};
    let mut fields = vec![
        ("name", string(name)),
        ("scopes", string(scopes.to_string())),
        ("created_at", time_value(created_at)),
    ];
    if let Some(at) = revoked_at {
        fields.push(("revoked_at", time_value(at)));
    }
    object(&fields)
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn with_conn<T>(
    shared: &Shared,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let conn = shared
        .readers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop();
    let conn = match conn {
        Some(conn) => conn,
        None => open_connection(&shared.dir)?,
    };
    let result = f(&conn);
    let mut pool = shared.readers.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < 8 {
        pool.push(conn);
    }
    result
}

fn create_dir_private(dir: &Path) -> Result<(), StoreError> {
    if !dir.exists() {
        fs::create_dir_all(dir)
            .map_err(|e| StoreError::io(format!("create {}", dir.display()), e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| StoreError::io(format!("chmod {}", dir.display()), e))?;
    }
    Ok(())
}

fn open_connection(dir: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        dir.join(DB_FILE),
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // FULL: a commit is on disk (WAL fsynced) before we acknowledge it. NORMAL can lose
    // acknowledged transactions on power loss.
    conn.execute_batch(
        "PRAGMA page_size = 8192;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -32768;
         PRAGMA wal_autocheckpoint = 0;",
    )?;
    // No commit copies the WAL into the database or truncates it on its own path (truncating
    // a large WAL stalled the writer for ~200 ms): a process with a writer runs the
    // checkpointer thread (`run_checkpointer`), the writer restarts the WAL from its start once
    // it holds `WAL_RESTART_FRAMES` (so the file stays near that size), and SQLite checkpoints
    // and removes it when the last connection closes.
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupted(format!(
            "data directory has schema version {version}, newer than this binary's {SCHEMA_VERSION}"
        )));
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    if version < 1 {
        migrate_v1(conn)?;
    }
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE; {} PRAGMA user_version = 2; COMMIT;",
        admin::SCHEMA_V2
    ))?;
    Ok(())
}

fn migrate_v1(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         CREATE TABLE IF NOT EXISTS tenants (
             id INTEGER PRIMARY KEY,
             name TEXT NOT NULL UNIQUE,
             tree_size INTEGER NOT NULL DEFAULT 0,
             created_at INTEGER NOT NULL
         );
         -- body: zstd frame of the client part of the canonical event (codec.rs); dict: its
         -- dictionary (0 = none); received_at: unix nanoseconds.
         -- idem/idem_hash: the client's idempotency key and a fingerprint of the body it sent.
         CREATE TABLE IF NOT EXISTS events (
             tenant INTEGER NOT NULL,
             seq INTEGER NOT NULL,
             received_at INTEGER NOT NULL,
             idem TEXT,
             idem_hash BLOB,
             dict INTEGER NOT NULL,
             body BLOB NOT NULL,
             PRIMARY KEY (tenant, seq)
         ) WITHOUT ROWID;
         CREATE UNIQUE INDEX IF NOT EXISTS events_idem ON events (tenant, idem) WHERE idem IS NOT NULL;
         -- C2SP tlog-tiles: the newest content of each tile (a partial tile is a prefix of its full form).
         CREATE TABLE IF NOT EXISTS tiles (
             tenant INTEGER NOT NULL,
             level INTEGER NOT NULL,
             idx INTEGER NOT NULL,
             data BLOB NOT NULL,
             PRIMARY KEY (tenant, level, idx)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS checkpoints (
             tenant INTEGER NOT NULL,
             size INTEGER NOT NULL,
             signed_at INTEGER NOT NULL,
             note TEXT NOT NULL,
             PRIMARY KEY (tenant, size)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS dicts (
             id INTEGER PRIMARY KEY,
             tenant INTEGER NOT NULL,
             data BLOB NOT NULL
         );
         CREATE TABLE IF NOT EXISTS tokens (
             id INTEGER PRIMARY KEY,
             tenant INTEGER NOT NULL,
             name TEXT NOT NULL,
             hash BLOB NOT NULL UNIQUE,
             scopes TEXT NOT NULL,
             created_at INTEGER NOT NULL,
             last_used_at INTEGER,
             revoked_at INTEGER
         );
         PRAGMA user_version = 1;
         COMMIT;",
    )?;
    Ok(())
}

/// Find or create the tenant row (any process may do this; the name is unique).
fn ensure_tenant_row(conn: &Connection, tenant: &TenantId) -> Result<(i64, u64), StoreError> {
    conn.execute(
        "INSERT OR IGNORE INTO tenants (name, tree_size, created_at) VALUES (?1, 0, ?2)",
        params![tenant.as_str(), unix_secs()],
    )?;
    SqliteStore::tenant_row(conn, tenant)?
        .ok_or_else(|| StoreError::Corrupted(format!("tenant {tenant} vanished")))
}

fn key_path(shared: &Shared, tenant: &TenantId) -> PathBuf {
    match &shared.options.key_dir {
        Some(dir) => dir.join(format!("{tenant}.key")),
        None => shared.dir.join("keys").join(format!("{tenant}.key")),
    }
}

/// The tenant's signer if its key file exists (never creates one: `verify` must not).
fn load_signer(shared: &Shared, tenant: &TenantId) -> Result<Option<NoteSigner>, StoreError> {
    let path = key_path(shared, tenant);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(format!("read {}", path.display()), e)),
    };
    NoteSigner::parse_signer_key(text.trim())
        .map(Some)
        .map_err(|e| StoreError::Corrupted(format!("signing key {}: {e}", path.display())))
}

/// The tenant's signer key lives in `keys/<tenant>.key`, mode 0600. It is created with a
/// temporary file and a hard link, so two processes racing to create it agree on one key.
fn load_or_create_signer(shared: &Shared, tenant: &TenantId) -> Result<NoteSigner, StoreError> {
    let path = key_path(shared, tenant);
    let name = format!("{}{}", shared.options.origin_prefix, tenant);
    if !path.exists() {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| StoreError::Unavailable(format!("no randomness for a key: {e}")))?;
        let signer = NoteSigner::from_seed(&name, &seed)?;
        let mut suffix = [0u8; 8];
        getrandom::fill(&mut suffix)
            .map_err(|e| StoreError::Unavailable(format!("no randomness: {e}")))?;
        let tmp = path.with_extension(format!("tmp{}", u64::from_le_bytes(suffix)));
        {
            let mut file = OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| StoreError::io(format!("create {}", tmp.display()), e))?;
            file.write_all(format!("{}\n", signer.signer_key()).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| StoreError::io(format!("write {}", tmp.display()), e))?;
        }
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                if let Some(parent) = path.parent()
                    && let Ok(dir) = File::open(parent)
                {
                    let _ = dir.sync_all();
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::io(format!("create {}", path.display()), e)),
        }
    }
    let text = fs::read_to_string(&path)
        .map_err(|e| StoreError::io(format!("read {}", path.display()), e))?;
    let signer = NoteSigner::parse_signer_key(text.trim())
        .map_err(|e| StoreError::Corrupted(format!("signing key {}: {e}", path.display())))?;
    Ok(signer)
}

/// Read tiles of one tenant for proofs.
fn tile_reader<'c>(
    conn: &'c Connection,
    tenant_id: i64,
) -> TileReader<impl FnMut(u8, u64) -> auditlog_ledger::tiles::FetchedTile + 'c> {
    TileReader::new(move |level: u8, index: u64| {
        conn.query_row(
            "SELECT data FROM tiles WHERE tenant = ?1 AND level = ?2 AND idx = ?3",
            params![tenant_id, level as i64, index as i64],
            |row| row.get::<_, Vec<u8>>(0),
        )
        .optional()
        .map_err(|e| auditlog_ledger::LedgerError::Fetch(Box::new(e)))
    })
}

impl Store for SqliteStore {
    fn append(&self, tenant: &TenantId, events: Vec<PreparedEvent>, done: AppendDone) {
        if let Some(problem) = self
            .shared
            .poisoned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            done(Err(StoreError::Unavailable(problem)));
            return;
        }
        let sender = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(sender) = sender else {
            done(Err(StoreError::Unavailable(
                "this store was opened read-only".into(),
            )));
            return;
        };
        // Compression happens here, on the caller's thread, in parallel with other requests.
        let (dict_id, dict) = self.shared.dicts.current(tenant);
        let level = self.shared.options.compression_level;
        let sealed: Result<Vec<SealedEvent>, StoreError> = events
            .into_iter()
            .map(|prepared| {
                let blob = codec::compress_parts(dict_id, &dict, level, &prepared.parts)?;
                Ok(SealedEvent {
                    prepared,
                    dict_id,
                    blob,
                })
            })
            .collect();
        let events = match sealed {
            Ok(events) => events,
            Err(e) => {
                done(Err(e));
                return;
            }
        };
        let job = Job::Append {
            tenant: tenant.clone(),
            events,
            done,
        };
        if let Err(mpsc::SendError(Job::Append { done, .. })) = sender.send(job) {
            done(Err(StoreError::Unavailable("writer stopped".into())));
        }
    }

    fn event(&self, tenant: &TenantId, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
        Ok(self
            .events_from(tenant, seq, 1)?
            .into_iter()
            .find(|e| e.seq == seq))
    }

    fn events_from(
        &self,
        tenant: &TenantId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let shared = &self.shared;
        self.with_conn(|conn| {
            let Some(tenant_id) = Self::tenant_id(conn, tenant)? else {
                return Ok(Vec::new());
            };
            let mut stmt = conn.prepare_cached(
                "SELECT seq, received_at, dict, body FROM events WHERE tenant = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(
                    params![tenant_id, from_seq.min(i64::MAX as u64) as i64, limit as i64],
                    |row| {
                        Ok((
                            row.get::<_, i64>(0)? as u64,
                            row.get::<_, i64>(1)?,
                            row.get::<_, i64>(2)?,
                            row.get::<_, Vec<u8>>(3)?,
                        ))
                    },
                )?
                .collect::<Result<Vec<_>, _>>()?;
            let mut decoder = shared.take_decoder();
            let events = rows
                .into_iter()
                .map(|(seq, received_at, dict, blob)| {
                    let parts = decoder.parts(&shared.dicts, conn, dict, &blob)?;
                    let received_at = Timestamp::from_unix_nanos(received_at);
                    let mut canonical = Vec::with_capacity(blob.len() * 4);
                    canonical_event(&parts, received_at, seq, tenant.as_str(), &mut canonical);
                    Ok(StoredEvent {
                        seq,
                        received_at,
                        leaf_hash: merkle::leaf_hash(&canonical),
                        canonical,
                    })
                })
                .collect();
            shared.put_decoder(decoder);
            events
        })
    }

    fn events(&self, tenant: &TenantId, seqs: &[u64]) -> Result<Vec<StoredEvent>, StoreError> {
        let shared = &self.shared;
        self.with_conn(|conn| {
            let Some(tenant_id) = Self::tenant_id(conn, tenant)? else {
                return Ok(Vec::new());
            };
            let mut stmt = conn.prepare_cached(
                "SELECT received_at, dict, body FROM events WHERE tenant = ?1 AND seq = ?2",
            )?;
            let mut decoder = shared.take_decoder();
            let mut found = Vec::with_capacity(seqs.len());
            let mut failed = None;
            for &seq in seqs {
                let row = stmt
                    .query_row(params![tenant_id, seq.min(i64::MAX as u64) as i64], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, Vec<u8>>(2)?,
                        ))
                    })
                    .optional()?;
                let Some((received_at, dict, blob)) = row else {
                    continue;
                };
                let parts = match decoder.parts(&shared.dicts, conn, dict, &blob) {
                    Ok(parts) => parts,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                };
                let received_at = Timestamp::from_unix_nanos(received_at);
                let mut canonical = Vec::with_capacity(blob.len() * 4);
                canonical_event(&parts, received_at, seq, tenant.as_str(), &mut canonical);
                found.push(StoredEvent {
                    seq,
                    received_at,
                    leaf_hash: merkle::leaf_hash(&canonical),
                    canonical,
                });
            }
            shared.put_decoder(decoder);
            match failed {
                Some(e) => Err(e),
                None => Ok(found),
            }
        })
    }

    fn tree_size(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        self.with_conn(|conn| Ok(Self::tenant_row(conn, tenant)?.map_or(0, |(_, size)| size)))
    }

    fn latest_checkpoint(&self, tenant: &TenantId) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.with_conn(|conn| {
            let Some(tenant_id) = Self::tenant_id(conn, tenant)? else {
                return Ok(None);
            };
            let durable = self
                .shared
                .durable_checkpoint
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(tenant)
                .copied()
                .unwrap_or(i64::MAX as u64);
            Ok(conn
                .query_row(
                    "SELECT size, signed_at, note FROM checkpoints WHERE tenant = ?1 AND size <= ?2 ORDER BY size DESC LIMIT 1",
                    params![tenant_id, durable.min(i64::MAX as u64) as i64],
                    |row| {
                        Ok(StoredCheckpoint {
                            size: row.get::<_, i64>(0)? as u64,
                            signed_at: Timestamp::from_unix_nanos(row.get(1)?),
                            note: row.get(2)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    fn verifier_key(&self, tenant: &TenantId) -> Result<String, StoreError> {
        Ok(load_or_create_signer(&self.shared, tenant)?.verifier_key())
    }

    fn inclusion_proof(
        &self,
        tenant: &TenantId,
        leaf_index: u64,
        size: u64,
    ) -> Result<(Hash, Vec<Hash>), StoreError> {
        self.with_conn(|conn| {
            let tenant_id = Self::tree_of_size(conn, tenant, size)?;
            if leaf_index >= size {
                return Err(StoreError::BadRequest(format!(
                    "seq {} is not in the tree of size {size}",
                    leaf_index.saturating_add(1)
                )));
            }
            let mut reader = tile_reader(conn, tenant_id);
            let leaf = reader.node(0, leaf_index)?;
            let proof = merkle::inclusion_proof(leaf_index, size, &mut reader)?;
            Ok((leaf, proof))
        })
    }

    fn inclusion_proofs(
        &self,
        tenant: &TenantId,
        size: u64,
        leaf_indices: &[u64],
    ) -> Result<Vec<Vec<Hash>>, StoreError> {
        self.with_conn(|conn| {
            let tenant_id = Self::tree_of_size(conn, tenant, size)?;
            // One reader for all: its tile cache serves neighbouring leaves.
            let mut reader = tile_reader(conn, tenant_id);
            leaf_indices
                .iter()
                .map(|&leaf_index| {
                    if leaf_index >= size {
                        return Err(StoreError::BadRequest(format!(
                            "seq {} is not in the tree of size {size}",
                            leaf_index.saturating_add(1)
                        )));
                    }
                    Ok(merkle::inclusion_proof(leaf_index, size, &mut reader)?)
                })
                .collect()
        })
    }

    fn root_at(&self, tenant: &TenantId, size: u64) -> Result<Hash, StoreError> {
        self.with_conn(|conn| {
            let tenant_id = Self::tree_of_size(conn, tenant, size)?;
            let mut reader = tile_reader(conn, tenant_id);
            Ok(merkle::root_at(size, &mut reader)?)
        })
    }

    fn tile(
        &self,
        tenant: &TenantId,
        level: u8,
        index: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_conn(|conn| {
            let Some(tenant_id) = Self::tenant_id(conn, tenant)? else {
                return Ok(None);
            };
            Ok(conn
                .query_row(
                    "SELECT data FROM tiles WHERE tenant = ?1 AND level = ?2 AND idx = ?3",
                    params![
                        tenant_id,
                        i64::from(level),
                        index.min(i64::MAX as u64) as i64
                    ],
                    |row| row.get::<_, Vec<u8>>(0),
                )
                .optional()?)
        })
    }

    fn consistency_proof(
        &self,
        tenant: &TenantId,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        self.with_conn(|conn| {
            let Some((tenant_id, tree_size)) = Self::tenant_row(conn, tenant)? else {
                return Err(StoreError::NotFound("the log is empty".into()));
            };
            if from == 0 || from > to || to > tree_size {
                return Err(StoreError::BadRequest(format!(
                    "need 1 <= from <= to <= tree size {tree_size}, got from {from} to {to}"
                )));
            }
            let mut reader = tile_reader(conn, tenant_id);
            Ok(merkle::consistency_proof(from, to, &mut reader)?)
        })
    }

    fn sign_note(&self, tenant: &TenantId, body: &str) -> Result<String, StoreError> {
        let signer = load_or_create_signer(&self.shared, tenant)?;
        let origin = format!("{}{}", self.shared.options.origin_prefix, tenant);
        if body.lines().next() == Some(origin.as_str()) {
            return Err(StoreError::BadRequest(
                "a note starting with the log's origin is a checkpoint; only the writer signs those"
                    .into(),
            ));
        }
        Ok(signer.try_sign(body)?)
    }

    fn sign_pending(&self) -> Result<(), StoreError> {
        let sender = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(sender) = sender else {
            return Ok(());
        };
        let (tx, rx) = mpsc::sync_channel(1);
        sender
            .send(Job::SignNow(tx))
            .map_err(|_| StoreError::Unavailable("writer stopped".into()))?;
        rx.recv()
            .map_err(|_| StoreError::Unavailable("writer stopped".into()))?
    }

    fn ensure_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let signer = load_or_create_signer(&self.shared, tenant)?;
        self.with_conn(|conn| {
            let (id, size) = ensure_tenant_row(conn, tenant)?;
            // An empty log has a signed head too: the empty tree (RFC 9162: the hash of
            // nothing), so `GET /api/v1/checkpoint` answers from the first start and a
            // monitor can follow the log from size 0. Ed25519 signs deterministically, so
            // any process writing it writes the same note.
            if size == 0 {
                let note = sign_checkpoint(
                    &signer,
                    &Checkpoint {
                        origin: signer.name().to_owned(),
                        size: 0,
                        root: merkle::empty_root(),
                    },
                );
                conn.execute(
                    "INSERT OR IGNORE INTO checkpoints (tenant, size, signed_at, note) VALUES (?1, 0, ?2, ?3)",
                    params![id, now().unix_nanos(), note],
                )?;
            }
            Ok(())
        })
    }

    fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached("SELECT name FROM tenants ORDER BY name")?;
            let names = stmt
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            names
                .into_iter()
                .map(|name| {
                    TenantId::parse_stored(&name)
                        .map_err(|e| StoreError::Corrupted(format!("tenant name {name:?}: {e}")))
                })
                .collect()
        })
    }

    fn tenant_exists(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        self.with_conn(|conn| Ok(Self::tenant_id(conn, tenant)?.is_some()))
    }

    fn create_token(
        &self,
        tenant: &TenantId,
        name: &str,
        scopes: Scopes,
        by: &Actor,
    ) -> Result<String, StoreError> {
        if !tokens::valid_token_name(name) {
            return Err(StoreError::BadRequest(format!(
                "invalid token name {name:?}: use 1-64 characters of letters, digits, '-', '_', '.', ':' or '@'"
            )));
        }
        self.ensure_tenant(tenant)?;
        let token = tokens::new_token()
            .map_err(|e| StoreError::Unavailable(format!("no randomness for a token: {e}")))?;
        self.with_conn(|conn| {
            let (tenant_id, _) = ensure_tenant_row(conn, tenant)?;
            let taken: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM tokens WHERE tenant = ?1 AND name = ?2 AND revoked_at IS NULL)",
                params![tenant_id, name],
                |row| row.get(0),
            )?;
            if taken {
                return Err(StoreError::BadRequest(format!(
                    "tenant {tenant} already has an active token named {name:?}"
                )));
            }
            let tx = admin::immediate(conn)?;
            let now = unix_secs();
            tx.execute(
                "INSERT INTO tokens (tenant, name, hash, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    tenant_id,
                    name,
                    tokens::token_hash(&token).to_vec(),
                    scopes.to_string(),
                    now
                ],
            )?;
            admin::insert_outbox(
                &tx,
                tenant,
                &TrailEvent::new(by, "CREATE", "auditlog.token")
                    .key(name)
                    .message(format!("{} created token {name} ({scopes})", by.name))
                    .after(token_json(name, scopes, now, None)),
            )?;
            tx.commit()?;
            Ok(())
        })?;
        self.wake_writer();
        Ok(token)
    }

    fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<TokenInfo>, StoreError> {
        self.with_conn(|conn| {
            let Some(tenant_id) = Self::tenant_id(conn, tenant)? else {
                return Ok(Vec::new());
            };
            let mut stmt = conn.prepare(
                "SELECT name, scopes, created_at, last_used_at, revoked_at FROM tokens WHERE tenant = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![tenant_id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, Option<i64>>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (name, scopes, created_at, last_used_at, revoked_at) = row?;
                out.push(TokenInfo {
                    name,
                    scopes: Scopes::parse(&scopes).map_err(StoreError::Corrupted)?,
                    created_at,
                    last_used_at,
                    revoked_at,
                });
            }
            Ok(out)
        })
    }

    fn revoke_token(&self, tenant: &TenantId, name: &str, by: &Actor) -> Result<bool, StoreError> {
        let revoked = self.with_conn(|conn| {
            let Some(tenant_id) = Self::tenant_id(conn, tenant)? else {
                return Ok(false);
            };
            let tx = admin::immediate(conn)?;
            let found: Option<(String, i64)> = tx
                .query_row(
                    "SELECT scopes, created_at FROM tokens WHERE tenant = ?1 AND name = ?2 AND revoked_at IS NULL",
                    params![tenant_id, name],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((scopes, created_at)) = found else {
                return Ok(false);
            };
            let scopes = Scopes::parse(&scopes).map_err(StoreError::Corrupted)?;
            let now = unix_secs();
            tx.execute(
                "UPDATE tokens SET revoked_at = ?3 WHERE tenant = ?1 AND name = ?2 AND revoked_at IS NULL",
                params![tenant_id, name, now],
            )?;
            admin::insert_outbox(
                &tx,
                tenant,
                &TrailEvent::new(by, "DELETE", "auditlog.token")
                    .key(name)
                    .message(format!("{} revoked token {name}", by.name))
                    .before(token_json(name, scopes, created_at, None))
                    .after(token_json(name, scopes, created_at, Some(now))),
            )?;
            tx.commit()?;
            Ok(true)
        })?;
        if revoked {
            self.wake_writer();
        }
        Ok(revoked)
    }

    fn create_person(
        &self,
        tenant: &TenantId,
        name: &str,
        role: Role,
        password_hash: &str,
        by: &Actor,
    ) -> Result<(), StoreError> {
        self.ensure_tenant(tenant)?;
        self.with_conn(|conn| {
            let (tenant_id, _) = ensure_tenant_row(conn, tenant)?;
            admin::create_person(conn, tenant, tenant_id, name, role, password_hash, by)
        })?;
        self.wake_writer();
        Ok(())
    }

    fn list_people(&self, tenant: &TenantId) -> Result<Vec<PersonInfo>, StoreError> {
        self.with_conn(|conn| match Self::tenant_id(conn, tenant)? {
            Some(tenant_id) => admin::list_people(conn, tenant_id),
            None => Ok(Vec::new()),
        })
    }

    fn disable_person(
        &self,
        tenant: &TenantId,
        name: &str,
        by: &Actor,
    ) -> Result<bool, StoreError> {
        let done = self.with_conn(|conn| match Self::tenant_id(conn, tenant)? {
            Some(tenant_id) => admin::disable_person(conn, tenant, tenant_id, name, by),
            None => Ok(false),
        })?;
        if done {
            self.wake_writer();
        }
        Ok(done)
    }

    fn set_password(
        &self,
        tenant: &TenantId,
        name: &str,
        password_hash: &str,
        by: &Actor,
    ) -> Result<bool, StoreError> {
        let done = self.with_conn(|conn| match Self::tenant_id(conn, tenant)? {
            Some(tenant_id) => {
                admin::set_password(conn, tenant, tenant_id, name, password_hash, by)
            }
            None => Ok(false),
        })?;
        if done {
            self.wake_writer();
        }
        Ok(done)
    }

    fn credential(&self, tenant: &TenantId, name: &str) -> Result<Option<Credential>, StoreError> {
        self.with_conn(|conn| match Self::tenant_id(conn, tenant)? {
            Some(tenant_id) => admin::credential(conn, tenant_id, name),
            None => Ok(None),
        })
    }

    fn create_session(
        &self,
        tenant: &TenantId,
        name: &str,
        limits: SessionLimits,
    ) -> Result<Option<NewSession>, StoreError> {
        self.with_conn(|conn| match Self::tenant_id(conn, tenant)? {
            Some(tenant_id) => admin::create_session(conn, tenant, tenant_id, name, limits),
            None => Ok(None),
        })
    }

    fn session(
        &self,
        secret: &str,
        limits: SessionLimits,
    ) -> Result<Option<SessionInfo>, StoreError> {
        self.with_conn(|conn| admin::session(conn, secret, limits))
    }

    fn end_session(&self, secret: &str) -> Result<bool, StoreError> {
        self.with_conn(|conn| admin::end_session(conn, secret))
    }

    fn record(&self, tenant: &TenantId, event: &TrailEvent) -> Result<(), StoreError> {
        self.with_conn(|conn| admin::insert_outbox(conn, tenant, event))?;
        self.wake_writer();
        Ok(())
    }

    fn pending_records(&self) -> Result<u64, StoreError> {
        self.with_conn(|conn| {
            let n: i64 = conn.query_row("SELECT COUNT(*) FROM outbox", [], |row| row.get(0))?;
            Ok(n as u64)
        })
    }

    fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        if !token.starts_with(tokens::TOKEN_PREFIX) || token.len() > 128 {
            return Ok(None);
        }
        let hash = tokens::token_hash(token);
        self.with_conn(|conn| {
            let row = conn
                .query_row(
                    "SELECT tokens.id, tokens.hash, tokens.name, tokens.scopes, tenants.name, tokens.last_used_at
                     FROM tokens JOIN tenants ON tenants.id = tokens.tenant
                     WHERE tokens.hash = ?1 AND tokens.revoked_at IS NULL",
                    params![hash.to_vec()],
                    |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, Vec<u8>>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                            row.get::<_, Option<i64>>(5)?,
                        ))
                    },
                )
                .optional()?;
            let Some((id, stored_hash, name, scopes, tenant, last_used)) = row else {
                return Ok(None);
            };
            if !tokens::ct_eq(&stored_hash, &hash) {
                return Ok(None);
            }
            let now = unix_secs();
            // Last use is kept to the minute, so reads do not turn into a write per request.
            if last_used.is_none_or(|t| now - t >= 60) {
                let _ = conn.execute(
                    "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1",
                    params![id, now],
                );
            }
            Ok(Some(Principal {
                tenant: TenantId::parse(&tenant)
                    .map_err(|e| StoreError::Corrupted(e.to_string()))?,
                name,
                scopes: Scopes::parse(&scopes).map_err(StoreError::Corrupted)?,
            }))
        })
    }

    fn verify(
        &self,
        tenant: &TenantId,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<VerifyReport, StoreError> {
        let signer = load_signer(&self.shared, tenant)?;
        let key = key_path(&self.shared, tenant);
        let origin = format!("{}{}", self.shared.options.origin_prefix, tenant);
        let conn = open_connection(&self.shared.dir)?;
        if self.shared.options.verify_mmap {
            // Up to SQLite's 2 GiB cap. The database file never shrinks under a reader (no
            // VACUUM), so the map stays valid.
            conn.execute_batch("PRAGMA mmap_size = 2147418112")?;
        }
        crate::verify::verify_sqlite(
            &conn,
            tenant,
            signer.as_ref().map(|s| (s, origin.as_str())),
            &key,
            progress,
        )
    }

    fn health(&self) -> Health {
        let poisoned = self
            .shared
            .poisoned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let has_writer = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        Health {
            writable: poisoned.is_none() && has_writer,
            problem: poisoned,
        }
    }
}

struct TenantState {
    id: i64,
    name: TenantId,
    size: u64,
    tiles: TileWriter,
    signer: NoteSigner,
    signed_size: u64,
    signed_at: Option<Instant>,
    samples: Vec<Vec<u8>>,
    training: bool,
    dirty: bool,
}

struct Writer {
    shared: Arc<Shared>,
    /// Shared with the open transaction, so the writer's state can change while it is open.
    conn: std::rc::Rc<Connection>,
    tenants: HashMap<TenantId, TenantState>,
    clock: MonotonicClock,
    trained_tx: Sender<(TenantId, Option<Vec<u8>>)>,
    trained_rx: Receiver<(TenantId, Option<Vec<u8>>)>,
    canonical: Vec<u8>,
    stats: WriterStats,
    /// Committed groups go here to be fsynced and answered.
    syncer: Option<(Sender<SyncJob>, JoinHandle<()>)>,
    /// Dropping the sender stops the checkpointer.
    checkpointer: Option<(Sender<()>, JoinHandle<()>)>,
    /// Checkpoints signed in the group being committed.
    signed_in_group: Vec<(TenantId, u64, String)>,
    /// Outbox rows that cannot be taken in (only a bug makes one), left for a fixed binary.
    outbox_skipped: std::collections::HashSet<i64>,
}

/// How often the checkpointer copies the committed WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// WAL frames (of 8 KiB pages) after which the writer completes a checkpoint itself, between
/// two groups, so that its next commit starts the WAL over (readers permitting) instead of
/// growing it: the checkpointer alone rarely catches up with a writer that commits all the
/// time. Most frames are copied by then, so this costs the writer little.
const WAL_RESTART_FRAMES: i64 = 8192;

/// Passes without a new frame after which the checkpointer empties a copied WAL file.
const IDLE_PASSES_BEFORE_TRUNCATE: u32 = 40;
/// WAL files smaller than this are left as they are when idle.
const TRUNCATE_WAL_BYTES: u64 = 4 << 20;

/// `PRAGMA wal_checkpoint(mode)`: the frames in the WAL and how many of them are in the
/// database file, or `None` when it could not complete (busy or locked).
fn checkpoint(conn: &Connection, mode: &str) -> Result<Option<(i64, i64)>, rusqlite::Error> {
    match conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
        ))
    }) {
        Ok((0, frames, copied)) => Ok(Some((frames, copied))),
        Ok(_) => Ok(None),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn checkpoint_failed(e: &rusqlite::Error) -> String {
    format!("copying the WAL into the database failed ({e}); writes are stopped until restart")
}

/// The checkpointer: copies the WAL into the database (a passive checkpoint: it never waits
/// for the writer or readers) every [`CHECKPOINT_EVERY`], off the writer's path, so no commit
/// waits for a checkpoint's copying and database fsync. Once nothing has been written for
/// [`IDLE_PASSES_BEFORE_TRUNCATE`] passes it empties a large WAL file (the writer keeps it at
/// its high-water mark while busy). A checkpoint's I/O error stops all writes, like a failed
/// fsync.
fn run_checkpointer(shared: Arc<Shared>, stop: Receiver<()>) {
    let conn = match open_connection(&shared.dir) {
        Ok(conn) => conn,
        Err(e) => {
            tracing::error!("no checkpointer: {e}");
            return;
        }
    };
    // Never wait for a lock: a busy moment is simply retried at the next pass.
    if let Err(e) = conn.busy_timeout(Duration::ZERO) {
        tracing::error!("no checkpointer: {e}");
        return;
    }
    let wal_path = shared.dir.join(format!("{DB_FILE}-wal"));
    let mut last_frames = -1;
    let mut idle_passes = 0u32;
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let mut result = checkpoint(&conn, "PASSIVE");
        if let Ok(Some((frames, copied))) = result {
            shared.wal_frames.store(frames, Ordering::Relaxed);
            idle_passes = if frames == last_frames && frames == copied {
                idle_passes.saturating_add(1)
            } else {
                0
            };
            last_frames = frames;
            let wal_bytes = fs::metadata(&wal_path).map(|m| m.len()).unwrap_or(0);
            if idle_passes >= IDLE_PASSES_BEFORE_TRUNCATE && wal_bytes > TRUNCATE_WAL_BYTES {
                result = checkpoint(&conn, "TRUNCATE");
                if let Ok(Some(_)) = result {
                    last_frames = 0;
                    shared.wal_frames.store(0, Ordering::Relaxed);
                }
            }
        }
        if let Err(e) = result {
            shared.stop_writes(&checkpoint_failed(&e));
            return;
        }
    }
}

/// A committed group waiting for its fsync before it is answered.
struct SyncJob {
    replies: Vec<(AppendDone, Result<AppendOutcome, StoreError>)>,
    sign_waiters: Vec<mpsc::SyncSender<Result<(), StoreError>>>,
    checkpoints: Vec<(TenantId, u64, String)>,
}

/// The syncer: fsync the WAL once for every batch of committed groups, then answer them. The
/// writer goes on committing the next group meanwhile, so the disk's latency is no longer on
/// its path. A group is answered only after an fsync that started after its commit wrote its
/// frames: the same guarantee as `synchronous=FULL`. An fsync error stops all writes.
fn run_syncer(shared: Arc<Shared>, jobs: Receiver<SyncJob>) {
    let wal_path = shared.dir.join(format!("{DB_FILE}-wal"));
    let mut wal: Option<(File, u64)> = None;
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while let Ok(more) = jobs.try_recv() {
            batch.push(more);
        }
        match sync_wal(&shared.dir, &wal_path, &mut wal) {
            Ok(()) => {
                let mut durable = shared
                    .durable_checkpoint
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                for job in &batch {
                    for (tenant, size, _) in &job.checkpoints {
                        let entry = durable.entry(tenant.clone()).or_insert(0);
                        *entry = (*entry).max(*size);
                    }
                }
                drop(durable);
                if let Some(hook) = &shared.options.on_checkpoint {
                    for job in &batch {
                        for (tenant, size, note) in &job.checkpoints {
                            (hook.0)(tenant, *size, note);
                        }
                    }
                }
                for job in batch {
                    for (done, outcome) in job.replies {
                        done(outcome);
                    }
                    for waiter in job.sign_waiters {
                        let _ = waiter.send(Ok(()));
                    }
                }
            }
            Err(e) => {
                let problem =
                    format!("fsync of the WAL failed ({e}); writes are stopped until restart");
                shared.stop_writes(&problem);
                for job in batch {
                    for (done, _) in job.replies {
                        done(Err(StoreError::Unavailable(problem.clone())));
                    }
                    for waiter in job.sign_waiters {
                        let _ = waiter.send(Err(StoreError::Unavailable(problem.clone())));
                    }
                }
            }
        }
    }
}

/// fsync the WAL file (opened again if SQLite replaced it), and the directory when the file is
/// new to us, so its name survives too.
fn sync_wal(dir: &Path, path: &Path, cache: &mut Option<(File, u64)>) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let inode = match fs::metadata(path) {
        Ok(meta) => meta.ino(),
        // Nothing has been written in WAL mode yet (an empty group at start).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && cache.is_none() => return Ok(()),
        Err(e) => return Err(e),
    };
    if cache.as_ref().map(|(_, known)| *known) != Some(inode) {
        *cache = Some((File::open(path)?, inode));
        File::open(dir)?.sync_all()?;
    }
    match cache {
        Some((file, _)) => file.sync_data(),
        None => Ok(()),
    }
}

/// Where the writer's time goes, logged at debug level when it stops.
#[derive(Default, Debug)]
struct WriterStats {
    groups: u64,
    events: u64,
    apply: Duration,
    commit: Duration,
}

enum Plan {
    New,
    Replay(u64),
    SameAs(usize),
}

/// Why appending planned events stopped.
enum Append {
    /// An id planned as new is in the log already: undo the batch and plan with lookups.
    IdTaken,
    Failed(StoreError),
}

impl Append {
    /// The error of an append where a taken id cannot happen (`why` says why it did).
    fn unexpected(self, why: &str) -> StoreError {
        match self {
            Append::IdTaken => StoreError::Corrupted(why.to_owned()),
            Append::Failed(e) => e,
        }
    }
}

impl From<StoreError> for Append {
    fn from(error: StoreError) -> Append {
        Append::Failed(error)
    }
}

/// Plans from the batch alone: an id met earlier in the batch is the same event (or a
/// conflict, if its body differs); everything else is new.
fn plan_within_batch(events: &[&PreparedEvent]) -> Result<Vec<Plan>, StoreError> {
    let mut plans = Vec::with_capacity(events.len());
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        let Some(id) = event.id.as_deref() else {
            plans.push(Plan::New);
            continue;
        };
        match seen.entry(id) {
            std::collections::hash_map::Entry::Occupied(first) => {
                if !events[*first.get()].same_body(event) {
                    return Err(StoreError::Conflict {
                        index,
                        id: id.to_owned(),
                    });
                }
                plans.push(Plan::SameAs(*first.get()));
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(index);
                plans.push(Plan::New);
            }
        }
    }
    Ok(plans)
}

/// What [`TenantState::undo`] restores: the tenant before a batch that was rolled back.
struct UndoPoint {
    size: u64,
    tiles: TileWriter,
    samples: usize,
    dirty: bool,
}

impl TenantState {
    fn undo_point(&self) -> UndoPoint {
        UndoPoint {
            size: self.size,
            tiles: self.tiles.clone(),
            samples: self.samples.len(),
            dirty: self.dirty,
        }
    }

    fn undo(&mut self, point: UndoPoint) {
        self.size = point.size;
        self.tiles = point.tiles;
        self.samples.truncate(point.samples);
        self.dirty = point.dirty;
    }
}

impl Writer {
    fn new(shared: Arc<Shared>, conn: Connection) -> Writer {
        let (trained_tx, trained_rx) = mpsc::channel();
        let (sync_tx, sync_rx) = mpsc::channel();
        let syncer_shared = shared.clone();
        let syncer = std::thread::Builder::new()
            .name("auditlog-sync".into())
            .spawn(move || run_syncer(syncer_shared, sync_rx))
            .map(|handle| (sync_tx, handle))
            .map_err(|e| tracing::error!("no syncer thread: {e}"))
            .ok();
        let (stop_tx, stop_rx) = mpsc::channel();
        let checkpointer_shared = shared.clone();
        let checkpointer = std::thread::Builder::new()
            .name("auditlog-ckpt".into())
            .spawn(move || run_checkpointer(checkpointer_shared, stop_rx))
            .map(|handle| (stop_tx, handle))
            .map_err(|e| tracing::error!("no checkpointer thread: {e}"))
            .ok();
        Writer {
            shared,
            conn: std::rc::Rc::new(conn),
            tenants: HashMap::new(),
            clock: MonotonicClock::default(),
            trained_tx,
            trained_rx,
            canonical: Vec::with_capacity(4096),
            stats: WriterStats::default(),
            syncer,
            checkpointer,
            signed_in_group: Vec::new(),
            outbox_skipped: std::collections::HashSet::new(),
        }
    }

    fn run(mut self, rx: Receiver<Job>) {
        // Tenants whose newest events were never signed (a crash before the checkpoint) get a
        // checkpoint right away.
        if let Err(e) = self.load_all_tenants() {
            tracing::error!("loading tenants failed: {e}");
        }
        // What a crash left committed but perhaps unsynced is made durable before anything new.
        self.hand_to_syncer(Vec::new(), Vec::new());

        loop {
            // Trail records written by other processes (`token create` beside the server)
            // are polled for; this process's own wake the writer with `Job::Drain`.
            let wait = self
                .next_sign_due()
                .map_or(OUTBOX_POLL, |due| due.min(OUTBOX_POLL));
            let first = match rx.recv_timeout(wait) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    let sign_due = self.next_sign_due().is_some_and(|due| due.is_zero());
                    let pending = admin::outbox_is_empty(&self.conn).map(|empty| !empty);
                    if (sign_due || pending.unwrap_or(false))
                        && let Err(e) = self.commit_group(Vec::new(), false)
                    {
                        tracing::error!("signing checkpoints failed: {e}");
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if let Err(e) = self.commit_group(Vec::new(), true) {
                        tracing::error!("signing the last checkpoints failed: {e}");
                    }
                    tracing::debug!(stats = ?self.stats, "writer stopped");
                    if let Some((sender, handle)) = self.syncer.take() {
                        drop(sender);
                        let _ = handle.join();
                    }
                    if let Some((sender, handle)) = self.checkpointer.take() {
                        drop(sender);
                        let _ = handle.join();
                    }
                    // A clean stop leaves the WAL folded into the database and empty, so the
                    // next opener (`verify`, a restart) does not read through it.
                    if self.poisoned().is_none()
                        && let Err(e) = checkpoint(&self.conn, "TRUNCATE")
                    {
                        tracing::warn!("folding the WAL into the database at stop failed: {e}");
                    }
                    return;
                }
            };
            let mut jobs = vec![first];
            let mut n_events = job_events(&jobs[0]);
            while n_events < self.shared.options.max_group_events {
                match rx.try_recv() {
                    Ok(job) => {
                        n_events += job_events(&job);
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let sign_now = jobs.iter().any(|job| matches!(job, Job::SignNow(_)));
            if let Err(e) = self.commit_group(jobs, sign_now) {
                tracing::error!("commit failed, writes stopped: {e}");
            }
        }
    }

    /// How long until some tenant's unsigned growth is due for a checkpoint.
    fn next_sign_due(&self) -> Option<Duration> {
        let interval = self.shared.options.checkpoint_interval;
        self.tenants
            .values()
            .filter(|t| t.size > t.signed_size)
            .map(|t| match t.signed_at {
                Some(at) => interval.saturating_sub(at.elapsed()),
                None => Duration::ZERO,
            })
            .min()
    }

    fn poisoned(&self) -> Option<String> {
        self.shared
            .poisoned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn poison(&mut self, problem: String) {
        *self
            .shared
            .poisoned
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(problem);
        // In-memory state may be ahead of disk; forget it (a restart recovers from disk).
        self.tenants.clear();
    }

    fn commit_group(&mut self, jobs: Vec<Job>, sign_all: bool) -> Result<(), StoreError> {
        let mut replies: Vec<(AppendDone, Result<AppendOutcome, StoreError>)> = Vec::new();
        let mut sign_waiters = Vec::new();
        let mut appends = Vec::new();
        for job in jobs {
            match job {
                Job::Append {
                    tenant,
                    events,
                    done,
                } => appends.push((tenant, events, done)),
                Job::SignNow(waiter) => sign_waiters.push(waiter),
                // Every group takes in the outbox.
                Job::Drain => {}
            }
        }
        if let Some(problem) = self.poisoned() {
            for (_, _, done) in appends {
                done(Err(StoreError::Unavailable(problem.clone())));
            }
            for waiter in sign_waiters {
                let _ = waiter.send(Err(StoreError::Unavailable(problem.clone())));
            }
            return Ok(());
        }
        let result = self.commit_group_inner(appends, sign_all, &mut replies);
        match result {
            Ok(()) => {
                self.hand_to_syncer(replies, sign_waiters);
                self.restart_wal_if_long();
                self.start_training();
                Ok(())
            }
            Err(e) => {
                self.signed_in_group.clear();
                let problem = format!("a commit failed ({e}); writes are stopped until restart");
                self.poison(problem.clone());
                for (done, _) in replies {
                    done(Err(StoreError::Unavailable(problem.clone())));
                }
                for waiter in sign_waiters {
                    let _ = waiter.send(Err(StoreError::Unavailable(problem.clone())));
                }
                Err(e)
            }
        }
    }

    /// Answer a committed group once it is on disk.
    fn hand_to_syncer(
        &mut self,
        replies: Vec<(AppendDone, Result<AppendOutcome, StoreError>)>,
        sign_waiters: Vec<mpsc::SyncSender<Result<(), StoreError>>>,
    ) {
        let job = SyncJob {
            replies,
            sign_waiters,
            checkpoints: std::mem::take(&mut self.signed_in_group),
        };
        match &self.syncer {
            Some((sender, _)) => {
                if let Err(mpsc::SendError(job)) = sender.send(job) {
                    fail_job(job, "the syncer stopped");
                }
            }
            None => fail_job(job, "no syncer thread"),
        }
    }

    fn commit_group_inner(
        &mut self,
        appends: Vec<(TenantId, Vec<SealedEvent>, AppendDone)>,
        sign_all: bool,
        replies: &mut Vec<(AppendDone, Result<AppendOutcome, StoreError>)>,
    ) -> Result<(), StoreError> {
        // Tenants are loaded (and created) outside the transaction's hot part.
        for (tenant, _, _) in &appends {
            self.load_tenant(tenant)?;
        }
        let conn = self.conn.clone();
        let started = Instant::now();
        (|| {
            let tx = Transaction::new_unchecked(&conn, rusqlite::TransactionBehavior::Immediate)?;
            self.install_trained(&tx)?;
            let now = now();
            for (tenant, events, done) in appends {
                match self.apply(&tx, &tenant, &events, now) {
                    Ok(outcome) => replies.push((done, Ok(outcome))),
                    Err(e @ (StoreError::Conflict { .. } | StoreError::BadRequest(_))) => {
                        replies.push((done, Err(e)))
                    }
                    Err(e) => {
                        replies.push((done, Err(StoreError::Unavailable("commit failed".into()))));
                        return Err(e);
                    }
                }
            }
            self.drain_outbox(&tx, now)?;
            self.write_tiles_and_sign(&tx, sign_all)?;
            let applied = Instant::now();
            tx.commit()?;
            self.stats.groups += 1;
            self.stats.apply += applied.duration_since(started);
            self.stats.commit += applied.elapsed();
            Ok(())
        })()
    }

    /// See [`WAL_RESTART_FRAMES`]. A failed checkpoint stops all writes.
    fn restart_wal_if_long(&mut self) {
        if self.shared.wal_frames.load(Ordering::Relaxed) < WAL_RESTART_FRAMES {
            return;
        }
        match checkpoint(&self.conn, "PASSIVE") {
            // The next commit starts the WAL over; the checkpointer will count again.
            Ok(Some(_)) => self.shared.wal_frames.store(0, Ordering::Relaxed),
            Ok(None) => {}
            Err(e) => self.shared.stop_writes(&checkpoint_failed(&e)),
        }
    }

    /// Move queued records into their tenants' trail logs, in the group's transaction: a
    /// record leaves the outbox exactly when it enters the trail log.
    fn drain_outbox(&mut self, tx: &Transaction<'_>, now: Timestamp) -> Result<(), StoreError> {
        if self.outbox_skipped.is_empty() && admin::outbox_is_empty(tx)? {
            return Ok(());
        }
        let rows = admin::pending_outbox(tx, 1000 + self.outbox_skipped.len())?;
        let mut by_tenant: Vec<(TenantId, Vec<SealedEvent>)> = Vec::new();
        let peer = std::net::IpAddr::from([127, 0, 0, 1]);
        for (id, tenant, body) in rows {
            if self.outbox_skipped.contains(&id) {
                continue;
            }
            let prepared = TenantId::parse_stored(&tenant)
                .map_err(|e| e.to_string())
                .and_then(|tenant| {
                    let value = auditlog_core::json::parse(
                        &body,
                        &auditlog_core::json::JsonLimits::default(),
                    )
                    .map_err(|e| e.to_string())?;
                    let prepared =
                        crate::prepare_event(value, now, peer).map_err(|e| e.message.clone())?;
                    Ok((tenant, prepared))
                });
            let (tenant, prepared) = match prepared {
                Ok(ok) => ok,
                Err(why) => {
                    // Only a bug can queue a bad record; keep it for a fixed binary.
                    tracing::error!(
                        "trail record {id} in the outbox is invalid, left there: {why}"
                    );
                    self.outbox_skipped.insert(id);
                    continue;
                }
            };
            self.load_tenant(&tenant)?;
            let (dict_id, dict) = self.shared.dicts.current(&tenant);
            let blob = codec::compress_parts(
                dict_id,
                &dict,
                self.shared.options.compression_level,
                &prepared.parts,
            )?;
            let sealed = SealedEvent {
                prepared,
                dict_id,
                blob,
            };
            match by_tenant.iter_mut().find(|(t, _)| *t == tenant) {
                Some((_, events)) => events.push(sealed),
                None => by_tenant.push((tenant, vec![sealed])),
            }
            tx.execute("DELETE FROM outbox WHERE id = ?1", params![id])?;
        }
        for (tenant, events) in by_tenant {
            self.apply(tx, &tenant, &events, now)?;
        }
        Ok(())
    }

    fn load_all_tenants(&mut self) -> Result<(), StoreError> {
        let names: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT name FROM tenants WHERE tree_size > 0")?;
            stmt.query_map([], |row| row.get(0))?
                .collect::<Result<Vec<String>, _>>()?
        };
        for name in names {
            match TenantId::parse_stored(&name) {
                Ok(tenant) => self.load_tenant(&tenant)?,
                Err(e) => tracing::error!("skipping tenant: {e}"),
            }
        }
        Ok(())
    }

    fn load_tenant(&mut self, tenant: &TenantId) -> Result<(), StoreError> {
        if self.tenants.contains_key(tenant) {
            return Ok(());
        }
        let signer = load_or_create_signer(&self.shared, tenant)?;
        let (id, size) = ensure_tenant_row(&self.conn, tenant)?;
        let mut edge = Vec::new();
        for tile in TileWriter::right_edge_ids(size) {
            let data: Option<Vec<u8>> = self
                .conn
                .query_row(
                    "SELECT data FROM tiles WHERE tenant = ?1 AND level = ?2 AND idx = ?3",
                    params![id, tile.level as i64, tile.index as i64],
                    |row| row.get(0),
                )
                .optional()?;
            let data = data.ok_or_else(|| {
                StoreError::Corrupted(format!("tenant {tenant}: tile {} is missing", tile.path()))
            })?;
            edge.push((tile, data));
        }
        let tiles = TileWriter::resume(size, edge)?;
        // received_at never decreases, across restarts too: resume the clock from the newest event.
        let newest: Option<i64> = self.conn.query_row(
            "SELECT MAX(received_at) FROM events WHERE tenant = ?1",
            params![id],
            |row| row.get(0),
        )?;
        if let Some(newest) = newest {
            let newest = Timestamp::from_unix_nanos(newest);
            if newest > self.clock.last() {
                self.clock = MonotonicClock::starting_at(newest);
            }
        }
        let signed_size: Option<i64> = self.conn.query_row(
            "SELECT MAX(size) FROM checkpoints WHERE tenant = ?1",
            params![id],
            |row| row.get(0),
        )?;
        let dict: Option<(i64, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT id, data FROM dicts WHERE tenant = ?1 ORDER BY id DESC LIMIT 1",
                params![id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        if let Some((dict_id, bytes)) = &dict {
            self.shared
                .dicts
                .set_current(tenant, *dict_id, Arc::new(bytes.clone()));
        }
        self.tenants.insert(
            tenant.clone(),
            TenantState {
                id,
                name: tenant.clone(),
                size,
                tiles,
                signer,
                signed_size: signed_size.unwrap_or(0) as u64,
                signed_at: None,
                samples: Vec::new(),
                training: dict.is_some(),
                dirty: false,
            },
        );
        Ok(())
    }

    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        tenant: &TenantId,
        sealed: &[SealedEvent],
        now: Timestamp,
    ) -> Result<AppendOutcome, StoreError> {
        let events: Vec<&PreparedEvent> = sealed.iter().map(|e| &e.prepared).collect();
        if !self.tenants.contains_key(tenant) {
            return Err(StoreError::Corrupted(format!("tenant {tenant} not loaded")));
        }
        // Decide every event before changing anything, so a conflict stores nothing. The
        // common case is ids never seen before: they are planned as new without a lookup,
        // and the unique index on (tenant, idem) checks them in the insert itself. Should it
        // find one taken, the batch is undone and planned again with a lookup per id.
        let plans = plan_within_batch(&events)?;
        if !events.iter().any(|event| event.id.is_some()) {
            return self
                .append_planned(tx, tenant, sealed, &plans, now)
                .map_err(|e| e.unexpected("an event without id took an id"));
        }
        tx.execute_batch("SAVEPOINT apply")?;
        let before = self.tenants.get(tenant).map(TenantState::undo_point);
        match self.append_planned(tx, tenant, sealed, &plans, now) {
            Ok(outcome) => {
                tx.execute_batch("RELEASE apply")?;
                Ok(outcome)
            }
            Err(stopped) => {
                // Nothing of the batch stays, whatever stopped it.
                tx.execute_batch("ROLLBACK TO apply; RELEASE apply")?;
                if let (Some(state), Some(before)) = (self.tenants.get_mut(tenant), before) {
                    let undone = state.size - before.size;
                    state.undo(before);
                    self.stats.events -= undone;
                }
                if let Append::Failed(e) = stopped {
                    return Err(e);
                }
                let plans = self.plan_with_lookups(tx, tenant, &events)?;
                self.append_planned(tx, tenant, sealed, &plans, now)
                    .map_err(|e| e.unexpected("an id was taken after its lookup"))
            }
        }
    }

    /// Plans for ids that may be in the log: a lookup per id, before anything changes.
    fn plan_with_lookups(
        &mut self,
        tx: &Transaction<'_>,
        tenant: &TenantId,
        events: &[&PreparedEvent],
    ) -> Result<Vec<Plan>, StoreError> {
        let state = self
            .tenants
            .get(tenant)
            .ok_or_else(|| StoreError::Corrupted(format!("tenant {tenant} not loaded")))?;
        let mut plans = plan_within_batch(events)?;
        let mut lookup = tx.prepare_cached(
            "SELECT seq, idem_hash, dict, body FROM events WHERE tenant = ?1 AND idem = ?2",
        )?;
        let mut decoder = Decoder::default();
        for (index, (event, plan)) in events.iter().zip(plans.iter_mut()).enumerate() {
            let (Some(id), Plan::New) = (event.id.as_deref(), &plan) else {
                continue;
            };
            type Row = (i64, Option<Vec<u8>>, i64, Vec<u8>);
            let stored: Option<Row> = lookup
                .query_row(params![state.id, id], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })
                .optional()?;
            if let Some((seq, hash, dict, blob)) = stored {
                // A row that no longer decodes is no replay (verify reports it).
                let stored_parts = || decoder.parts(&self.shared.dicts, tx, dict, &blob).ok();
                if !event.same_as_stored(hash.as_deref(), stored_parts) {
                    return Err(StoreError::Conflict {
                        index,
                        id: id.to_owned(),
                    });
                }
                *plan = Plan::Replay(seq as u64);
            }
        }
        Ok(plans)
    }

    /// Append the events planned as new; answer replays from the log.
    fn append_planned(
        &mut self,
        tx: &Transaction<'_>,
        tenant: &TenantId,
        sealed: &[SealedEvent],
        plans: &[Plan],
        now: Timestamp,
    ) -> Result<AppendOutcome, Append> {
        let state = self
            .tenants
            .get_mut(tenant)
            .ok_or_else(|| StoreError::Corrupted(format!("tenant {tenant} not loaded")))?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (tenant, seq, received_at, idem, idem_hash, dict, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        ).map_err(StoreError::from)?;
        let mut receipts: Vec<Receipt> = Vec::with_capacity(sealed.len());
        let mut decoder = Decoder::default();
        for (seal, plan) in sealed.iter().zip(plans) {
            let event = &seal.prepared;
            let receipt = match plan {
                Plan::New => {
                    let seq = state.size + 1;
                    let received_at = self.clock.stamp(now);
                    self.canonical.clear();
                    canonical_event(
                        &event.parts,
                        received_at,
                        seq,
                        state.name.as_str(),
                        &mut self.canonical,
                    );
                    let leaf = merkle::leaf_hash(&self.canonical);
                    let inserted = insert.execute(params![
                        state.id,
                        seq as i64,
                        received_at.unix_nanos(),
                        event.id.as_deref(),
                        event.input_hash.as_ref().map(|hash| hash.as_slice()),
                        seal.dict_id,
                        seal.blob
                    ]);
                    match inserted {
                        Ok(_) => {}
                        Err(rusqlite::Error::SqliteFailure(error, _))
                            if event.id.is_some()
                                && error.extended_code
                                    == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
                        {
                            return Err(Append::IdTaken);
                        }
                        Err(other) => return Err(Append::Failed(other.into())),
                    }
                    state.tiles.append(leaf);
                    state.size = seq;
                    self.stats.events += 1;
                    state.dirty = true;
                    if !state.training && state.samples.len() < codec::DICT_TRAIN_AFTER {
                        state.samples.push(codec::encode_plain(&event.parts));
                    }
                    Receipt {
                        id: event.id.clone(),
                        seq,
                        leaf_hash: leaf,
                    }
                }
                Plan::Replay(seq) => {
                    let (received_at, dict, blob): (i64, i64, Vec<u8>) = tx
                        .query_row(
                            "SELECT received_at, dict, body FROM events WHERE tenant = ?1 AND seq = ?2",
                            params![state.id, *seq as i64],
                            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                        )
                        .map_err(StoreError::from)?;
                    let parts = decoder.parts(&self.shared.dicts, tx, dict, &blob)?;
                    let mut canonical = Vec::new();
                    canonical_event(
                        &parts,
                        Timestamp::from_unix_nanos(received_at),
                        *seq,
                        state.name.as_str(),
                        &mut canonical,
                    );
                    Receipt {
                        id: event.id.clone(),
                        seq: *seq,
                        leaf_hash: merkle::leaf_hash(&canonical),
                    }
                }
                Plan::SameAs(first) => receipts[*first].clone(),
            };
            receipts.push(receipt);
        }
        Ok(AppendOutcome {
            receipts,
            tree_size: state.size,
        })
    }

    fn write_tiles_and_sign(
        &mut self,
        tx: &Transaction<'_>,
        sign_all: bool,
    ) -> Result<(), StoreError> {
        let interval = self.shared.options.checkpoint_interval;
        let signed_at = now();
        let mut put_tile = tx.prepare_cached(
            "INSERT OR REPLACE INTO tiles (tenant, level, idx, data) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for state in self.tenants.values_mut() {
            if state.dirty {
                for (tile, data) in state.tiles.take_dirty() {
                    put_tile.execute(params![
                        state.id,
                        tile.level as i64,
                        tile.index as i64,
                        data
                    ])?;
                }
                tx.execute(
                    "UPDATE tenants SET tree_size = ?2 WHERE id = ?1",
                    params![state.id, state.size as i64],
                )?;
                state.dirty = false;
            }
            let due = state.signed_at.is_none_or(|at| at.elapsed() >= interval);
            if state.size > state.signed_size && (due || sign_all) {
                let checkpoint = Checkpoint {
                    origin: state.signer.name().to_owned(),
                    size: state.size,
                    root: state.tiles.root(),
                };
                let note = sign_checkpoint(&state.signer, &checkpoint);
                tx.execute(
                    "INSERT OR IGNORE INTO checkpoints (tenant, size, signed_at, note) VALUES (?1, ?2, ?3, ?4)",
                    params![state.id, state.size as i64, signed_at.unix_nanos(), note],
                )?;
                state.signed_size = state.size;
                state.signed_at = Some(Instant::now());
                self.signed_in_group
                    .push((state.name.clone(), state.size, note.clone()));
            }
        }
        Ok(())
    }

    /// Start training a dictionary for tenants that have collected enough samples.
    fn start_training(&mut self) {
        for state in self.tenants.values_mut() {
            if !state.training && state.samples.len() >= codec::DICT_TRAIN_AFTER {
                state.training = true;
                let samples = std::mem::take(&mut state.samples);
                let tenant = state.name.clone();
                let tx = self.trained_tx.clone();
                let _ = std::thread::Builder::new()
                    .name("auditlog-dict".into())
                    .spawn(move || {
                        let _ = tx.send((tenant, codec::train(&samples)));
                    });
            }
        }
    }

    /// Store dictionaries that finished training, and switch their tenants to them.
    fn install_trained(&mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        while let Ok((tenant, dict)) = self.trained_rx.try_recv() {
            let Some(state) = self.tenants.get_mut(&tenant) else {
                continue;
            };
            let Some(dict) = dict else {
                continue;
            };
            tx.execute(
                "INSERT INTO dicts (tenant, data) VALUES (?1, ?2)",
                params![state.id, dict],
            )?;
            let dict_id = tx.last_insert_rowid();
            self.shared
                .dicts
                .set_current(&tenant, dict_id, Arc::new(dict));
        }
        Ok(())
    }
}

fn fail_job(job: SyncJob, why: &str) {
    for (done, _) in job.replies {
        done(Err(StoreError::Unavailable(why.to_owned())));
    }
    for waiter in job.sign_waiters {
        let _ = waiter.send(Err(StoreError::Unavailable(why.to_owned())));
    }
}

fn job_events(job: &Job) -> usize {
    match job {
        Job::Append { events, .. } => events.len().max(1),
        Job::SignNow(_) | Job::Drain => 1,
    }
}
