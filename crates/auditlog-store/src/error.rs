//! The store's error type. Corruption found by `verify` is not an error but a finding.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An idempotency key was replayed with a different body (HTTP 409).
    #[error("event {index}: id {id:?} was already used for a different event")]
    Conflict { index: usize, id: String },
    /// Writes are stopped (after a failed commit or fsync, or on a read-only open) (HTTP 503).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// The data directory is held by another process.
    #[error("{0}")]
    Locked(String),
    #[error("stored data is corrupted: {0}")]
    Corrupted(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> StoreError {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<auditlog_ledger::LedgerError> for StoreError {
    fn from(err: auditlog_ledger::LedgerError) -> StoreError {
        StoreError::Corrupted(err.to_string())
    }
}
