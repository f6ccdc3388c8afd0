//! The log engine, independent of any database: group commit (one writer thread taking every
//! queued batch into one transaction, a syncer thread answering only once the group is
//! durable), idempotency planning and its undo, each tenant's tree state and tiles, the
//! checkpoint cadence and signing, dictionary training and the outbox drain into the trail
//! logs. It speaks to storage only through [`WriteBackend`] and [`Durability`]
//! (`backend.rs`); the SQL lives in the backends (`sqlite`).
//!
//! Several writers may share one database (a PostgreSQL backend with several nodes): every
//! group locks the head row of each tenant it appends to, and a head that moved under it
//! (another writer appended) makes the engine reload that tenant's state before planning.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use auditlog_core::event::{MonotonicClock, Timestamp, canonical_event};
use auditlog_core::tenant::TenantId;
use auditlog_ledger::merkle;
use auditlog_ledger::note::{Checkpoint, NoteSigner, sign_checkpoint};
use auditlog_ledger::tiles::TileWriter;

use crate::backend::{Durability, EventRow, Inserted, TenantKey, WriteBackend};
use crate::codec::{self, Decoder, Dictionaries};
use crate::keys::{Keystore, now};
use crate::{AppendDone, AppendOutcome, PreparedEvent, Receipt, StoreError};

/// How often the writer looks for trail records queued by other processes.
const OUTBOX_POLL: Duration = Duration::from_secs(1);

/// Settings of a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// A checkpoint is signed at most this often per tenant while events arrive, and at the
    /// latest this long after the last event.
    pub checkpoint_interval: Duration,
    /// zstd level for stored events.
    pub compression_level: i32,
    /// Most events one group commit takes before it commits.
    pub max_group_events: usize,
    /// Checkpoint origin (and note key name) is `<origin_prefix><tenant>`.
    pub origin_prefix: String,
    /// Where the tenants' signing keys live (`<tenant>.key`); default `<data>/keys`.
    pub key_dir: Option<PathBuf>,
    /// Called with every checkpoint once it is on disk (from the syncer thread: it must not
    /// block; hand the note to another thread).
    pub on_checkpoint: Option<CheckpointHook>,
    /// `verify` reads the database through a memory map (~10% faster: no kernel copy), at
    /// the price that a disk read error kills the process (SIGBUS) instead of being an
    /// error. For the one-shot `auditlog verify`; never for a server.
    pub verify_mmap: bool,
}

/// What a [`CheckpointHook`] calls: tenant, tree size, signed note.
pub type CheckpointFn = dyn Fn(&TenantId, u64, &str) + Send + Sync;

/// A function given each signed checkpoint.
#[derive(Clone)]
pub struct CheckpointHook(pub Arc<CheckpointFn>);

impl std::fmt::Debug for CheckpointHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckpointHook")
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            checkpoint_interval: Duration::from_secs(1),
            compression_level: 1,
            max_group_events: 50_000,
            origin_prefix: "auditlog/".to_owned(),
            key_dir: None,
            on_checkpoint: None,
            verify_mmap: false,
        }
    }
}

/// What the engine shares with the backend's readers.
pub(crate) struct Shared {
    pub options: StoreOptions,
    pub keys: Keystore,
    pub dicts: Dictionaries,
    /// Set when a commit or sync failed: writes stay stopped until restart (no retry).
    poisoned: Mutex<Option<String>>,
    /// Per tenant, the newest checkpoint known to be durable. Checkpoints are committed before
    /// their sync; serving one that a power loss could still take away would let the log sign
    /// a different tree of the same size after restart. Tenants absent here have nothing
    /// unsynced (the writer syncs at start).
    durable_checkpoint: Mutex<HashMap<TenantId, u64>>,
}

impl Shared {
    pub(crate) fn new(options: StoreOptions, keys: Keystore) -> Shared {
        Shared {
            options,
            keys,
            dicts: Dictionaries::default(),
            poisoned: Mutex::new(None),
            durable_checkpoint: Mutex::new(HashMap::new()),
        }
    }

    /// Stop all writes until restart (the first problem is the one reported).
    pub(crate) fn stop_writes(&self, problem: &str) {
        tracing::error!("{problem}");
        self.poisoned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| problem.to_owned());
    }

    pub(crate) fn poisoned(&self) -> Option<String> {
        self.poisoned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The largest checkpoint size of `tenant` that may be served (`u64::MAX`: all).
    pub(crate) fn durable_checkpoint(&self, tenant: &TenantId) -> u64 {
        self.durable_checkpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            .copied()
            .unwrap_or(u64::MAX)
    }
}

