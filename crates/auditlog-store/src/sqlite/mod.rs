//! The embedded backend: SQLite (bundled) in WAL mode, one writer connection driven by the
//! log engine (`engine`, through [`writer::SqliteWriter`]) and a small pool of reader
//! connections for everything else.
//!
//! Layout of the data directory:
//! - `auditlog.db` (+ `-wal`, `-shm`, all mode 0600): events, tiles, checkpoints,
//!   dictionaries, tokens, people, sessions, the outbox; its schema is `migrations/*.sql`,
//!   applied in order, the version in `PRAGMA user_version`;
//! - `keys/<tenant>.key` (mode 0600): the tenant's Ed25519 signer key (`keys.rs`);
//! - `lock`: held with `flock` by the one process that appends (a server or a direct ingest).
//!
//! Durability: the writer commits with `synchronous=NORMAL` and the engine's syncer answers
//! only after an fsync of the WAL ([`writer::WalSync`]), the guarantee of `FULL` off the
//! writer's path.

pub(crate) mod admin;
mod writer;

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auditlog_core::event::{Timestamp, canonical_event};
use auditlog_core::tenant::TenantId;
use auditlog_ledger::Hash;
use auditlog_ledger::merkle::{self, NodeReader};
use auditlog_ledger::tiles::TileReader;
use fs4::fs_std::FileExt as _;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::codec::Decoder;
use crate::engine::{self, Engine, StoreOptions, empty_tree_note};
use crate::keys::{Keystore, now, unix_secs};
use crate::people::{Credential, NewSession, PersonInfo, Role, SessionInfo, SessionLimits};
use crate::tokens::{self, Principal, Scopes, TokenInfo};
use crate::trail::{Actor, TrailEvent};
use crate::{
    AppendDone, Health, PreparedEvent, Store, StoreError, StoredCheckpoint, StoredEvent,
    VerifyReport,
};

pub(crate) const DB_FILE: &str = "auditlog.db";

/// The schema, one SQL file per version; a database at version n has run the first n.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_events.sql"),
    include_str!("migrations/0002_people.sql"),
    include_str!("migrations/0003_derived_csrf_token_creators.sql"),
];

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> StoreError {
        let kind = match &err {
            rusqlite::Error::SqliteFailure(e, _) => match e.code {
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                    crate::BackendErrorKind::Busy
                }
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase => {
                    crate::BackendErrorKind::Corrupted
                }
                rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::DiskFull => {
                    crate::BackendErrorKind::Io
                }
                _ => crate::BackendErrorKind::Other,
            },
            _ => crate::BackendErrorKind::Other,
        };
        StoreError::Backend {
            backend: "sqlite",
            kind,
            message: err.to_string(),
        }
    }
}

/// What the reader side of the store keeps: the directory and pooled connections.
pub(crate) struct Db {
    dir: PathBuf,
    readers: Mutex<Vec<Connection>>,
    /// Decoders with their dictionary contexts, reused across reads: loading a dictionary into
    /// a fresh context costs more than decompressing a page of events.
    decoders: Mutex<Vec<Decoder>>,
}

impl Db {
    /// A decoder from the pool (or a new one); give it back with [`Db::put_decoder`].
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
    log: Arc<engine::Shared>,
    db: Arc<Db>,
    engine: Option<Engine>,
    _lock: Option<File>,
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
        let mut store = Self::open_inner(dir, options, Some(lock))?;
        let (backend, durability) = writer::SqliteWriter::open(dir, store.log.clone())?;
        store.engine = Some(Engine::start(store.log.clone(), backend, durability)?);
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
        let key_dir = options.key_dir.clone().unwrap_or_else(|| dir.join("keys"));
        create_dir_private(&key_dir)?;
        restrict_db_files(dir)?;
        let conn = open_connection(dir)?;
        migrate(&conn)?;
        let keys = Keystore {
            dir: key_dir,
            origin_prefix: options.origin_prefix.clone(),
        };
        Ok(SqliteStore {
            log: Arc::new(engine::Shared::new(options, keys)),
            db: Arc::new(Db {
                dir: dir.to_owned(),
                readers: Mutex::new(vec![conn]),
                decoders: Mutex::new(Vec::new()),
            }),
            engine: None,
            _lock: lock,
        })
    }

    /// Tell the writer (if this process has one) that trail records wait in the outbox.
    fn wake_writer(&self) {
        if let Some(engine) = &self.engine {
            engine.wake();
        }
    }

    pub fn dir(&self) -> &Path {
        &self.db.dir
    }

    /// Stop the writer after it has committed what it was given and signed a last checkpoint.
    pub fn close(&self) {
        if let Some(engine) = &self.engine {
            engine.close();
        }
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        with_conn(&self.db, f)
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

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn with_conn<T>(
    db: &Db,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let conn = db.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let conn = match conn {
        Some(conn) => conn,
        None => open_connection(&db.dir)?,
    };
    let result = f(&conn);
    let mut pool = db.readers.lock().unwrap_or_else(|e| e.into_inner());
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

/// Make the database's files readable by their owner only (they hold session and token
/// hashes and every event). A new database file is created 0600 before SQLite opens it, and
/// SQLite gives its `-wal` and `-shm` the database file's mode; files of an older install are
/// chmodded. Only by path: opening and closing one of these files in a process that has a
/// connection would drop SQLite's POSIX locks (closing any descriptor of a file releases
/// them all), letting another process delete the WAL under it.
fn restrict_db_files(dir: &Path) -> Result<(), StoreError> {
    let db = dir.join(DB_FILE);
    match OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&db)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(StoreError::io(format!("create {}", db.display()), e)),
    }
    for name in [
        DB_FILE.to_owned(),
        format!("{DB_FILE}-wal"),
        format!("{DB_FILE}-shm"),
    ] {
        let path = dir.join(&name);
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(format!("stat {}", path.display()), e)),
        };
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                .map_err(|e| StoreError::io(format!("chmod {}", path.display()), e))?;
        }
    }
    Ok(())
}

