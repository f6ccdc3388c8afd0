//! The keystore: each tenant's Ed25519 signer key in signed-note form, one file per tenant
//! (`<key dir>/<tenant>.key`, mode 0600), and the store's clock. Backend-independent: every
//! node of a shared database must be given the same key directory contents.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auditlog_core::event::Timestamp;
use auditlog_core::tenant::TenantId;
use auditlog_ledger::note::NoteSigner;

use crate::StoreError;

/// Where the signing keys live and how their names are spelled.
#[derive(Debug, Clone)]
pub(crate) struct Keystore {
    pub dir: PathBuf,
    /// Checkpoint origin (and note key name) is `<origin_prefix><tenant>`.
    pub origin_prefix: String,
}

impl Keystore {
    pub(crate) fn path(&self, tenant: &TenantId) -> PathBuf {
        self.dir.join(format!("{tenant}.key"))
    }

    pub(crate) fn origin(&self, tenant: &TenantId) -> String {
        format!("{}{}", self.origin_prefix, tenant)
    }

    /// The tenant's signer if its key file exists (never creates one: `verify` must not).
    pub(crate) fn load(&self, tenant: &TenantId) -> Result<Option<NoteSigner>, StoreError> {
        let path = self.path(tenant);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(format!("read {}", path.display()), e)),
        };
        NoteSigner::parse_signer_key(text.trim())
            .map(Some)
            .map_err(|e| StoreError::Corrupted(format!("signing key {}: {e}", path.display())))
    }

    /// The tenant's signer, created on first use with a temporary file and a hard link, so
    /// two processes racing to create it agree on one key.
    pub(crate) fn load_or_create(&self, tenant: &TenantId) -> Result<NoteSigner, StoreError> {
        let path = self.path(tenant);
        if !path.exists() {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed)
                .map_err(|e| StoreError::Unavailable(format!("no randomness for a key: {e}")))?;
            let signer = NoteSigner::from_seed(&self.origin(tenant), &seed)?;
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
        self.load(tenant)?.ok_or_else(|| {
            StoreError::Corrupted(format!("signing key {} vanished", path.display()))
        })
    }
}

/// The wall clock as the store records it: the one place auditlog reads it for events (the
/// default `time`, `received_at`, checkpoint times). Microseconds are enough for ordering and
/// keep the canonical form short.
pub fn now() -> Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let micros = since.as_micros() as i64;
    Timestamp::from_unix_nanos(micros * 1000)
}

/// Seconds since the epoch, for the administrative tables.
pub(crate) fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