enum Job {
    Append {
        tenant: TenantId,
        events: Vec<SealedEvent>,
        done: AppendDone,
    },
    SignNow(mpsc::SyncSender<Result<(), StoreError>>),
    /// Trail records wait in the outbox: take them into the log now.
    Drain,
}

/// An event compressed by the caller's thread, ready for the writer.
struct SealedEvent {
    prepared: PreparedEvent,
    dict_id: i64,
    blob: Vec<u8>,
}

/// The running writer of a store: queue appends, ask for checkpoints, stop.
pub(crate) struct Engine {
    shared: Arc<Shared>,
    writer: Mutex<Option<Sender<Job>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
}

impl Engine {
    /// Start the writer over `backend`, answering groups once `durability` synced them.
    pub(crate) fn start<B: WriteBackend, D: Durability>(
        shared: Arc<Shared>,
        backend: B,
        durability: D,
    ) -> Result<Engine, StoreError> {
        let writer_shared = shared.clone();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("auditlog-writer".into())
            .spawn(move || Writer::new(writer_shared, backend, durability).run(rx))
            .map_err(|e| StoreError::io("start writer thread", e))?;
        Ok(Engine {
            shared,
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(thread)),
        })
    }

    fn sender(&self) -> Option<Sender<Job>> {
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn is_running(&self) -> bool {
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Compress on the caller's thread (in parallel with other requests), then queue.
    pub(crate) fn append(&self, tenant: &TenantId, events: Vec<PreparedEvent>, done: AppendDone) {
        if let Some(problem) = self.shared.poisoned() {
            done(Err(StoreError::Unavailable(problem)));
            return;
        }
        let Some(sender) = self.sender() else {
            done(Err(StoreError::Unavailable("writer stopped".into())));
            return;
        };
        let (dict_id, dict) = self.shared.dicts.current(tenant);
        let level = self.shared.options.compression_level;
        let sealed: Result<Vec<SealedEvent>, StoreError> = events
            .into_iter()
            .map(|prepared| {
                let blob = codec::compress_parts(dict_id, &dict, level, &prepared.parts)?;
                Ok(SealedEvent {
                    prepared,
                    dict_id,
                    blob,
                })
            })
            .collect();
        let events = match sealed {
            Ok(events) => events,
            Err(e) => {
                done(Err(e));
                return;
            }
        };
        let job = Job::Append {
            tenant: tenant.clone(),
            events,
            done,
        };
        if let Err(mpsc::SendError(Job::Append { done, .. })) = sender.send(job) {
            done(Err(StoreError::Unavailable("writer stopped".into())));
        }
    }

    /// Sign a checkpoint now for every tenant whose tree grew since its last one.
    pub(crate) fn sign_pending(&self) -> Result<(), StoreError> {
        let Some(sender) = self.sender() else {
            return Ok(());
        };
        let (tx, rx) = mpsc::sync_channel(1);
        sender
            .send(Job::SignNow(tx))
            .map_err(|_| StoreError::Unavailable("writer stopped".into()))?;
        rx.recv()
            .map_err(|_| StoreError::Unavailable("writer stopped".into()))?
    }

    /// Trail records wait in the outbox.
    pub(crate) fn wake(&self) {
        if let Some(sender) = self.sender() {
            let _ = sender.send(Job::Drain);
        }
    }

    /// Stop the writer after it has committed what it was given and signed a last checkpoint.
    pub(crate) fn close(&self) {
        let sender = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(sender);
        if let Some(thread) = self
            .writer_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.close();
    }
}

/// The checkpoint of an empty tree (RFC 9162: the hash of nothing), which a tenant made
/// ready starts with. Ed25519 signs deterministically, so every process writes the same note.
pub(crate) fn empty_tree_note(signer: &NoteSigner) -> String {
    sign_checkpoint(
        signer,
        &Checkpoint {
            origin: signer.name().to_owned(),
            size: 0,
            root: merkle::empty_root(),
        },
    )
}

struct TenantState {
    id: TenantKey,
    name: TenantId,
    size: u64,
    tiles: TileWriter,
    signer: NoteSigner,
    signed_size: u64,
    signed_at: Option<Instant>,
    samples: Vec<Vec<u8>>,
    training: bool,
    dirty: bool,
}

struct Writer<B> {
    shared: Arc<Shared>,
    backend: B,
    tenants: HashMap<TenantId, TenantState>,
    /// Tenants whose head row the open group transaction has locked.
    locked: HashSet<TenantId>,
    clock: MonotonicClock,
    trained_tx: Sender<(TenantId, Option<Vec<u8>>)>,
    trained_rx: Receiver<(TenantId, Option<Vec<u8>>)>,
    canonical: Vec<u8>,
    stats: WriterStats,
    /// Committed groups go here to be synced and answered.
    syncer: Option<(Sender<SyncJob>, JoinHandle<()>)>,
    /// Checkpoints signed in the group being committed.
    signed_in_group: Vec<(TenantId, u64, String)>,
    /// Outbox rows that cannot be taken in (only a bug makes one), left for a fixed binary.
    outbox_skipped: HashSet<i64>,
}

/// A committed group waiting for its sync before it is answered.
struct SyncJob {
    replies: Replies,
    sign_waiters: Vec<mpsc::SyncSender<Result<(), StoreError>>>,
    checkpoints: Vec<(TenantId, u64, String)>,
}

/// The syncer: sync once for every batch of committed groups, then answer them. The writer
/// goes on committing the next group meanwhile, so the disk's latency is not on its path. A
/// group is answered only after a sync that started after its commit. A sync error stops
/// all writes.
fn run_syncer(shared: Arc<Shared>, jobs: Receiver<SyncJob>, mut durability: impl Durability) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while let Ok(more) = jobs.try_recv() {
            batch.push(more);
        }
        match durability.sync() {
            Ok(()) => {
                let mut durable = shared
                    .durable_checkpoint
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                for job in &batch {
                    for (tenant, size, _) in &job.checkpoints {
                        let entry = durable.entry(tenant.clone()).or_insert(0);
                        *entry = (*entry).max(*size);
                    }
                }
                drop(durable);
                if let Some(hook) = &shared.options.on_checkpoint {
                    for job in &batch {
                        for (tenant, size, note) in &job.checkpoints {
                            (hook.0)(tenant, *size, note);
                        }
                    }
                }
                for job in batch {
                    for (done, outcome) in job.replies {
                        done(outcome);
                    }
                    for waiter in job.sign_waiters {
                        let _ = waiter.send(Ok(()));
                    }
                }
            }
            Err(e) => {
                let problem =
                    format!("fsync of the WAL failed ({e}); writes are stopped until restart");
                shared.stop_writes(&problem);
                for job in batch {
                    fail_job(job, &problem);
                }
            }
        }
    }
}

