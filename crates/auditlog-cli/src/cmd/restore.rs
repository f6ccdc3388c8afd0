//! `auditlog restore --from DIR --data DIR2`: bring a backup (`auditlog backup`) back as a new
//! data directory (SPEC §11).
//!
//! Nothing is written until the whole backup checks out: every file the manifest lists must
//! have its size and SHA-256, and the copied database must hold exactly the logs, sizes and
//! latest checkpoints the manifest names. The copy is staged beside the target and renamed
//! into place, so a failed restore leaves no half data directory. `verify` on the result
//! recomputes everything else. Restoring into PostgreSQL (`--store`) is not done here.

use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use auditlog_store::backup::DATABASE_FILE;

use super::backup::{
    KEYS_DIR, MANIFEST_FILE, MANIFEST_FORMAT, Manifest, hash_file, manifest_logs, write_private,
};
use crate::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// The backup directory (`auditlog backup --to DIR`).
    #[arg(long)]
    from: PathBuf,
}

/// A manifest path restore accepts: `auditlog.db`, or `keys/<name>.key` with a plain name.
fn checked_path(path: &str) -> anyhow::Result<&str> {
    let plain = |name: &str| {
        let mut components = Path::new(name).components();
        matches!(components.next(), Some(Component::Normal(_)))
            && components.next().is_none()
            && !name.starts_with('.')
    };
    if path == DATABASE_FILE {
        return Ok(path);
    }
    match path.strip_prefix(&format!("{KEYS_DIR}/")) {
        Some(name) if plain(name) && name.ends_with(".key") => Ok(path),
        _ => anyhow::bail!("the manifest lists {path:?}, which is no file of a backup"),
    }
}

pub fn run(ctx: &super::Ctx, args: Args) -> anyhow::Result<Outcome> {
    let started = std::time::Instant::now();
    let manifest_path = args.from.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("read {} (not a backup?)", manifest_path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("parse {}", manifest_path.display()))?;
    if manifest.format != MANIFEST_FORMAT {
        anyhow::bail!(
            "{} is format {:?}; this auditlog restores {MANIFEST_FORMAT:?}",
            manifest_path.display(),
            manifest.format
        );
    }
    if manifest
        .files
        .iter()
        .filter(|f| f.path == DATABASE_FILE)
        .count()
        != 1
    {
        anyhow::bail!("the manifest must list {DATABASE_FILE} once");
    }
    // The target: absent, or an empty directory.
    match std::fs::read_dir(&ctx.data) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                anyhow::bail!(
                    "{} is not empty: restore makes a new data directory",
                    ctx.data.display()
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("read {}", ctx.data.display())),
    }
    // Every file as the manifest has it, before anything is written.
    let mut total_bytes = 0;
    for file in &manifest.files {
        let path = checked_path(&file.path)?;
        let (bytes, sha256) = hash_file(&args.from.join(path))?;
        if bytes != file.bytes || sha256 != file.sha256 {
            anyhow::bail!(
                "{} is not the file the backup made ({bytes} bytes, sha256 {sha256}; the manifest says {} bytes, sha256 {}): nothing restored",
                args.from.join(path).display(),
                file.bytes,
                file.sha256
            );
        }
        total_bytes += bytes;
    }
    // Keys go to `--key-dir` when one is given; an existing key there must be the same.
    let key_dir = ctx.key_dir.clone();
    if let Some(dir) = &key_dir {
        for file in manifest.files.iter().filter(|f| f.path != DATABASE_FILE) {
            let name = &file.path[KEYS_DIR.len() + 1..];
            let existing = dir.join(name);
            if existing.exists() && hash_file(&existing)?.1 != file.sha256 {
                anyhow::bail!(
                    "{} exists and is another key: nothing restored",
                    existing.display()
                );
            }
        }
    }

    let staging = staging_dir(&ctx.data)?;
    let result = stage(&args.from, &staging, &manifest, key_dir.is_none());
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if let Some(dir) = &key_dir {
        super::backup::prepare_dir(dir)?;
        for file in manifest.files.iter().filter(|f| f.path != DATABASE_FILE) {
            let target = dir.join(&file.path[KEYS_DIR.len() + 1..]);
            if !target.exists() {
                let bytes = std::fs::read(args.from.join(&file.path))?;
                write_private(&target, &bytes)?;
            }
        }
    }
    if ctx.data.exists() {
        std::fs::remove_dir(&ctx.data)
            .with_context(|| format!("replace the empty {}", ctx.data.display()))?;
    }
    std::fs::rename(&staging, &ctx.data)
        .with_context(|| format!("move {} to {}", staging.display(), ctx.data.display()))?;
    if let Some(parent) = ctx.data.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("sync {}", parent.display()))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    super::out(format!(
        "restored {} logs from the backup of {} into {}{}: {:.1} MB in {seconds:.2}s ({:.1} MB/s)",
        manifest.logs.len(),
        manifest.created_at,
        ctx.data.display(),
        match (manifest.with_keys, &key_dir) {
            (false, _) => " (no keys in the backup: give --key-dir to verify)".to_owned(),
            (true, Some(dir)) => format!(", keys in {}", dir.display()),
            (true, None) => ", with keys".to_owned(),
        },
        total_bytes as f64 / 1e6,
        total_bytes as f64 / 1e6 / seconds.max(1e-9),
    ))?;
    Ok(Outcome::Ok)
}

/// A fresh directory beside the target, to be renamed into place.
fn staging_dir(data: &Path) -> anyhow::Result<PathBuf> {
    let name = data
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} names no directory", data.display()))?;
    let parent = data.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    let staging = parent.join(format!(".{name}.restoring-{}", std::process::id()));
    super::backup::prepare_empty_dir(&staging)?;
    Ok(staging)
}

/// Copies the backup into `staging` (keys too unless they go elsewhere), checks each copy
/// against the manifest, and the copied database's logs against the manifest's.
fn stage(from: &Path, staging: &Path, manifest: &Manifest, with_keys: bool) -> anyhow::Result<()> {
    for file in &manifest.files {
        let is_key = file.path != DATABASE_FILE;
        if is_key && !with_keys {
            continue;
        }
        if is_key {
            super::backup::prepare_dir(&staging.join(KEYS_DIR))?;
        }
        let target = staging.join(&file.path);
        let source = from.join(&file.path);
        std::fs::copy(&source, &target)
            .with_context(|| format!("copy {} to {}", source.display(), target.display()))?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))?;
        std::fs::File::open(&target)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("sync {}", target.display()))?;
        let (bytes, sha256) = hash_file(&target)?;
        if bytes != file.bytes || sha256 != file.sha256 {
            anyhow::bail!("{} changed while it was copied", source.display());
        }
    }
    let logs = manifest_logs(&staging.join(DATABASE_FILE))?;
    if logs != manifest.logs {
        anyhow::bail!(
            "the backup's database does not hold the logs its manifest names (sizes or latest checkpoints differ): nothing restored"
        );
    }
    Ok(())
}
