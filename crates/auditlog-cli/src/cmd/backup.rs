//! `auditlog backup --to DIR [--with-keys]`: a consistent copy of the data directory while a
//! server runs (SPEC §11), with a manifest of what it holds.
//!
//! The database is copied by the store (`auditlog_store::backup`, SQLite's online backup in
//! one read transaction); this file adds the signing keys when asked and writes
//! `manifest.json`: every log's size, latest signed checkpoint and root, and every file's size
//! and SHA-256, so `auditlog restore` can refuse a damaged backup before it writes anything.
//! The search index is not copied: it is derived and rebuilt from the log on first open.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use auditlog_ledger::note::Checkpoint;
use auditlog_store::backup::{DATABASE_FILE, LogSummary, backup_database, log_summaries};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::Outcome;

/// The manifest's name inside a backup directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The manifest's format; restore refuses any other.
pub const MANIFEST_FORMAT: &str = "auditlog-backup/1";
/// Where a backup keeps the signing keys (`--with-keys`).
pub const KEYS_DIR: &str = "keys";

#[derive(clap::Args)]
pub struct Args {
    /// Directory to write the backup into; must not exist yet, or be empty.
    #[arg(long)]
    to: PathBuf,
    /// Also copy the tenants' signing keys (keep such a backup as secret as the keys).
    #[arg(long)]
    with_keys: bool,
}

/// What a backup holds, written as `manifest.json` beside it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub format: String,
    /// When the backup was made (RFC 3339, UTC).
    pub created_at: String,
    pub with_keys: bool,
    /// Every log the copied database holds (tenants and their trail logs), by stored name.
    pub logs: Vec<ManifestLog>,
    /// Every file of the backup but the manifest, with its size and SHA-256 (hex).
    pub files: Vec<ManifestFile>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ManifestLog {
    pub name: String,
    pub tree_size: u64,
    pub latest_checkpoint: Option<ManifestCheckpoint>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ManifestCheckpoint {
    pub size: u64,
    /// Its root hash, standard base64.
    pub root: String,
    /// The signed note as stored.
    pub note: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// Relative to the backup directory: `auditlog.db` or `keys/<name>.key`.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// The manifest's view of the logs of a database file; restore compares it with the manifest.
pub fn manifest_logs(db_file: &Path) -> anyhow::Result<Vec<ManifestLog>> {
    log_summaries(db_file)?
        .into_iter()
        .map(
            |LogSummary {
                 name,
                 tree_size,
                 latest_checkpoint,
             }| {
                let latest_checkpoint = match latest_checkpoint {
                    Some((size, note)) => {
                        let body = note
                            .split_once("\n\n")
                            .map(|(body, _)| format!("{body}\n"))
                            .with_context(|| {
                                format!("checkpoint {size} of {name} is not a note")
                            })?;
                        let checkpoint = Checkpoint::parse_body(&body)
                            .with_context(|| format!("checkpoint {size} of {name}"))?;
                        Some(ManifestCheckpoint {
                            size,
                            root: base64::engine::general_purpose::STANDARD.encode(checkpoint.root),
                            note,
                        })
                    }
                    None => None,
                };
                Ok(ManifestLog {
                    name,
                    tree_size,
                    latest_checkpoint,
                })
            },
        )
        .collect()
}

/// Size and SHA-256 (hex) of a file, read in blocks.
pub fn hash_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((bytes, hex))
}

/// A directory that may be written into: absent (then made, mode 0700) or empty.
pub fn prepare_empty_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                anyhow::bail!("{} is not empty", dir.display());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("create {}", dir.display())),
        Err(e) => Err(e).with_context(|| format!("read {}", dir.display())),
    }
}

/// A directory that exists afterwards (made mode 0700 when missing).
pub fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))
}

/// Writes a file that did not exist, mode 0600, synced.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write {}", path.display()))
}

/// The key files (`<name>.key`) of a key directory, by name.
pub fn key_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "key"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("read {}", dir.display())),
    };
    files.sort();
    Ok(files)
}

pub fn run(ctx: &super::Ctx, args: Args) -> anyhow::Result<Outcome> {
    if !ctx.data.join(DATABASE_FILE).is_file() {
        anyhow::bail!(
            "{} is not a data directory (no {DATABASE_FILE})",
            ctx.data.display()
        );
    }
    let existed = args.to.exists();
    prepare_empty_dir(&args.to)?;
    let result = write_backup(ctx, &args);
    if result.is_err() {
        // A failed backup leaves nothing half-written behind (the directory was empty).
        if existed {
            for entry in std::fs::read_dir(&args.to).into_iter().flatten().flatten() {
                let _ = std::fs::remove_dir_all(entry.path())
                    .or_else(|_| std::fs::remove_file(entry.path()));
            }
        } else {
            let _ = std::fs::remove_dir_all(&args.to);
        }
    }
    result
}

fn write_backup(ctx: &super::Ctx, args: &Args) -> anyhow::Result<Outcome> {
    let started = std::time::Instant::now();
    let db_copy = args.to.join(DATABASE_FILE);
    backup_database(&ctx.data, &db_copy)
        .with_context(|| format!("back up {}", ctx.data.display()))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&db_copy, std::fs::Permissions::from_mode(0o600))?;
    }
    let mut files = vec![DATABASE_FILE.to_owned()];
    if args.with_keys {
        let key_dir = ctx.key_dir.clone().unwrap_or_else(|| ctx.data.join("keys"));
        let keys = key_files(&key_dir)?;
        if keys.is_empty() {
            anyhow::bail!("--with-keys: no signing keys in {}", key_dir.display());
        }
        let target = args.to.join(KEYS_DIR);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&target)
            .with_context(|| format!("create {}", target.display()))?;
        for key in keys {
            let name = key
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("key file name {}", key.display()))?
                .to_owned();
            let bytes = std::fs::read(&key).with_context(|| format!("read {}", key.display()))?;
            write_private(&target.join(&name), &bytes)?;
            files.push(format!("{KEYS_DIR}/{name}"));
        }
    }
    let logs = manifest_logs(&db_copy)?;
    let mut manifest_files = Vec::with_capacity(files.len());
    let mut total_bytes = 0;
    for path in files {
        let (bytes, sha256) = hash_file(&args.to.join(&path))?;
        total_bytes += bytes;
        manifest_files.push(ManifestFile {
            path,
            bytes,
            sha256,
        });
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT.to_owned(),
        created_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)?,
        with_keys: args.with_keys,
        logs,
        files: manifest_files,
    };
    let mut text = serde_json::to_string_pretty(&manifest)?;
    text.push('\n');
    write_private(&args.to.join(MANIFEST_FILE), text.as_bytes())?;
    std::fs::File::open(&args.to)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("sync {}", args.to.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let events: u64 = manifest
        .logs
        .iter()
        .filter(|log| !log.name.ends_with(".trail"))
        .map(|log| log.tree_size)
        .sum();
    super::out(format!(
        "backup of {} logs ({events} events{}) to {}: {:.1} MB in {seconds:.2}s ({:.1} MB/s)",
        manifest.logs.len(),
        if args.with_keys { ", with keys" } else { "" },
        args.to.display(),
        total_bytes as f64 / 1e6,
        total_bytes as f64 / 1e6 / seconds.max(1e-9),
    ))?;
    Ok(Outcome::Ok)
}
