//! The engine: one tantivy index per tenant under the index directory, each kept up to date
//! by its own indexer thread that tails the log.
//!
//! Read-your-writes: a read first takes the tenant's tree size from the store (every
//! acknowledged event is below it), then waits until the index has committed through that
//! seq; the indexer commits at once when a reader waits, else at most every
//! `commit_interval`. The index commit records the last indexed seq and its leaf hash; on
//! open, an index whose record does not match the log (restored, replaced or rebuilt log,
//! other schema version) is rebuilt from the log.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use auditlog_core::event::Timestamp;
use auditlog_core::json::{self, JsonLimits};
use auditlog_core::tenant::TenantId;
use auditlog_query::Query;
use auditlog_store::{Store, StoreError};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tantivy::query::EnableScoring;
use tantivy::{Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, TantivyDocument};

use crate::exec::{self, FacetField, SeqSet};
use crate::schema::{self, Fields, SCHEMA_VERSION};
use crate::sort::{Cursor, SortField, SortKey, SortOrder};
use crate::translate::{TOO_BROAD, translate};

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// Longest time newly stored events stay unsearchable when nobody is waiting for them.
    pub commit_interval: Duration,
    /// Memory of each tenant's index writer (tantivy's minimum is 15 MB).
    pub writer_memory_bytes: usize,
    /// How long a read waits for the index to reach the log before answering 503.
    pub visible_timeout: Duration,
    /// False: no index is opened or built; every search answers [`SearchError::Disabled`]
    /// (`serve --no-search-index`, for a node that only records and proves).
    pub enabled: bool,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            commit_interval: Duration::from_secs(1),
            writer_memory_bytes: 64 << 20,
            visible_timeout: Duration::from_secs(10),
            enabled: true,
        }
    }
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query cannot run (too broad, bad cursor, bad interval): HTTP 400.
    #[error("{0}")]
    BadRequest(String),
    /// The index has not reached the log in time: HTTP 503, try again.
    #[error("the search index is catching up: {indexed} of {wanted} events indexed")]
    Behind { indexed: u64, wanted: u64 },
    /// The index failed and needs `auditlog reindex` (or a restart): HTTP 503.
    #[error("search index unavailable: {0}")]
    Unavailable(String),
    /// The server runs without a search index (`serve --no-search-index`): HTTP 503.
    #[error("this server keeps no search index (it was started with --no-search-index)")]
    Disabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(error: tantivy::TantivyError) -> Self {
        match &error {
            tantivy::TantivyError::InvalidArgument(message) if message == TOO_BROAD => {
                SearchError::BadRequest(format!(
                    "the query expands to more than {} distinct values; make prefixes longer or name the field",
                    crate::translate::MAX_EXPANDED_TERMS
                ))
            }
            _ => SearchError::Unavailable(error.to_string()),
        }
    }
}

/// One page request of `GET /api/v1/events`.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: Query,
    pub sort: SortField,
    pub order: SortOrder,
    /// 1 to [`MAX_LIMIT`].
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

/// Most events on one page.
pub const MAX_LIMIT: usize = 1000;
/// Largest page of a pinned search ([`SearchEngine::search_pinned`], the export): each page of
/// a sort other than the index's own scans every match, so an export takes fewer, larger ones.
pub const MAX_PINNED_LIMIT: usize = 10_000;
/// Most values one facet request returns.
pub const MAX_FACET_LIMIT: usize = 1000;
/// Most buckets of a histogram.
pub const MAX_BUCKETS: usize = 2000;

/// One page of matches.
#[derive(Debug, Clone)]
pub struct SearchPage {
    /// The page, in order: each event's sort key and seq.
    pub hits: Vec<(SortKey, u64)>,
    /// Where the next page starts, when there are more matches.
    pub next_cursor: Option<Cursor>,
    /// Every match of the query (not only this page).
    pub total: u64,
}

/// Distinct values of a column under a query.
#[derive(Debug, Clone)]
pub struct Facets {
    pub values: Vec<(String, u64)>,
    /// How many distinct values there are in all (`values` may be cut at the limit).
    pub distinct: u64,
    pub total: u64,
}

