//! Storage of auditlog: the [`Store`] trait the server and CLI program against, the log
//! engine behind it, and the embedded backend [`SqliteStore`] (the source of truth in the data
//! directory).
//!
//! The store owns durability (group commit: one writer, one sync per batch, an answer only
//! after the batch is durable), idempotency keys, the per-tenant Merkle tiles and signed
//! checkpoints, tokens, and `verify`. It does not parse HTTP and does not search.
//!
//! Layers: `engine` is the backend-independent log engine (writer, syncer, planning, tree
//! state, checkpoint cadence, outbox drain) over the narrow interface in `backend`; `keys` is
//! the keystore; `sqlite` is the embedded backend (its SQL, migrations and WAL handling).
//!
//! Architecture invariant: callers name only the trait; every backend must pass the
//! conformance suite ([`store_conformance_suite!`], feature `conformance`).

mod backend;
pub mod backup;
mod codec;
#[cfg(feature = "conformance")]
pub mod conformance;
mod engine;
mod error;
mod keys;
pub mod people;
mod prepare;
mod sqlite;
mod tokens;
pub mod trail;
pub mod verify;

pub use engine::{CheckpointFn, CheckpointHook, StoreOptions};
pub use error::{BackendErrorKind, StoreError};
pub use keys::now;
pub use people::{Credential, NewSession, PersonInfo, Role, SessionInfo, SessionLimits};
pub use prepare::{
    BatchError, PreparedEvent, prepare_batch, prepare_batch_strictly, prepare_event,
};
pub use sqlite::SqliteStore;
pub use tokens::{Principal, Scope, Scopes, TokenInfo};
pub use trail::{Actor, TrailEvent};
pub use verify::{Finding, FindingKind, VerifyReport};

use auditlog_core::event::Timestamp;
use auditlog_core::tenant::TenantId;
use auditlog_ledger::Hash;

/// What the store answers for one acknowledged event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: Option<String>,
    pub seq: u64,
    pub leaf_hash: Hash,
}

/// The answer to one append: a receipt per event in request order, and the tree size after it.
#[derive(Debug, Clone)]
pub struct AppendOutcome {
    pub receipts: Vec<Receipt>,
    pub tree_size: u64,
}

/// Called by the writer once the batch holding the events is durable (or has failed).
pub type AppendDone = Box<dyn FnOnce(Result<AppendOutcome, StoreError>) + Send + 'static>;

/// One stored event: its canonical form (RFC 8785, the exact bytes whose leaf hash is in the
/// tree) and the fields the store knows without parsing it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: u64,
    pub received_at: Timestamp,
    pub canonical: Vec<u8>,
    pub leaf_hash: Hash,
}

/// A signed checkpoint as stored: the tree size it commits to and the signed note.
#[derive(Debug, Clone)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub signed_at: Timestamp,
    pub note: String,
}

/// The state `/healthz` reports.
#[derive(Debug, Clone)]
pub struct Health {
    pub writable: bool,
    pub problem: Option<String>,
}