/// Where the writer's time goes, logged at debug level when it stops.
#[derive(Default, Debug)]
struct WriterStats {
    groups: u64,
    events: u64,
    apply: Duration,
    commit: Duration,
}

enum Plan {
    New,
    Replay(u64),
    SameAs(usize),
}

/// Why appending planned events stopped.
enum Append {
    /// An id planned as new is in the log already: undo the batch and plan with lookups.
    IdTaken,
    Failed(StoreError),
}

impl Append {
    /// The error of an append where a taken id cannot happen (`why` says why it did).
    fn unexpected(self, why: &str) -> StoreError {
        match self {
            Append::IdTaken => StoreError::Corrupted(why.to_owned()),
            Append::Failed(e) => e,
        }
    }
}

impl From<StoreError> for Append {
    fn from(error: StoreError) -> Append {
        Append::Failed(error)
    }
}

/// Plans from the batch alone: an id met earlier in the batch is the same event (or a
/// conflict, if its body differs); everything else is new.
fn plan_within_batch(events: &[&PreparedEvent]) -> Result<Vec<Plan>, StoreError> {
    let mut plans = Vec::with_capacity(events.len());
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        let Some(id) = event.id.as_deref() else {
            plans.push(Plan::New);
            continue;
        };
        match seen.entry(id) {
            std::collections::hash_map::Entry::Occupied(first) => {
                if !events[*first.get()].same_body(event) {
                    return Err(StoreError::Conflict {
                        index,
                        id: id.to_owned(),
                    });
                }
                plans.push(Plan::SameAs(*first.get()));
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(index);
                plans.push(Plan::New);
            }
        }
    }
    Ok(plans)
}

/// What [`TenantState::undo`] restores: the tenant before a batch that was rolled back.
struct UndoPoint {
    size: u64,
    tiles: TileWriter,
    samples: usize,
    dirty: bool,
}