/// Match counts per time bucket.
#[derive(Debug, Clone)]
pub struct Histogram {
    pub interval_secs: i64,
    /// Start of each bucket (aligned to the interval since the epoch, UTC) and its count.
    pub buckets: Vec<(Timestamp, u64)>,
    pub total: u64,
}

/// Bucket widths `interval=auto` chooses from, in seconds.
const AUTO_INTERVALS: [i64; 16] = [
    1, 5, 10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 43200, 86400, 604_800, 2_592_000,
    31_536_000,
];
/// `auto` picks the smallest width giving at most this many buckets.
const AUTO_BUCKETS: i64 = 120;

/// The search engine of one data directory.
pub struct SearchEngine {
    store: Arc<dyn Store>,
    root: PathBuf,
    options: SearchOptions,
    tenants: Mutex<HashMap<TenantId, Arc<TenantIndex>>>,
}

impl SearchEngine {
    /// Opens (or creates) the indexes under `root` and starts an indexer for every tenant of
    /// the store, so they catch up with the log in the background.
    pub fn open(
        store: Arc<dyn Store>,
        root: &Path,
        options: SearchOptions,
    ) -> Result<SearchEngine, SearchError> {
        let engine = SearchEngine {
            store,
            root: root.to_owned(),
            options,
            tenants: Mutex::new(HashMap::new()),
        };
        if !engine.options.enabled {
            return Ok(engine);
        }
        std::fs::create_dir_all(root).map_err(|e| {
            SearchError::Unavailable(format!("cannot create {}: {e}", root.display()))
        })?;
        for tenant in engine.store.tenants()? {
            engine.tenant(&tenant)?;
        }
        Ok(engine)
    }

    /// Tells the indexer of `tenant` that the log grew (after an acknowledged append).
    pub fn notify(&self, tenant: &TenantId) {
        if let Ok(index) = self.tenant(tenant) {
            let mut state = index.lock();
            state.wake = true;
            index.changed.notify_all();
        }
    }

    /// How far the tenant's index has committed (its last indexed seq).
    pub fn indexed_through(&self, tenant: &TenantId) -> Result<u64, SearchError> {
        Ok(self.tenant(tenant)?.lock().committed)
    }

    /// Waits until every event stored so far is searchable; returns the log size it reached.
    pub fn catch_up(&self, tenant: &TenantId, timeout: Duration) -> Result<u64, SearchError> {
        let index = self.tenant(tenant)?;
        let size = self.store.tree_size(tenant)?;
        index.visible_through(size, timeout)?;
        Ok(size)
    }

    /// Waits until the tenant's first `size` events are searchable (a reader pinned to a tree
    /// of that size, such as an export, need not wait for events stored since).
    pub fn catch_up_through(
        &self,
        tenant: &TenantId,
        size: u64,
        timeout: Duration,
    ) -> Result<(), SearchError> {
        self.tenant(tenant)?.visible_through(size, timeout)
    }

