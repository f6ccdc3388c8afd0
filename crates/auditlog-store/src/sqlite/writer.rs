//! The SQLite side of the log engine's writer: [`SqliteWriter`] turns the engine's
//! [`WriteBackend`] calls into statements on one connection, [`WalSync`] fsyncs the WAL for
//! the engine's syncer, and the checkpointer thread copies the WAL into the database.
//!
//! One process appends to a data directory (the `flock`), so the head row never moves under
//! the writer; `lock_head` still reads it, as the engine's contract asks of every backend.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use auditlog_core::tenant::TenantId;
use rusqlite::{Connection, OptionalExtension, params};

use super::{DB_FILE, admin, ensure_tenant_row, load_dict, open_connection};
use crate::StoreError;
use crate::backend::{
    Durability, EventRow, IdemRow, Inserted, OutboxRow, StoredRow, TenantKey, WriteBackend,
};
use crate::engine::Shared;

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

pub(crate) struct SqliteWriter {
    shared: Arc<Shared>,
    conn: Connection,
    /// Frames in the WAL at the checkpointer's last pass.
    wal_frames: Arc<AtomicI64>,
    /// Dropping the sender stops the checkpointer.
    checkpointer: Option<(Sender<()>, JoinHandle<()>)>,
}

impl SqliteWriter {
    /// The writer's connection and the checkpointer thread of the directory.
    pub(crate) fn open(
        dir: &Path,
        shared: Arc<Shared>,
    ) -> Result<(SqliteWriter, WalSync), StoreError> {
        let conn = open_connection(dir)?;
        // The writer's commits write the WAL without waiting for the disk; the engine's
        // syncer fsyncs it (`WalSync`) and only then are the requests answered. NORMAL in WAL
        // mode still syncs the WAL before every checkpoint copies it into the database.
        conn.execute_batch("PRAGMA synchronous = NORMAL;")?;
        let wal_frames = Arc::new(AtomicI64::new(0));
        let (stop_tx, stop_rx) = mpsc::channel();
        let (thread_shared, thread_frames, thread_dir) =
            (shared.clone(), wal_frames.clone(), dir.to_owned());
        let checkpointer = std::thread::Builder::new()
            .name("auditlog-ckpt".into())
            .spawn(move || run_checkpointer(thread_shared, thread_frames, &thread_dir, stop_rx))
            .map(|handle| (stop_tx, handle))
            .map_err(|e| tracing::error!("no checkpointer thread: {e}"))
            .ok();
        let sync = WalSync {
            dir: dir.to_owned(),
            wal_path: dir.join(format!("{DB_FILE}-wal")),
            wal: None,
        };
        Ok((
            SqliteWriter {
                shared,
                conn,
                wal_frames,
                checkpointer,
            },
            sync,
        ))
    }

    fn stop_checkpointer(&mut self) {
        if let Some((sender, handle)) = self.checkpointer.take() {
            drop(sender);
            let _ = handle.join();
        }
    }
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        self.stop_checkpointer();
    }
}

