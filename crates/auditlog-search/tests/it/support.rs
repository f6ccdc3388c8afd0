//! What the search tests share: a store and an engine in a temporary directory, a seeded RNG.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use auditlog_core::event::Timestamp;
use auditlog_core::json::{self, JsonLimits};
use auditlog_core::tenant::TenantId;
use auditlog_search::{SearchEngine, SearchOptions};
use auditlog_store::{SqliteStore, Store, StoreOptions, prepare_event};

pub fn now() -> Timestamp {
    auditlog_store::now()
}

/// A store and its search engine in a fresh directory.
pub struct Setup {
    pub store: Arc<dyn Store>,
    pub engine: SearchEngine,
    pub tenant: TenantId,
    #[allow(dead_code)]
    pub dir: tempfile::TempDir,
}

impl Setup {
    pub fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("data"), StoreOptions::default())
                .expect("open store"),
        );
        let tenant = TenantId::default_tenant();
        store.ensure_tenant(&tenant).expect("tenant");
        let engine = SearchEngine::open(
            store.clone(),
            &dir.path().join("data").join("index"),
            SearchOptions {
                commit_interval: Duration::from_millis(200),
                writer_memory_bytes: 15 << 20,
                visible_timeout: Duration::from_secs(30),
                ..SearchOptions::default()
            },
        )
        .expect("open engine");
        Setup {
            store,
            engine,
            tenant,
            dir,
        }
    }

    /// Appends input events (JSON texts) as one acknowledged batch.
    pub fn append(&self, lines: &[String]) {
        let limits = JsonLimits {
            max_depth: 32,
            max_event_bytes: 1 << 20,
        };
        let peer: IpAddr = "127.0.0.1".parse().expect("ip");
        let prepared = lines
            .iter()
            .map(|line| {
                let value =
                    json::parse(line.as_bytes(), &limits).unwrap_or_else(|e| panic!("{line}: {e}"));
                prepare_event(value, now(), peer).unwrap_or_else(|e| panic!("{line}: {e}"))
            })
            .collect();
        self.store
            .append_blocking(&self.tenant, prepared)
            .expect("append");
        self.engine.notify(&self.tenant);
    }
}

/// xorshift64*: a small deterministic generator for reproducible random cases.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}