    /// Deletes the tenant's index and builds it again from the log, calling `progress(done,
    /// total)` now and then.
    pub fn rebuild(
        &self,
        tenant: &TenantId,
        progress: &dyn Fn(u64, u64),
    ) -> Result<(), SearchError> {
        let old = self.tenants_lock().remove(tenant);
        if let Some(old) = old {
            old.stop();
        }
        let dir = self.tenant_dir(tenant);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| {
                SearchError::Unavailable(format!("cannot remove {}: {e}", dir.display()))
            })?;
        }
        let index = self.tenant(tenant)?;
        let size = self.store.tree_size(tenant)?;
        loop {
            progress(index.progress.load(Ordering::Relaxed).min(size), size);
            match index.visible_through(size, Duration::from_millis(200)) {
                Ok(()) => break,
                Err(SearchError::Behind { .. }) => continue,
                Err(other) => return Err(other),
            }
        }
        progress(size, size);
        Ok(())
    }

    /// A page of matches of `request`, evaluated at `now` (for relative times), once every
    /// event stored before the call is searchable.
    pub fn search(
        &self,
        tenant: &TenantId,
        request: &SearchRequest,
        now: Timestamp,
    ) -> Result<SearchPage, SearchError> {
        self.search_through(tenant, request, now, None)
    }

    /// [`SearchEngine::search`] for a reader pinned to a tree of `size` events (an export):
    /// it waits only until those are searchable, not for events stored since, so a long
    /// export does not fail while ingest outruns the index. The page may hold later seqs.
    pub fn search_pinned(
        &self,
        tenant: &TenantId,
        request: &SearchRequest,
        now: Timestamp,
        size: u64,
    ) -> Result<SearchPage, SearchError> {
        self.search_through(tenant, request, now, Some(size))
    }

    fn search_through(
        &self,
        tenant: &TenantId,
        request: &SearchRequest,
        now: Timestamp,
        through: Option<u64>,
    ) -> Result<SearchPage, SearchError> {
        let most = if through.is_some() {
            MAX_PINNED_LIMIT
        } else {
            MAX_LIMIT
        };
        let limit = request.limit.clamp(1, most);
        let (index, searcher) = self.searcher(tenant, through)?;
        let query = translate(&request.query, &index.fields, now);
        let weight = query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
        let (mut hits, counted) = exec::top(
            &searcher,
            weight.as_ref(),
            request.sort,
            request.order,
            limit + 1,
            request.cursor.as_ref(),
        )?;
        let total = match counted {
            Some(total) => total,
            None => exec::count(&searcher, weight.as_ref())?,
        };
        let more = hits.len() > limit;
        hits.truncate(limit);
        let next_cursor = match hits.last() {
            Some((key, seq)) if more => Some(Cursor {
                sort: request.sort,
                order: request.order,
                key: key.clone(),
                seq: *seq,
            }),
            _ => None,
        };
        Ok(SearchPage {
            hits,
            next_cursor,
            total,
        })
    }

    /// The number of matches of `query`.
    pub fn count(
        &self,
        tenant: &TenantId,
        query: &Query,
        now: Timestamp,
    ) -> Result<u64, SearchError> {
        let (index, searcher) = self.searcher(tenant, None)?;
        let query = translate(query, &index.fields, now);
        let weight = query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
        Ok(exec::count(&searcher, weight.as_ref())?)
    }

    /// Every match of `query` with a seq up to `max_seq`, as a set of seqs (for exports in
    /// seq order: one pass over the index, then the log is read in order). Waits only until
    /// the events through `max_seq` are searchable.
    pub fn matching_seqs(
        &self,
        tenant: &TenantId,
        query: &Query,
        max_seq: u64,
        now: Timestamp,
    ) -> Result<SeqSet, SearchError> {
        let (index, searcher) = self.searcher(tenant, Some(max_seq))?;
        let query = translate(query, &index.fields, now);
        let weight = query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
        Ok(exec::matching_seqs(&searcher, weight.as_ref(), max_seq)?)
    }

    /// The most frequent values of `field` among the matches of `query`.
    pub fn facets(
        &self,
        tenant: &TenantId,
        query: &Query,
        field: FacetField,
        limit: usize,
        now: Timestamp,
    ) -> Result<Facets, SearchError> {
        let (index, searcher) = self.searcher(tenant, None)?;
        let query = translate(query, &index.fields, now);
        let weight = query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
        let total = exec::count(&searcher, weight.as_ref())?;
        let (values, distinct) = exec::facets(
            &searcher,
            weight.as_ref(),
            field,
            limit.clamp(1, MAX_FACET_LIMIT),
        )?;
        Ok(Facets {
            values,
            distinct,
            total,
        })
    }

    /// Match counts per time bucket; `interval_secs: None` chooses the width from the span
    /// of the matches (at most 120 buckets).
    pub fn histogram(
        &self,
        tenant: &TenantId,
        query: &Query,
        interval_secs: Option<i64>,
        now: Timestamp,
    ) -> Result<Histogram, SearchError> {
        let (index, searcher) = self.searcher(tenant, None)?;
        let query = translate(query, &index.fields, now);
        let weight = query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
        let Some((lo, hi)) = exec::time_span(&searcher, weight.as_ref())? else {
            return Ok(Histogram {
                interval_secs: interval_secs.unwrap_or(3600),
                buckets: Vec::new(),
                total: 0,
            });
        };
        let span_secs = (i128::from(hi) - i128::from(lo)) / 1_000_000_000 + 1;
        let interval = match interval_secs {
            Some(secs) if secs >= 1 => secs,
            Some(_) => {
                return Err(SearchError::BadRequest(
                    "interval must be at least 1s".into(),
                ));
            }
            None => AUTO_INTERVALS
                .into_iter()
                .find(|&width| span_secs / i128::from(width) < i128::from(AUTO_BUCKETS))
                .unwrap_or(AUTO_INTERVALS[AUTO_INTERVALS.len() - 1]),
        };
        let width = i128::from(interval) * 1_000_000_000;
        let first = i128::from(lo).div_euclid(width) * width;
        let buckets = (i128::from(hi) - first) / width + 1;
        if buckets > MAX_BUCKETS as i128 {
            return Err(SearchError::BadRequest(format!(
                "interval {interval}s gives {buckets} buckets over the matches, at most {MAX_BUCKETS}; choose a wider interval or a narrower time range"
            )));
        }
        let (Ok(first_ns), Ok(width_ns)) = (i64::try_from(first), i64::try_from(width)) else {
            return Err(SearchError::BadRequest("interval too large".into()));
        };
        let counts = exec::bucket_counts(
            &searcher,
            weight.as_ref(),
            first_ns,
            width_ns,
            buckets as usize,
        )?;
        let total = counts.iter().sum();
        Ok(Histogram {
            interval_secs: interval,
            buckets: counts
                .into_iter()
                .enumerate()
                .map(|(idx, count)| {
                    let start = first_ns.saturating_add((idx as i64).saturating_mul(width_ns));
                    (Timestamp::from_unix_nanos(start), count)
                })
                .collect(),
            total,
        })
    }

    /// Stops every indexer after a last commit.
    pub fn shutdown(&self) {
        let all: Vec<Arc<TenantIndex>> = self.tenants_lock().drain().map(|(_, i)| i).collect();
        for index in all {
            index.stop();
        }
    }

    /// The tenant's index made current with the log (or with its first `through` events), and
    /// a searcher on it.
    fn searcher(
        &self,
        tenant: &TenantId,
        through: Option<u64>,
    ) -> Result<(Arc<TenantIndex>, tantivy::Searcher), SearchError> {
        let index = self.tenant(tenant)?;
        let size = match through {
            Some(size) => size,
            None => self.store.tree_size(tenant)?,
        };
        index.visible_through(size, self.options.visible_timeout)?;
        let searcher = index.reader.searcher();
        Ok((index, searcher))
    }

    fn tenants_lock(&self) -> MutexGuard<'_, HashMap<TenantId, Arc<TenantIndex>>> {
        self.tenants
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn tenant_dir(&self, tenant: &TenantId) -> PathBuf {
        self.root.join(tenant.as_str())
    }

    fn tenant(&self, tenant: &TenantId) -> Result<Arc<TenantIndex>, SearchError> {
        if !self.options.enabled {
            return Err(SearchError::Disabled);
        }
        let mut tenants = self.tenants_lock();
        if let Some(index) = tenants.get(tenant) {
            return Ok(index.clone());
        }
        let index = TenantIndex::open(
            self.store.clone(),
            tenant.clone(),
            &self.tenant_dir(tenant),
            &self.options,
        )?;
        tenants.insert(tenant.clone(), index.clone());
        Ok(index)
    }
}