impl WriteBackend for SqliteWriter {
    fn begin(&mut self) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch("BEGIN IMMEDIATE")?)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch("COMMIT")?)
    }

    fn rollback(&mut self) {
        if !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::warn!("rolling back a failed group failed: {e}");
        }
    }

    fn savepoint(&mut self) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch("SAVEPOINT apply")?)
    }

    fn release_savepoint(&mut self) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch("RELEASE apply")?)
    }

    fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        Ok(self
            .conn
            .execute_batch("ROLLBACK TO apply; RELEASE apply")?)
    }

    fn ensure_tenant(&mut self, tenant: &TenantId) -> Result<(TenantKey, u64), StoreError> {
        ensure_tenant_row(&self.conn, tenant)
    }

    fn lock_head(&mut self, tenant: TenantKey) -> Result<u64, StoreError> {
        // `BEGIN IMMEDIATE` holds the database's write lock: the row is locked with it.
        let size: i64 = self
            .conn
            .prepare_cached("SELECT tree_size FROM tenants WHERE id = ?1")?
            .query_row(params![tenant], |row| row.get(0))?;
        Ok(size as u64)
    }

    fn set_head(&mut self, tenant: TenantKey, size: u64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE tenants SET tree_size = ?2 WHERE id = ?1")?
            .execute(params![tenant, size as i64])?;
        Ok(())
    }

    fn tenants_with_events(&mut self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM tenants WHERE tree_size > 0")?;
        let names = stmt
            .query_map([], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(names)
    }

    fn insert_event(&mut self, row: &EventRow<'_>) -> Result<Inserted, StoreError> {
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO events (tenant, seq, received_at, idem, idem_hash, dict, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        match insert.execute(params![
            row.tenant,
            row.seq as i64,
            row.received_at,
            row.idem,
            row.idem_hash,
            row.dict,
            row.body
        ]) {
            Ok(_) => Ok(Inserted::Stored),
            Err(rusqlite::Error::SqliteFailure(error, _))
                if row.idem.is_some()
                    && error.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                Ok(Inserted::IdTaken)
            }
            Err(other) => Err(other.into()),
        }
    }

    fn find_idem(&mut self, tenant: TenantKey, id: &str) -> Result<Option<IdemRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT seq, idem_hash, dict, body FROM events WHERE tenant = ?1 AND idem = ?2",
            )?
            .query_row(params![tenant, id], |row| {
                Ok(IdemRow {
                    seq: row.get::<_, i64>(0)? as u64,
                    idem_hash: row.get(1)?,
                    dict: row.get(2)?,
                    body: row.get(3)?,
                })
            })
            .optional()?)
    }

    fn event_row(&mut self, tenant: TenantKey, seq: u64) -> Result<StoredRow, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT received_at, dict, body FROM events WHERE tenant = ?1 AND seq = ?2",
            )?
            .query_row(params![tenant, seq as i64], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?)
    }

    fn newest_received_at(&mut self, tenant: TenantKey) -> Result<Option<i64>, StoreError> {
        Ok(self.conn.query_row(
            "SELECT MAX(received_at) FROM events WHERE tenant = ?1",
            params![tenant],
            |row| row.get(0),
        )?)
    }

    fn tile(
        &mut self,
        tenant: TenantKey,
        level: u8,
        index: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT data FROM tiles WHERE tenant = ?1 AND level = ?2 AND idx = ?3")?
            .query_row(params![tenant, level as i64, index as i64], |row| {
                row.get(0)
            })
            .optional()?)
    }

    fn put_tile(
        &mut self,
        tenant: TenantKey,
        level: u8,
        index: u64,
        data: &[u8],
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO tiles (tenant, level, idx, data) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![tenant, level as i64, index as i64, data])?;
        Ok(())
    }

    fn put_checkpoint(
        &mut self,
        tenant: TenantKey,
        size: u64,
        signed_at: i64,
        note: &str,
    ) -> Result<bool, StoreError> {
        let inserted = self.conn.prepare_cached(
            "INSERT OR IGNORE INTO checkpoints (tenant, size, signed_at, note) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![tenant, size as i64, signed_at, note])?;
        Ok(inserted == 1)
    }

    fn newest_checkpoint_size(&mut self, tenant: TenantKey) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = self.conn.query_row(
            "SELECT MAX(size) FROM checkpoints WHERE tenant = ?1",
            params![tenant],
            |row| row.get(0),
        )?;
        Ok(size.map(|size| size as u64))
    }

    fn newest_dict(&mut self, tenant: TenantKey) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, data FROM dicts WHERE tenant = ?1 ORDER BY id DESC LIMIT 1",
                params![tenant],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?)
    }

    fn dict(&mut self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        load_dict(&self.conn, id)
    }

    fn insert_dict(&mut self, tenant: TenantKey, data: &[u8]) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO dicts (tenant, data) VALUES (?1, ?2)",
            params![tenant, data],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn outbox_is_empty(&mut self) -> Result<bool, StoreError> {
        admin::outbox_is_empty(&self.conn)
    }

    fn pending_outbox(&mut self, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        admin::pending_outbox(&self.conn, limit)
    }

    fn delete_outbox(&mut self, id: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM outbox WHERE id = ?1")?
            .execute(params![id])?;
        Ok(())
    }

    /// See [`WAL_RESTART_FRAMES`]. A failed checkpoint stops all writes.
    fn after_group(&mut self) {
        if self.wal_frames.load(Ordering::Relaxed) < WAL_RESTART_FRAMES {
            return;
        }
        match checkpoint(&self.conn, "PASSIVE") {
            // The next commit starts the WAL over; the checkpointer will count again.
            Ok(Some(_)) => self.wal_frames.store(0, Ordering::Relaxed),
            Ok(None) => {}
            Err(e) => self.shared.stop_writes(&checkpoint_failed(&e)),
        }
    }

    /// A clean stop leaves the WAL folded into the database and empty, so the next opener
    /// (`verify`, a restart) does not read through it.
    fn close(&mut self) {
        self.stop_checkpointer();
        if let Err(e) = checkpoint(&self.conn, "TRUNCATE") {
            tracing::warn!("folding the WAL into the database at stop failed: {e}");
        }
    }
}

/// fsyncs the WAL file for the engine's syncer: a group is answered only after an fsync that
/// started after its commit wrote its frames, the same guarantee as `synchronous=FULL`.
pub(crate) struct WalSync {
    dir: PathBuf,
    wal_path: PathBuf,
    /// The WAL file and its inode (SQLite may replace the file).
    wal: Option<(File, u64)>,
}

impl Durability for WalSync {
    /// fsync the WAL file (opened again if SQLite replaced it), and the directory when the
    /// file is new to us, so its name survives too.
    fn sync(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt as _;
        let inode = match fs::metadata(&self.wal_path) {
            Ok(meta) => meta.ino(),
            // Nothing has been written in WAL mode yet (an empty group at start).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.wal.is_none() => {
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if self.wal.as_ref().map(|(_, known)| *known) != Some(inode) {
            self.wal = Some((File::open(&self.wal_path)?, inode));
            File::open(&self.dir)?.sync_all()?;
        }
        match &self.wal {
            Some((file, _)) => file.sync_data(),
            None => Ok(()),
        }
    }
}

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
fn run_checkpointer(
    shared: Arc<Shared>,
    wal_frames: Arc<AtomicI64>,
    dir: &Path,
    stop: Receiver<()>,
) {
    let conn = match open_connection(dir) {
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
    let wal_path = dir.join(format!("{DB_FILE}-wal"));
    let mut last_frames = -1;
    let mut idle_passes = 0u32;
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let mut result = checkpoint(&conn, "PASSIVE");
        if let Ok(Some((frames, copied))) = result {
            wal_frames.store(frames, Ordering::Relaxed);
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
                    wal_frames.store(0, Ordering::Relaxed);
                }
            }
        }
        if let Err(e) = result {
            shared.stop_writes(&checkpoint_failed(&e));
            return;
        }
    }
}
