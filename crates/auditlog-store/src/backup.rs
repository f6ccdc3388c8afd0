//! Online backup of the embedded store (SPEC §11): a consistent copy of the data directory's
//! database while a server appends to it, and what that copy holds (each log's size and latest
//! signed checkpoint) for the backup's manifest.
//!
//! The copy is made with SQLite's online backup API in a single step: one read transaction
//! over the whole database, so the copy is the database as of one commit, and the writer is
//! never blocked (WAL readers do not block the writer). A backup in many small steps would
//! start over whenever another connection commits, which under steady ingest is always.
//! Keys, the manifest and restoring the files are the caller's (`auditlog backup|restore`);
//! this module deliberately knows nothing of them.

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, params};

use crate::StoreError;

/// The database file of a data directory (with `-wal` and `-shm` beside it while open).
pub const DATABASE_FILE: &str = "auditlog.db";

/// How often a busy or locked source is retried before the backup gives up.
const MAX_BUSY_RETRIES: u32 = 200;

/// One log (a tenant's events or its trail log) as a database file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSummary {
    /// The stored name (`acme`, or `acme.trail` for its trail log).
    pub name: String,
    pub tree_size: u64,
    /// The latest signed checkpoint: its tree size and the signed note.
    pub latest_checkpoint: Option<(u64, String)>,
}

/// Copies the database of the data directory `data` into the new file `to` (which must not
/// exist), consistent as of one commit, beside a running server.
pub fn backup_database(data: &Path, to: &Path) -> Result<(), StoreError> {
    let source_path = data.join(DATABASE_FILE);
    if !source_path.is_file() {
        return Err(StoreError::NotFound(format!(
            "no database {} (not a data directory)",
            source_path.display()
        )));
    }
    if to.exists() {
        return Err(StoreError::BadRequest(format!(
            "{} already exists",
            to.display()
        )));
    }
    // Read-write without create: a read-only handle cannot make the WAL index when no server
    // has the database open. Nothing is written through it.
    let source = Connection::open_with_flags(
        &source_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(Duration::from_secs(10))?;
    let mut target = Connection::open(to)?;
    {
        let backup = Backup::new(&source, &mut target)?;
        let mut retries = 0;
        loop {
            // -1: every page in one step, i.e. in one read transaction of the source.
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked if retries < MAX_BUSY_RETRIES => {
                    retries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                StepResult::Busy | StepResult::Locked => {
                    return Err(StoreError::Unavailable(format!(
                        "{} stayed locked; backup given up",
                        source_path.display()
                    )));
                }
                _ => {}
            }
        }
    }
    // The copy is a self-contained file: fold its WAL in and leave rollback journaling, so
    // the backup directory is one database file and nothing beside it.
    target.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
    drop(target);
    std::fs::File::open(to)
        .and_then(|file| file.sync_all())
        .map_err(|e| StoreError::io(format!("sync {}", to.display()), e))?;
    Ok(())
}

/// Every log in the database file `db_file` (a backup, or a restored data directory's), with
/// its size and latest signed checkpoint, in name order.
pub fn log_summaries(db_file: &Path) -> Result<Vec<LogSummary>, StoreError> {
    let conn = Connection::open_with_flags(
        db_file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch("BEGIN")?;
    let mut logs = Vec::new();
    {
        let mut tenants = conn.prepare("SELECT id, name, tree_size FROM tenants ORDER BY name")?;
        let mut latest = conn.prepare(
            "SELECT size, note FROM checkpoints WHERE tenant = ?1 ORDER BY size DESC LIMIT 1",
        )?;
        let rows = tenants.query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (id, name, tree_size) = row?;
            let latest_checkpoint = latest
                .query_map(params![id], |row| {
                    Ok((
                        row.get::<_, i64>(0)?.max(0) as u64,
                        row.get::<_, String>(1)?,
                    ))
                })?
                .next()
                .transpose()?;
            logs.push(LogSummary {
                name,
                tree_size: tree_size.max(0) as u64,
                latest_checkpoint,
            });
        }
    }
    conn.execute_batch("COMMIT")?;
    Ok(logs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_refuses_a_directory_without_a_database_and_an_existing_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = backup_database(dir.path(), &dir.path().join("copy.db")).expect_err("no db");
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
        Connection::open(dir.path().join(DATABASE_FILE))
            .and_then(|c| c.execute_batch("CREATE TABLE t (x)"))
            .expect("db");
        let existing = dir.path().join("existing.db");
        std::fs::write(&existing, b"keep me").expect("write");
        let err = backup_database(dir.path(), &existing).expect_err("exists");
        assert!(matches!(err, StoreError::BadRequest(_)), "{err}");
        assert_eq!(std::fs::read(&existing).expect("read"), b"keep me");
    }
}