/// The storage contract. Every method is blocking; the server calls them from blocking tasks.
pub trait Store: Send + Sync + 'static {
    /// Queue a batch for the group commit. `done` runs after the batch is durable; the whole
    /// batch is stored or none of it.
    fn append(&self, tenant: &TenantId, events: Vec<PreparedEvent>, done: AppendDone);

    /// Convenience: append and wait.
    fn append_blocking(
        &self,
        tenant: &TenantId,
        events: Vec<PreparedEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.append(
            tenant,
            events,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        rx.recv()
            .map_err(|_| StoreError::Unavailable("writer stopped".into()))?
    }

    fn event(&self, tenant: &TenantId, seq: u64) -> Result<Option<StoredEvent>, StoreError>;
    /// Events with `from_seq <= seq`, ascending, at most `limit`.
    fn events_from(
        &self,
        tenant: &TenantId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// The events with these seqs, in the order given (absent seqs are left out).
    fn events(&self, tenant: &TenantId, seqs: &[u64]) -> Result<Vec<StoredEvent>, StoreError> {
        let mut found = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            found.extend(self.event(tenant, seq)?);
        }
        Ok(found)
    }
    fn tree_size(&self, tenant: &TenantId) -> Result<u64, StoreError>;
    fn latest_checkpoint(&self, tenant: &TenantId) -> Result<Option<StoredCheckpoint>, StoreError>;
    fn verifier_key(&self, tenant: &TenantId) -> Result<String, StoreError>;
    /// RFC 9162 inclusion proof of leaf `leaf_index` in the tree of `size`: (leaf hash, path).
    fn inclusion_proof(
        &self,
        tenant: &TenantId,
        leaf_index: u64,
        size: u64,
    ) -> Result<(Hash, Vec<Hash>), StoreError>;
    /// Inclusion proofs of many leaves in the tree of `size`, in the order given.
    fn inclusion_proofs(
        &self,
        tenant: &TenantId,
        size: u64,
        leaf_indices: &[u64],
    ) -> Result<Vec<Vec<Hash>>, StoreError> {
        leaf_indices
            .iter()
            .map(|&leaf_index| Ok(self.inclusion_proof(tenant, leaf_index, size)?.1))
            .collect()
    }
    /// The root hash of the tenant's tree at `size` (1 to the tree size), from storage.
    fn root_at(&self, tenant: &TenantId, size: u64) -> Result<Hash, StoreError>;
    /// The stored tile (level, index) of the tenant's tree in C2SP tlog-tiles form: its
    /// hashes as the tree has them now (a partial tile holds the hashes known so far; its
    /// first W hashes are the tile of width W). `None` when the tree has no such tile.
    fn tile(&self, tenant: &TenantId, level: u8, index: u64)
    -> Result<Option<Vec<u8>>, StoreError>;
    fn consistency_proof(
        &self,
        tenant: &TenantId,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, StoreError>;
    /// Sign a note body (C2SP signed-note) with the tenant's log key, for statements the
    /// server makes about its log (an export's manifest). A body that starts with the log's
    /// origin line, as a checkpoint does, is refused: only the writer signs checkpoints.
    fn sign_note(&self, tenant: &TenantId, body: &str) -> Result<String, StoreError>;
    /// Sign a checkpoint now for every tenant whose tree grew since its last one.
    fn sign_pending(&self) -> Result<(), StoreError>;

    fn ensure_tenant(&self, tenant: &TenantId) -> Result<(), StoreError>;
    /// Every tenant the store knows, by name.
    fn tenants(&self) -> Result<Vec<TenantId>, StoreError>;
    /// Whether the tenant exists (never creates it).
    fn tenant_exists(&self, tenant: &TenantId) -> Result<bool, StoreError>;

    /// Create a token; its record (never the secret) goes into the tenant's trail with it.
    fn create_token(
        &self,
        tenant: &TenantId,
        name: &str,
        scopes: Scopes,
        by: &Actor,
    ) -> Result<String, StoreError>;
    fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<TokenInfo>, StoreError>;
    /// Revoke the active token of that name (`Ok(false)`: none); recorded in the trail.
    fn revoke_token(&self, tenant: &TenantId, name: &str, by: &Actor) -> Result<bool, StoreError>;
    fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError>;

    /// Create a person with an argon2id hash (see [`people::hash_password`]); recorded.
    fn create_person(
        &self,
        tenant: &TenantId,
        name: &str,
        role: Role,
        password_hash: &str,
        by: &Actor,
    ) -> Result<(), StoreError>;
    fn list_people(&self, tenant: &TenantId) -> Result<Vec<PersonInfo>, StoreError>;
    /// Disable a person and end their sessions (`Ok(false)`: no such active person); recorded.
    fn disable_person(&self, tenant: &TenantId, name: &str, by: &Actor)
    -> Result<bool, StoreError>;
    /// Replace a person's password hash and end their sessions; recorded.
    fn set_password(
        &self,
        tenant: &TenantId,
        name: &str,
        password_hash: &str,
        by: &Actor,
    ) -> Result<bool, StoreError>;
    /// The stored credential of a person of an existing tenant, for sign-in.
    fn credential(&self, tenant: &TenantId, name: &str) -> Result<Option<Credential>, StoreError>;
    /// Start a session for an enabled person (`None` otherwise).
    fn create_session(
        &self,
        tenant: &TenantId,
        name: &str,
        limits: SessionLimits,
    ) -> Result<Option<NewSession>, StoreError>;
    /// The live session of a cookie secret, its idle time restarted.
    fn session(
        &self,
        secret: &str,
        limits: SessionLimits,
    ) -> Result<Option<SessionInfo>, StoreError>;
    /// End a session (sign-out); `Ok(true)` when it was live.
    fn end_session(&self, secret: &str) -> Result<bool, StoreError>;
    /// Queue a record for the tenant's trail log (`TenantId::trail`): durable when this
    /// returns, in the trail log once a process that appends (a server) takes it in, at once
    /// or within about a second. Nothing for an actor who is not recorded.
    fn record(&self, tenant: &TenantId, event: &TrailEvent) -> Result<(), StoreError>;
    /// Queued trail records not yet in a log.
    fn pending_records(&self) -> Result<u64, StoreError>;

    fn verify(
        &self,
        tenant: &TenantId,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<VerifyReport, StoreError>;
    fn health(&self) -> Health;
}