impl Drop for SearchEngine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What the indexer and the readers of one tenant share.
struct State {
    /// Last seq committed and visible to readers.
    committed: u64,
    /// Highest seq a reader waits for.
    wanted: u64,
    /// The log grew.
    wake: bool,
    stop: bool,
    failed: Option<String>,
}

struct TenantIndex {
    reader: IndexReader,
    fields: Fields,
    state: Mutex<State>,
    changed: Condvar,
    /// Last seq added to the writer (for progress bars).
    progress: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl TenantIndex {
    fn open(
        store: Arc<dyn Store>,
        tenant: TenantId,
        dir: &Path,
        options: &SearchOptions,
    ) -> Result<Arc<TenantIndex>, SearchError> {
        let (schema, fields) = schema::schema();
        let opened = if dir.join("meta.json").exists() {
            open_existing(store.as_ref(), &tenant, dir)
        } else {
            None
        };
        let (index, committed) = match opened {
            Some(found) => found,
            None => {
                if dir.exists() {
                    tracing::warn!(
                        "search index of {tenant} does not match the log; rebuilding it from the log"
                    );
                    std::fs::remove_dir_all(dir).map_err(|e| {
                        SearchError::Unavailable(format!("cannot remove {}: {e}", dir.display()))
                    })?;
                }
                std::fs::create_dir_all(dir).map_err(|e| {
                    SearchError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
                let index = Index::builder()
                    .schema(schema)
                    .settings(IndexSettings {
                        sort_by_field: Some(schema::index_sort()),
                        ..IndexSettings::default()
                    })
                    .create_in_dir(dir)?;
                (index, 0)
            }
        };
        schema::register_tokenizers(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let this = Arc::new(TenantIndex {
            reader,
            fields,
            state: Mutex::new(State {
                committed,
                wanted: 0,
                wake: true,
                stop: false,
                failed: None,
            }),
            changed: Condvar::new(),
            progress: AtomicU64::new(committed),
            thread: Mutex::new(None),
        });
        let worker = Indexer {
            index: this.clone(),
            store,
            tenant: tenant.clone(),
            tantivy: index,
            writer_memory_bytes: options.writer_memory_bytes.max(15 << 20),
            writer: None,
            indexed: committed,
            last_leaf: None,
            commit_interval: options.commit_interval,
        };
        let handle = std::thread::Builder::new()
            .name(format!("index-{tenant}"))
            .spawn(move || worker.run())
            .map_err(|e| SearchError::Unavailable(format!("cannot start indexer: {e}")))?;
        *this.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(this)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn visible_through(&self, seq: u64, timeout: Duration) -> Result<(), SearchError> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        if state.committed >= seq {
            return Ok(());
        }
        state.wanted = state.wanted.max(seq);
        self.changed.notify_all();
        loop {
            if let Some(failed) = &state.failed {
                return Err(SearchError::Unavailable(failed.clone()));
            }
            if state.committed >= seq {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SearchError::Behind {
                    indexed: state.committed,
                    wanted: seq,
                });
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    fn stop(&self) {
        {
            let mut state = self.lock();
            state.stop = true;
            self.changed.notify_all();
        }
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// The commit record of an index: schema version, last indexed seq and its leaf hash.
fn payload(seq: u64, leaf: Option<&[u8; 32]>) -> String {
    match leaf {
        Some(leaf) => format!("v{SCHEMA_VERSION} {seq} {}", STANDARD.encode(leaf)),
        None => format!("v{SCHEMA_VERSION} {seq} -"),
    }
}

/// An existing index and its committed seq, if it belongs to this log and schema.
fn open_existing(store: &dyn Store, tenant: &TenantId, dir: &Path) -> Option<(Index, u64)> {
    let index = Index::open_in_dir(dir).ok()?;
    let record = index.load_metas().ok()?.payload?;
    let mut parts = record.split(' ');
    if parts.next()? != format!("v{SCHEMA_VERSION}") {
        return None;
    }
    let seq: u64 = parts.next()?.parse().ok()?;
    let leaf = parts.next()?;
    if seq == 0 {
        return Some((index, 0));
    }
    let stored = store.event(tenant, seq).ok()??;
    (STANDARD.encode(stored.leaf_hash) == leaf).then_some((index, seq))
}

/// The indexer thread of one tenant.
struct Indexer {
    index: Arc<TenantIndex>,
    store: Arc<dyn Store>,
    tenant: TenantId,
    tantivy: Index,
    writer_memory_bytes: usize,
    /// Created on the indexer thread, so tantivy's threads inherit its lower priority.
    writer: Option<IndexWriter<TantivyDocument>>,
    indexed: u64,
    last_leaf: Option<[u8; 32]>,
    commit_interval: Duration,
}

/// The nice value of indexer threads where the idle scheduling class is not available (0 is
/// normal, 19 the lowest priority).
const INDEXER_NICE: i32 = 10;

/// Lowers the calling thread, and the threads it starts later, to the idle scheduling class
/// (Linux `SCHED_IDLE`: it runs only on a core nothing else wants), or else to nice
/// [`INDEXER_NICE`].
fn yield_to_ingest() {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };
    let idle = set_thread_priority_and_policy(
        thread_native_id(),
        thread_priority::ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    );
    if idle.is_err() {
        let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), INDEXER_NICE);
    }
}

/// Events read from the log at a time.
const READ_BATCH: usize = 1024;
/// Commit at the latest after this many new documents, bounding the work a crash repeats.
const COMMIT_EVERY_DOCS: u64 = 500_000;

impl Indexer {
    fn run(mut self) {
        // Indexing yields to ingest: acknowledging events never waits for the index, and a
        // busy machine lets the index fall behind (readers wait for it) rather than slowing
        // writers. Threads inherit their scheduling class, so tantivy's threads follow.
        yield_to_ingest();
        let created = self
            .tantivy
            .writer_with_num_threads(1, self.writer_memory_bytes)
            .map_err(|e| e.to_string());
        let result = created.and_then(|writer| {
            self.writer = Some(writer);
            self.work()
        });
        if let Err(problem) = result {
            tracing::error!("search index of {}: {problem}", self.tenant);
            let mut state = self.index.lock();
            state.failed = Some(problem);
            self.index.changed.notify_all();
        }
    }

    fn work(&mut self) -> Result<(), String> {
        let mut last_commit = Instant::now();
        let mut committed = self.indexed;
        loop {
            let stop = {
                let mut state = self.index.lock();
                while !state.stop && !state.wake && state.wanted <= state.committed {
                    let waited = last_commit.elapsed();
                    if committed < self.indexed && waited >= self.commit_interval {
                        break;
                    }
                    let wait = self
                        .commit_interval
                        .saturating_sub(waited)
                        .max(Duration::from_millis(10));
                    let (next, timeout) = self
                        .index
                        .changed
                        .wait_timeout(state, wait)
                        .unwrap_or_else(|p| p.into_inner());
                    state = next;
                    if timeout.timed_out() {
                        break;
                    }
                }
                state.wake = false;
                state.stop
            };
            let size = self
                .store
                .tree_size(&self.tenant)
                .map_err(|e| e.to_string())?;
            while self.indexed < size {
                self.add_from_log()?;
                if self.indexed - committed >= COMMIT_EVERY_DOCS {
                    self.commit()?;
                    committed = self.indexed;
                    last_commit = Instant::now();
                }
                if self.index.lock().stop {
                    break;
                }
            }
            let wanted = self.index.lock().wanted;
            if committed < self.indexed
                && (stop || wanted > committed || last_commit.elapsed() >= self.commit_interval)
            {
                self.commit()?;
                committed = self.indexed;
                last_commit = Instant::now();
            }
            if stop {
                return Ok(());
            }
        }
    }

    fn writer(&mut self) -> Result<&mut IndexWriter<TantivyDocument>, String> {
        self.writer
            .as_mut()
            .ok_or_else(|| "the index writer is not open".to_owned())
    }

    fn add_from_log(&mut self) -> Result<(), String> {
        let events = self
            .store
            .events_from(&self.tenant, self.indexed + 1, READ_BATCH)
            .map_err(|e| e.to_string())?;
        let limits = JsonLimits {
            max_depth: json::MAX_DEPTH_CEILING,
            max_event_bytes: usize::MAX,
        };
        let fields = self.index.fields;
        for event in events {
            if event.seq != self.indexed + 1 {
                return Err(format!(
                    "the log skips from seq {} to {}",
                    self.indexed, event.seq
                ));
            }
            let value = json::parse(&event.canonical, &limits)
                .map_err(|e| format!("event {}: {e}", event.seq))?;
            let doc = schema::document(&fields, &value).map_err(|e| e.to_string())?;
            self.writer()?
                .add_document(doc)
                .map_err(|e| e.to_string())?;
            self.indexed = event.seq;
            self.last_leaf = Some(event.leaf_hash);
        }
        self.index.progress.store(self.indexed, Ordering::Relaxed);
        Ok(())
    }

    fn commit(&mut self) -> Result<(), String> {
        let leaf = self.last_leaf;
        let indexed = self.indexed;
        let mut prepared = self.writer()?.prepare_commit().map_err(|e| e.to_string())?;
        prepared.set_payload(&payload(indexed, leaf.as_ref()));
        prepared.commit().map_err(|e| e.to_string())?;
        self.index.reader.reload().map_err(|e| e.to_string())?;
        let mut state = self.index.lock();
        state.committed = self.indexed;
        self.index.changed.notify_all();
        Ok(())
    }
}