impl TenantState {
    fn undo_point(&self) -> UndoPoint {
        UndoPoint {
            size: self.size,
            tiles: self.tiles.clone(),
            samples: self.samples.len(),
            dirty: self.dirty,
        }
    }

    fn undo(&mut self, point: UndoPoint) {
        self.size = point.size;
        self.tiles = point.tiles;
        self.samples.truncate(point.samples);
        self.dirty = point.dirty;
    }
}

fn fail_job(job: SyncJob, why: &str) {
    for (done, _) in job.replies {
        done(Err(StoreError::Unavailable(why.to_owned())));
    }
    for waiter in job.sign_waiters {
        let _ = waiter.send(Err(StoreError::Unavailable(why.to_owned())));
    }
}

fn job_events(job: &Job) -> usize {
    match job {
        Job::Append { events, .. } => events.len().max(1),
        Job::SignNow(_) | Job::Drain => 1,
    }
}

type Replies = Vec<(AppendDone, Result<AppendOutcome, StoreError>)>;

impl<B: WriteBackend> Writer<B> {
    fn new(shared: Arc<Shared>, backend: B, durability: impl Durability) -> Writer<B> {
        let (trained_tx, trained_rx) = mpsc::channel();
        let (sync_tx, sync_rx) = mpsc::channel();
        let syncer_shared = shared.clone();
        let syncer = std::thread::Builder::new()
            .name("auditlog-sync".into())
            .spawn(move || run_syncer(syncer_shared, sync_rx, durability))
            .map(|handle| (sync_tx, handle))
            .map_err(|e| tracing::error!("no syncer thread: {e}"))
            .ok();
        Writer {
            shared,
            backend,
            tenants: HashMap::new(),
            locked: HashSet::new(),
            clock: MonotonicClock::default(),
            trained_tx,
            trained_rx,
            canonical: Vec::with_capacity(4096),
            stats: WriterStats::default(),
            syncer,
            signed_in_group: Vec::new(),
            outbox_skipped: HashSet::new(),
        }
    }

