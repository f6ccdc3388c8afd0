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
    /// The database refused or failed a statement (named by the backend, never its types).
    #[error("{backend}: {message}")]
    Backend {
        backend: &'static str,
        kind: BackendErrorKind,
        message: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// What kind of failure a backend reported, as far as the store's callers care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendErrorKind {
    /// Another connection holds a lock; a later attempt may succeed.
    Busy,
    /// The database cannot be reached (connection refused or lost).
    Unreachable,
    /// The database's files are damaged.
    Corrupted,
    /// The disk failed or is full.
    Io,
    Other,
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