pub(crate) fn open_connection(dir: &Path) -> Result<Connection, StoreError> {
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
    // checkpointer thread (`writer::run_checkpointer`), the writer restarts the WAL from its
    // start once it holds `WAL_RESTART_FRAMES` (so the file stays near that size), and SQLite
    // checkpoints and removes it when the last connection closes.
    Ok(conn)
}

/// Apply the migrations the database has not run yet, each in its own transaction.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let latest = MIGRATIONS.len() as i64;
    if version > latest {
        return Err(StoreError::Corrupted(format!(
            "data directory has schema version {version}, newer than this binary's {latest}"
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}\n PRAGMA user_version = {}; COMMIT;",
            index + 1
        ))?;
    }
    Ok(())
}

/// Find or create the tenant row (any process may do this; the name is unique).
pub(crate) fn ensure_tenant_row(
    conn: &Connection,
    tenant: &TenantId,
) -> Result<(i64, u64), StoreError> {
    conn.execute(
        "INSERT OR IGNORE INTO tenants (name, tree_size, created_at) VALUES (?1, 0, ?2)",
        params![tenant.as_str(), unix_secs()],
    )?;
    SqliteStore::tenant_row(conn, tenant)?
        .ok_or_else(|| StoreError::Corrupted(format!("tenant {tenant} vanished")))
}

/// A dictionary by id.
pub(crate) fn load_dict(conn: &Connection, dict_id: i64) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT data FROM dicts WHERE id = ?1",
            params![dict_id],
            |row| row.get(0),
        )
        .optional()?)
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
        match &self.engine {
            Some(engine) => engine.append(tenant, events, done),
            None => done(Err(StoreError::Unavailable(
                "this store was opened read-only".into(),
            ))),
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
        let (shared, log) = (&self.db, &self.log);
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
                    let parts = decoder.parts(&log.dicts, |id| load_dict(conn, id), dict, &blob)?;
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
        let (shared, log) = (&self.db, &self.log);
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
                let parts = match decoder.parts(&log.dicts, |id| load_dict(conn, id), dict, &blob) {
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
            let durable = self.log.durable_checkpoint(tenant);
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
        Ok(self.log.keys.load_or_create(tenant)?.verifier_key())
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
        let signer = self.log.keys.load_or_create(tenant)?;
        let origin = self.log.keys.origin(tenant);
        if body.lines().next() == Some(origin.as_str()) {
            return Err(StoreError::BadRequest(
                "a note starting with the log's origin is a checkpoint; only the writer signs those"
                    .into(),
            ));
        }
        Ok(signer.try_sign(body)?)
    }

    fn sign_pending(&self) -> Result<(), StoreError> {
        match &self.engine {
            Some(engine) => engine.sign_pending(),
            None => Ok(()),
        }
    }

    fn ensure_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let signer = self.log.keys.load_or_create(tenant)?;
        self.with_conn(|conn| {
            let (id, size) = ensure_tenant_row(conn, tenant)?;
            // An empty log has a signed head too: the empty tree (RFC 9162: the hash of
            // nothing), so `GET /api/v1/checkpoint` answers from the first start and a
            // monitor can follow the log from size 0. Ed25519 signs deterministically, so
            // any process writing it writes the same note.
            if size == 0 {
                let note = empty_tree_note(&signer);
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
                "INSERT INTO tokens (tenant, name, hash, scopes, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    tenant_id,
                    name,
                    tokens::token_hash(&token).to_vec(),
                    scopes.to_string(),
                    now,
                    by.person_name()
                ],
            )?;
            admin::insert_outbox(
                &tx,
                tenant,
                &TrailEvent::new(by, "CREATE", "auditlog.token")
                    .key(name)
                    .message(format!("{} created token {name} ({scopes})", by.name))
                    .after(tokens::token_json(name, scopes, now, None)),
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
                    .before(tokens::token_json(name, scopes, created_at, None))
                    .after(tokens::token_json(name, scopes, created_at, Some(now))),
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
        let signer = self.log.keys.load(tenant)?;
        let key = self.log.keys.path(tenant);
        let origin = self.log.keys.origin(tenant);
        let conn = open_connection(&self.db.dir)?;
        if self.log.options.verify_mmap {
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
        let poisoned = self.log.poisoned();
        let has_writer = self.engine.as_ref().is_some_and(Engine::is_running);
        Health {
            writable: poisoned.is_none() && has_writer,
            problem: poisoned,
        }
    }
}
