//! The narrow interface between the log engine (`engine`) and a storage backend: what the
//! engine's writer asks of one transaction at a time (the tenant's head row, event rows,
//! idempotency keys, tiles, checkpoints, dictionaries, the outbox) and how a backend makes a
//! commit durable. It holds no SQL and no log logic; a backend is a translation of these
//! calls into its own statements.
//!
//! The contract is written for several writers on one database (PostgreSQL with several
//! nodes) as well as for one (SQLite): [`WriteBackend::lock_head`] is called once per tenant
//! in every group transaction, before the tenant's first append in it, and must hold the
//! tenant's head row locked until the commit; when the size it reads is not the one the
//! engine holds, another writer moved the tenant and the engine reloads its state from the
//! backend (inside the same transaction). [`WriteBackend::put_checkpoint`] stores a note for a
//! size only if that size has none, so no size ever has two notes.

use auditlog_core::tenant::TenantId;

use crate::StoreError;

/// A backend's key of a tenant's rows (SQLite: the `tenants` row id).
pub(crate) type TenantKey = i64;

/// One event row as the engine writes it.
pub(crate) struct EventRow<'a> {
    pub tenant: TenantKey,
    pub seq: u64,
    /// Unix nanoseconds.
    pub received_at: i64,
    pub idem: Option<&'a str>,
    pub idem_hash: Option<&'a [u8]>,
    pub dict: i64,
    pub body: &'a [u8],
}

/// A stored event row as the engine reads it back: received_at (unix ns), dictionary, body.
pub(crate) type StoredRow = (i64, i64, Vec<u8>);

/// What inserting an event row found.
pub(crate) enum Inserted {
    Stored,
    /// The row's idempotency key is taken in this tenant (nothing was stored).
    IdTaken,
}

/// The row of an idempotency key already in the log.
pub(crate) struct IdemRow {
    pub seq: u64,
    pub idem_hash: Option<Vec<u8>>,
    pub dict: i64,
    pub body: Vec<u8>,
}

/// A trail record waiting in the outbox: row id, tenant name, RFC 8785 JSON.
pub(crate) type OutboxRow = (i64, String, Vec<u8>);

/// The writer's side of a backend: one connection, used by the engine's writer thread only,
/// with at most one open transaction (opened by [`WriteBackend::begin`]).
pub(crate) trait WriteBackend: Send + 'static {
    fn begin(&mut self) -> Result<(), StoreError>;
    /// Commit the open transaction. What "durable" then takes is [`Durability`]'s business.
    fn commit(&mut self) -> Result<(), StoreError>;
    /// Roll back the open transaction after a failure (errors are only logged).
    fn rollback(&mut self);
    fn savepoint(&mut self) -> Result<(), StoreError>;
    fn release_savepoint(&mut self) -> Result<(), StoreError>;
    /// Undo everything since [`WriteBackend::savepoint`] and release it.
    fn rollback_to_savepoint(&mut self) -> Result<(), StoreError>;

    /// Find or create the tenant's row (outside or inside a transaction): its key and the
    /// tree size stored in its head.
    fn ensure_tenant(&mut self, tenant: &TenantId) -> Result<(TenantKey, u64), StoreError>;
    /// Inside the group's transaction: lock the tenant's head row until the commit and give
    /// the tree size it holds.
    fn lock_head(&mut self, tenant: TenantKey) -> Result<u64, StoreError>;
    /// Record the tenant's new tree size in its head row.
    fn set_head(&mut self, tenant: TenantKey, size: u64) -> Result<(), StoreError>;
    /// Names of the tenants whose tree is not empty.
    fn tenants_with_events(&mut self) -> Result<Vec<String>, StoreError>;

    fn insert_event(&mut self, row: &EventRow<'_>) -> Result<Inserted, StoreError>;
    fn find_idem(&mut self, tenant: TenantKey, id: &str) -> Result<Option<IdemRow>, StoreError>;
    fn event_row(&mut self, tenant: TenantKey, seq: u64) -> Result<StoredRow, StoreError>;
    /// The newest `received_at` of the tenant's events (unix ns).
    fn newest_received_at(&mut self, tenant: TenantKey) -> Result<Option<i64>, StoreError>;

    fn tile(
        &mut self,
        tenant: TenantKey,
        level: u8,
        index: u64,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Store the tile's newest content (replacing an older, shorter one).
    fn put_tile(
        &mut self,
        tenant: TenantKey,
        level: u8,
        index: u64,
        data: &[u8],
    ) -> Result<(), StoreError>;

    /// Store a signed checkpoint unless the size has one already (compare-and-swap on the
    /// size); `Ok(false)`: it had one, nothing was written.
    fn put_checkpoint(
        &mut self,
        tenant: TenantKey,
        size: u64,
        signed_at: i64,
        note: &str,
    ) -> Result<bool, StoreError>;
    fn newest_checkpoint_size(&mut self, tenant: TenantKey) -> Result<Option<u64>, StoreError>;

    /// The tenant's newest dictionary, if it has one.
    fn newest_dict(&mut self, tenant: TenantKey) -> Result<Option<(i64, Vec<u8>)>, StoreError>;
    /// A dictionary by id (`None`: there is none).
    fn dict(&mut self, id: i64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Store a new dictionary of the tenant; its id.
    fn insert_dict(&mut self, tenant: TenantKey, data: &[u8]) -> Result<i64, StoreError>;

    fn outbox_is_empty(&mut self) -> Result<bool, StoreError>;
    fn pending_outbox(&mut self, limit: usize) -> Result<Vec<OutboxRow>, StoreError>;
    fn delete_outbox(&mut self, id: i64) -> Result<(), StoreError>;

    /// Between two groups, after a commit (SQLite: restart a long WAL).
    fn after_group(&mut self) {}
    /// The writer stops cleanly (SQLite: fold the WAL into the database).
    fn close(&mut self) {}
}

/// How a backend makes committed groups durable before they are answered. The engine's
/// syncer thread calls it once for every batch of committed groups and answers them only
/// after it returned `Ok`; an error stops all writes until restart (no retry). A backend
/// whose commit is durable when it returns (PostgreSQL) syncs nothing.
pub(crate) trait Durability: Send + 'static {
    fn sync(&mut self) -> std::io::Result<()>;
}