    fn run(mut self, rx: Receiver<Job>) {
        // Tenants whose newest events were never signed (a crash before the checkpoint) get a
        // checkpoint right away.
        if let Err(e) = self.load_all_tenants() {
            tracing::error!("loading tenants failed: {e}");
        }
        // What a crash left committed but perhaps unsynced is made durable before anything new.
        self.hand_to_syncer(Vec::new(), Vec::new());

        loop {
            // Trail records written by other processes (`token create` beside the server)
            // are polled for; this process's own wake the writer with `Job::Drain`.
            let wait = self
                .next_sign_due()
                .map_or(OUTBOX_POLL, |due| due.min(OUTBOX_POLL));
            let first = match rx.recv_timeout(wait) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    let sign_due = self.next_sign_due().is_some_and(|due| due.is_zero());
                    let pending = self.backend.outbox_is_empty().map(|empty| !empty);
                    if (sign_due || pending.unwrap_or(false))
                        && let Err(e) = self.commit_group(Vec::new(), false)
                    {
                        tracing::error!("signing checkpoints failed: {e}");
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if let Err(e) = self.commit_group(Vec::new(), true) {
                        tracing::error!("signing the last checkpoints failed: {e}");
                    }
                    tracing::debug!(stats = ?self.stats, "writer stopped");
                    if let Some((sender, handle)) = self.syncer.take() {
                        drop(sender);
                        let _ = handle.join();
                    }
                    if self.shared.poisoned().is_none() {
                        self.backend.close();
                    }
                    return;
                }
            };
            let mut jobs = vec![first];
            let mut n_events = job_events(&jobs[0]);
            while n_events < self.shared.options.max_group_events {
                match rx.try_recv() {
                    Ok(job) => {
                        n_events += job_events(&job);
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let sign_now = jobs.iter().any(|job| matches!(job, Job::SignNow(_)));
            if let Err(e) = self.commit_group(jobs, sign_now) {
                tracing::error!("commit failed, writes stopped: {e}");
            }
        }
    }

    /// How long until some tenant's unsigned growth is due for a checkpoint.
    fn next_sign_due(&self) -> Option<Duration> {
        let interval = self.shared.options.checkpoint_interval;
        self.tenants
            .values()
            .filter(|t| t.size > t.signed_size)
            .map(|t| match t.signed_at {
                Some(at) => interval.saturating_sub(at.elapsed()),
                None => Duration::ZERO,
            })
            .min()
    }

    fn poison(&mut self, problem: String) {
        *self
            .shared
            .poisoned
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(problem);
        // In-memory state may be ahead of storage; forget it (a restart recovers from it).
        self.tenants.clear();
    }

    fn commit_group(&mut self, jobs: Vec<Job>, sign_all: bool) -> Result<(), StoreError> {
        let mut replies: Replies = Vec::new();
        let mut sign_waiters = Vec::new();
        let mut appends = Vec::new();
        for job in jobs {
            match job {
                Job::Append {
                    tenant,
                    events,
                    done,
                } => appends.push((tenant, events, done)),
                Job::SignNow(waiter) => sign_waiters.push(waiter),
                // Every group takes in the outbox.
                Job::Drain => {}
            }
        }
        if let Some(problem) = self.shared.poisoned() {
            for (_, _, done) in appends {
                done(Err(StoreError::Unavailable(problem.clone())));
            }
            for waiter in sign_waiters {
                let _ = waiter.send(Err(StoreError::Unavailable(problem.clone())));
            }
            return Ok(());
        }
        let result = self.commit_group_inner(appends, sign_all, &mut replies);
        self.locked.clear();
        match result {
            Ok(()) => {
                self.hand_to_syncer(replies, sign_waiters);
                self.backend.after_group();
                self.start_training();
                Ok(())
            }
            Err(e) => {
                self.backend.rollback();
                self.signed_in_group.clear();
                let problem = format!("a commit failed ({e}); writes are stopped until restart");
                self.poison(problem.clone());
                for (done, _) in replies {
                    done(Err(StoreError::Unavailable(problem.clone())));
                }
                for waiter in sign_waiters {
                    let _ = waiter.send(Err(StoreError::Unavailable(problem.clone())));
                }
                Err(e)
            }
        }
    }

    /// Answer a committed group once it is durable.
    fn hand_to_syncer(
        &mut self,
        replies: Replies,
        sign_waiters: Vec<mpsc::SyncSender<Result<(), StoreError>>>,
    ) {
        let job = SyncJob {
            replies,
            sign_waiters,
            checkpoints: std::mem::take(&mut self.signed_in_group),
        };
        match &self.syncer {
            Some((sender, _)) => {
                if let Err(mpsc::SendError(job)) = sender.send(job) {
                    fail_job(job, "the syncer stopped");
                }
            }
            None => fail_job(job, "no syncer thread"),
        }
    }

    fn commit_group_inner(
        &mut self,
        appends: Vec<(TenantId, Vec<SealedEvent>, AppendDone)>,
        sign_all: bool,
        replies: &mut Replies,
    ) -> Result<(), StoreError> {
        // Tenants are loaded (and created) outside the transaction's hot part.
        for (tenant, _, _) in &appends {
            self.load_tenant(tenant)?;
        }
        let started = Instant::now();
        self.backend.begin()?;
        self.install_trained()?;
        let now = now();
        for (tenant, events, done) in appends {
            match self.apply(&tenant, &events, now) {
                Ok(outcome) => replies.push((done, Ok(outcome))),
                Err(e @ (StoreError::Conflict { .. } | StoreError::BadRequest(_))) => {
                    replies.push((done, Err(e)))
                }
                Err(e) => {
                    replies.push((done, Err(StoreError::Unavailable("commit failed".into()))));
                    return Err(e);
                }
            }
        }
        self.drain_outbox(now)?;
        self.write_tiles_and_sign(sign_all)?;
        let applied = Instant::now();
        self.backend.commit()?;
        self.stats.groups += 1;
        self.stats.apply += applied.duration_since(started);
        self.stats.commit += applied.elapsed();
        Ok(())
    }

    /// Lock the tenant's head for this group; when another writer moved it since this one
    /// last looked, reload the tenant from storage first.
    fn lock_head(&mut self, tenant: &TenantId) -> Result<(), StoreError> {
        if self.locked.contains(tenant) {
            return Ok(());
        }
        let state = self
            .tenants
            .get(tenant)
            .ok_or_else(|| StoreError::Corrupted(format!("tenant {tenant} not loaded")))?;
        let stored = self.backend.lock_head(state.id)?;
        if stored != state.size {
            if state.dirty {
                return Err(StoreError::Corrupted(format!(
                    "tenant {tenant}: the stored tree size {stored} moved while this writer held {} unsaved",
                    state.size
                )));
            }
            tracing::debug!(%tenant, stored, held = state.size, "another writer moved the head");
            self.tenants.remove(tenant);
            self.load_tenant(tenant)?;
        }
        self.locked.insert(tenant.clone());
        Ok(())
    }

    /// Move queued records into their tenants' trail logs, in the group's transaction: a
    /// record leaves the outbox exactly when it enters the trail log.
    fn drain_outbox(&mut self, now: Timestamp) -> Result<(), StoreError> {
        if self.outbox_skipped.is_empty() && self.backend.outbox_is_empty()? {
            return Ok(());
        }
        let rows = self
            .backend
            .pending_outbox(1000 + self.outbox_skipped.len())?;
        let mut by_tenant: Vec<(TenantId, Vec<SealedEvent>)> = Vec::new();
        let peer = std::net::IpAddr::from([127, 0, 0, 1]);
        for (id, tenant, body) in rows {
            if self.outbox_skipped.contains(&id) {
                continue;
            }
            let prepared = TenantId::parse_stored(&tenant)
                .map_err(|e| e.to_string())
                .and_then(|tenant| {
                    let value = auditlog_core::json::parse(
                        &body,
                        &auditlog_core::json::JsonLimits::default(),
                    )
                    .map_err(|e| e.to_string())?;
                    let prepared =
                        crate::prepare_event(value, now, peer).map_err(|e| e.message.clone())?;
                    Ok((tenant, prepared))
                });
            let (tenant, prepared) = match prepared {
                Ok(ok) => ok,
                Err(why) => {
                    // Only a bug can queue a bad record; keep it for a fixed binary.
                    tracing::error!(
                        "trail record {id} in the outbox is invalid, left there: {why}"
                    );
                    self.outbox_skipped.insert(id);
                    continue;
                }
            };
            self.load_tenant(&tenant)?;
            let (dict_id, dict) = self.shared.dicts.current(&tenant);
            let blob = codec::compress_parts(
                dict_id,
                &dict,
                self.shared.options.compression_level,
                &prepared.parts,
            )?;
            let sealed = SealedEvent {
                prepared,
                dict_id,
                blob,
            };
            match by_tenant.iter_mut().find(|(t, _)| *t == tenant) {
                Some((_, events)) => events.push(sealed),
                None => by_tenant.push((tenant, vec![sealed])),
            }
            self.backend.delete_outbox(id)?;
        }
        for (tenant, events) in by_tenant {
            self.apply(&tenant, &events, now)?;
        }
        Ok(())
    }

    fn load_all_tenants(&mut self) -> Result<(), StoreError> {
        for name in self.backend.tenants_with_events()? {
            match TenantId::parse_stored(&name) {
                Ok(tenant) => self.load_tenant(&tenant)?,
                Err(e) => tracing::error!("skipping tenant: {e}"),
            }
        }
        Ok(())
    }

    fn load_tenant(&mut self, tenant: &TenantId) -> Result<(), StoreError> {
        if self.tenants.contains_key(tenant) {
            return Ok(());
        }
        let signer = self.shared.keys.load_or_create(tenant)?;
        let (id, size) = self.backend.ensure_tenant(tenant)?;
        let mut edge = Vec::new();
        for tile in TileWriter::right_edge_ids(size) {
            let data = self.backend.tile(id, tile.level, tile.index)?;
            let data = data.ok_or_else(|| {
                StoreError::Corrupted(format!("tenant {tenant}: tile {} is missing", tile.path()))
            })?;
            edge.push((tile, data));
        }
        let tiles = TileWriter::resume(size, edge)?;
        // received_at never decreases, across restarts too: resume the clock from the newest event.
        if let Some(newest) = self.backend.newest_received_at(id)? {
            let newest = Timestamp::from_unix_nanos(newest);
            if newest > self.clock.last() {
                self.clock = MonotonicClock::starting_at(newest);
            }
        }
        let signed_size = self.backend.newest_checkpoint_size(id)?;
        let dict = self.backend.newest_dict(id)?;
        if let Some((dict_id, bytes)) = &dict {
            self.shared
                .dicts
                .set_current(tenant, *dict_id, Arc::new(bytes.clone()));
        }
        self.tenants.insert(
            tenant.clone(),
            TenantState {
                id,
                name: tenant.clone(),
                size,
                tiles,
                signer,
                signed_size: signed_size.unwrap_or(0),
                signed_at: None,
                samples: Vec::new(),
                training: dict.is_some(),
                dirty: false,
            },
        );
        Ok(())
    }

    fn apply(
        &mut self,
        tenant: &TenantId,
        sealed: &[SealedEvent],
        now: Timestamp,
    ) -> Result<AppendOutcome, StoreError> {
        let events: Vec<&PreparedEvent> = sealed.iter().map(|e| &e.prepared).collect();
        self.lock_head(tenant)?;
        // Decide every event before changing anything, so a conflict stores nothing. The
        // common case is ids never seen before: they are planned as new without a lookup,
        // and the backend's unique key on (tenant, idem) checks them in the insert itself.
        // Should it find one taken, the batch is undone and planned again with a lookup per id.
        let plans = plan_within_batch(&events)?;
        if !events.iter().any(|event| event.id.is_some()) {
            return self
                .append_planned(tenant, sealed, &plans, now)
                .map_err(|e| e.unexpected("an event without id took an id"));
        }
        self.backend.savepoint()?;
        let before = self.tenants.get(tenant).map(TenantState::undo_point);
        match self.append_planned(tenant, sealed, &plans, now) {
            Ok(outcome) => {
                self.backend.release_savepoint()?;
                Ok(outcome)
            }
            Err(stopped) => {
                // Nothing of the batch stays, whatever stopped it.
                self.backend.rollback_to_savepoint()?;
                if let (Some(state), Some(before)) = (self.tenants.get_mut(tenant), before) {
                    let undone = state.size - before.size;
                    state.undo(before);
                    self.stats.events -= undone;
                }
                if let Append::Failed(e) = stopped {
                    return Err(e);
                }
                let plans = self.plan_with_lookups(tenant, &events)?;
                self.append_planned(tenant, sealed, &plans, now)
                    .map_err(|e| e.unexpected("an id was taken after its lookup"))
            }
        }
    }

    /// Plans for ids that may be in the log: a lookup per id, before anything changes.
    fn plan_with_lookups(
        &mut self,
        tenant: &TenantId,
        events: &[&PreparedEvent],
    ) -> Result<Vec<Plan>, StoreError> {
        let tenant_id = self
            .tenants
            .get(tenant)
            .map(|state| state.id)
            .ok_or_else(|| StoreError::Corrupted(format!("tenant {tenant} not loaded")))?;
        let mut plans = plan_within_batch(events)?;
        let mut decoder = Decoder::default();
        for (index, (event, plan)) in events.iter().zip(plans.iter_mut()).enumerate() {
            let (Some(id), Plan::New) = (event.id.as_deref(), &plan) else {
                continue;
            };
            if let Some(stored) = self.backend.find_idem(tenant_id, id)? {
                let backend = &mut self.backend;
                let dicts = &self.shared.dicts;
                // A row that no longer decodes is no replay (verify reports it).
                let stored_parts = || {
                    decoder
                        .parts(dicts, |id| backend.dict(id), stored.dict, &stored.body)
                        .ok()
                };
                if !event.same_as_stored(stored.idem_hash.as_deref(), stored_parts) {
                    return Err(StoreError::Conflict {
                        index,
                        id: id.to_owned(),
                    });
                }
                *plan = Plan::Replay(stored.seq);
            }
        }
        Ok(plans)
    }

    /// Append the events planned as new; answer replays from the log.
    fn append_planned(
        &mut self,
        tenant: &TenantId,
        sealed: &[SealedEvent],
        plans: &[Plan],
        now: Timestamp,
    ) -> Result<AppendOutcome, Append> {
        let state = self
            .tenants
            .get_mut(tenant)
            .ok_or_else(|| StoreError::Corrupted(format!("tenant {tenant} not loaded")))?;
        let mut receipts: Vec<Receipt> = Vec::with_capacity(sealed.len());
        let mut decoder = Decoder::default();
        for (seal, plan) in sealed.iter().zip(plans) {
            let event = &seal.prepared;
            let receipt = match plan {
                Plan::New => {
                    let seq = state.size + 1;
                    let received_at = self.clock.stamp(now);
                    self.canonical.clear();
                    canonical_event(
                        &event.parts,
                        received_at,
                        seq,
                        state.name.as_str(),
                        &mut self.canonical,
                    );
                    let leaf = merkle::leaf_hash(&self.canonical);
                    let inserted = self.backend.insert_event(&EventRow {
                        tenant: state.id,
                        seq,
                        received_at: received_at.unix_nanos(),
                        idem: event.id.as_deref(),
                        idem_hash: event.input_hash.as_ref().map(|hash| hash.as_slice()),
                        dict: seal.dict_id,
                        body: &seal.blob,
                    })?;
                    match inserted {
                        Inserted::Stored => {}
                        Inserted::IdTaken if event.id.is_some() => return Err(Append::IdTaken),
                        Inserted::IdTaken => {
                            return Err(Append::Failed(StoreError::Corrupted(
                                "an event without id took an id".into(),
                            )));
                        }
                    }
                    state.tiles.append(leaf);
                    state.size = seq;
                    self.stats.events += 1;
                    state.dirty = true;
                    if !state.training && state.samples.len() < codec::DICT_TRAIN_AFTER {
                        state.samples.push(codec::encode_plain(&event.parts));
                    }
                    Receipt {
                        id: event.id.clone(),
                        seq,
                        leaf_hash: leaf,
                    }
                }
                Plan::Replay(seq) => {
                    let (received_at, dict, blob) = self.backend.event_row(state.id, *seq)?;
                    let backend = &mut self.backend;
                    let parts =
                        decoder.parts(&self.shared.dicts, |id| backend.dict(id), dict, &blob)?;
                    let mut canonical = Vec::new();
                    canonical_event(
                        &parts,
                        Timestamp::from_unix_nanos(received_at),
                        *seq,
                        state.name.as_str(),
                        &mut canonical,
                    );
                    Receipt {
                        id: event.id.clone(),
                        seq: *seq,
                        leaf_hash: merkle::leaf_hash(&canonical),
                    }
                }
                Plan::SameAs(first) => receipts[*first].clone(),
            };
            receipts.push(receipt);
        }
        Ok(AppendOutcome {
            receipts,
            tree_size: state.size,
        })
    }

    fn write_tiles_and_sign(&mut self, sign_all: bool) -> Result<(), StoreError> {
        let interval = self.shared.options.checkpoint_interval;
        let signed_at = now();
        for state in self.tenants.values_mut() {
            if state.dirty {
                for (tile, data) in state.tiles.take_dirty() {
                    self.backend
                        .put_tile(state.id, tile.level, tile.index, &data)?;
                }
                self.backend.set_head(state.id, state.size)?;
                state.dirty = false;
            }
            let due = state.signed_at.is_none_or(|at| at.elapsed() >= interval);
            if state.size > state.signed_size && (due || sign_all) {
                let checkpoint = Checkpoint {
                    origin: state.signer.name().to_owned(),
                    size: state.size,
                    root: state.tiles.root(),
                };
                let note = sign_checkpoint(&state.signer, &checkpoint);
                // A size that has a note keeps it (the same one: the head lock makes every
                // writer's tree of that size the same, and Ed25519 is deterministic).
                self.backend
                    .put_checkpoint(state.id, state.size, signed_at.unix_nanos(), &note)?;
                state.signed_size = state.size;
                state.signed_at = Some(Instant::now());
                self.signed_in_group
                    .push((state.name.clone(), state.size, note.clone()));
            }
        }
        Ok(())
    }

    /// Start training a dictionary for tenants that have collected enough samples.
    fn start_training(&mut self) {
        for state in self.tenants.values_mut() {
            if !state.training && state.samples.len() >= codec::DICT_TRAIN_AFTER {
                state.training = true;
                let samples = std::mem::take(&mut state.samples);
                let tenant = state.name.clone();
                let tx = self.trained_tx.clone();
                let _ = std::thread::Builder::new()
                    .name("auditlog-dict".into())
                    .spawn(move || {
                        let _ = tx.send((tenant, codec::train(&samples)));
                    });
            }
        }
    }

    /// Store dictionaries that finished training, and switch their tenants to them.
    fn install_trained(&mut self) -> Result<(), StoreError> {
        while let Ok((tenant, dict)) = self.trained_rx.try_recv() {
            let Some(state) = self.tenants.get_mut(&tenant) else {
                continue;
            };
            let Some(dict) = dict else {
                continue;
            };
            let dict_id = self.backend.insert_dict(state.id, &dict)?;
            self.shared
                .dicts
                .set_current(&tenant, dict_id, Arc::new(dict));
        }
        Ok(())
    }
}
